/**
 * Checks that the `floor` system of overhead.ts produces the spans the generated traced pair
 * produces (default options), so that what it costs is a floor for them: one FetchUser, one
 * StreamUsers of 3 messages, one Chat of 3 messages and one Chat of 70 (140 messages a span: past
 * the runtime's cap of 128 events per span) through each, over the transport the
 * benchmark runs on, each with its own TracerProvider and in-memory exporter.
 */

import type { ReadableSpan } from "@opentelemetry/sdk-trace";
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider } from "@opentelemetry/sdk-trace";
import type { PairCalls, PairTransport } from "./connect-user.js";
import { openConnectCalls } from "./connect-user.js";
import { openFloorCalls } from "./floor-interceptors.js";

/** One span as the check compares it: everything but ids, times and the server's port number. */
interface SpanShape {
  name: string;
  kind: number;
  /** The server span's parent is the client span of the same call. */
  parentIsClient: boolean;
  attributes: Record<string, unknown>;
  events: [string, Record<string, unknown>][];
  status: number;
}

function shapes(spans: readonly ReadableSpan[], port: string): SpanShape[] {
  const ids = new Set(spans.map((s) => s.spanContext().spanId));
  return spans
    .map((s) => ({
      name: s.name,
      kind: s.kind,
      parentIsClient: s.parentSpanContext !== undefined && ids.has(s.parentSpanContext.spanId),
      attributes: Object.fromEntries(
        Object.entries(s.attributes)
          .map(([k, v]): [string, unknown] => [k, k === "server.port" && String(v) === port ? "<port>" : v])
          .sort(([a], [b]) => a.localeCompare(b)),
      ),
      events: s.events.map((e): [string, Record<string, unknown>] => [e.name, { ...e.attributes }]),
      status: s.status.code,
    }))
    .sort((a, b) => a.kind - b.kind || a.name.localeCompare(b.name));
}

/** The spans of the three calls through one system, shaped. */
async function run(
  kind: PairTransport,
  open: (provider: TracerProvider) => Promise<PairCalls>,
): Promise<SpanShape[][]> {
  const exporter = new InMemorySpanExporter();
  const provider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] });
  const { pair, calls } = await open(provider);
  const port = new URL(pair.baseUrl).port || "443";
  const out: SpanShape[][] = [];
  try {
    for (const call of [() => calls.unary(), () => calls.serverStream(3), () => calls.bidi(3), () => calls.bidi(70)]) {
      exporter.reset();
      await call();
      await provider.forceFlush();
      out.push(shapes(exporter.getFinishedSpans(), kind === "h2c" ? port : ""));
    }
  } finally {
    await pair.close();
    await provider.shutdown();
  }
  return out;
}

/**
 * The differences between the floor's spans and the traced pair's over `kind`, one line each
 * (empty: none).
 * @throws what a call throws: both systems must complete the three calls.
 */
export async function floorSpanMismatches(kind: PairTransport): Promise<string[]> {
  const traced = await run(kind, (provider) => openConnectCalls(kind, { tracerProvider: provider }));
  const floor = await run(kind, (provider) => openFloorCalls(kind, provider.getTracer("floor")));
  const mismatches: string[] = [];
  ["FetchUser", "StreamUsers of 3", "Chat of 3", "Chat of 70"].forEach((call, i) => {
    const a = JSON.stringify(traced[i]);
    const b = JSON.stringify(floor[i]);
    if (a !== b) mismatches.push(`${call}: traced ${a}\n  floor  ${b}`);
  });
  return mismatches;
}
