/**
 * Memory of one long bidi stream: a single `Chat` call of N messages each way (default 1,000,000)
 * over gRPC on HTTP/2 (h2c on 127.0.0.1), client and server in this process, run twice in the same
 * process — untraced (connect's createClient and a plain implementation) as the baseline, then
 * traced (generated client and service wrapper, client + server span, recording and sampled, with
 * the SDK's own event limit lifted so that only connect-otel's `maxMessageEvents` cap bounds a span).
 *
 * Memory is sampled every `--sample-every` messages received by the client, and at 10% of the
 * stream: `process.memoryUsage()` heapUsed and rss, after `global.gc()` when node runs with
 * `--expose-gc` (then heapUsed is the retained heap; without it the figures include garbage and
 * the slopes are noise). Both paths are warmed up by a short call each before the measured runs.
 * How to read the first table:
 * - heap start / 10% / end: retained heap before the call, after the warm-up tenth, after the last
 *   message; a flat stream keeps 10% and end within a few hundred kB;
 * - heap slope: least-squares growth of heapUsed from 10% to the end, in bytes per 1,000 messages
 *   each way; a flat stream stays within a few kB of 0 either way, while a span that kept every
 *   message event (no cap) grows by about 950 kB per 1,000 (measured with the cap removed);
 * - rss: the whole process's resident memory, carried over from one run to the next. It rises in
 *   steps of tens of MB, in either run, when V8 doubles its young generation (new space, 32 to 64
 *   to 128 MB here) under the allocation rate of a fast stream: heapTotal (`--samples`) rises by
 *   the same step while heapUsed stays flat. A step is not retention; a steady climb would be;
 * - time and round trips/s: wall time of the call (gc pauses included, alike for both runs); the
 *   traced row adds the extra µs per round trip (4 messages recorded: 2 per span) over the baseline.
 *
 * Correctness, not speed, decides the exit code: it is 1 when a traced span's totals
 * (`connect_otel.messages.sent` / `.received`) differ from N, when a span holds more message
 * events than the cap (or fewer than min(cap, 2N)), when the SDK dropped events (so a cap other
 * than connect-otel's applied), or when a span ended with an error status. The second table shows
 * these figures.
 *
 * Run: `node --expose-gc --import tsx bench/long-stream.ts [--messages N] [--sample-every K]
 * [--max-message-events C] [--samples]` (`--samples` prints every sample), or `npm run bench`.
 * `LONG_STREAM_MESSAGES` sets N when `--messages` is not given. Under tsx the generated code's
 * `connect-otel` import resolves to src/ through the tsconfig `paths`, so no build is needed.
 */
import { parseArgs } from "node:util";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { Client } from "@connectrpc/connect";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { context, propagation, SpanKind, SpanStatusCode } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import type { ReadableSpan } from "@opentelemetry/sdk-trace";
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider } from "@opentelemetry/sdk-trace";
import { DEFAULT_MAX_MESSAGE_EVENTS } from "connect-otel";
import { createTracedUserServiceClient, traceUserService } from "../generated/user/v1/user_otel.js";
import type { ChatMessageSchema } from "../generated/user/v1/user_pb.js";
import { UserService } from "../generated/user/v1/user_pb.js";
import { createUserImpl } from "../test/support/user-impl.js";
import { serveUser } from "./support/connect-user.js";

const { values: args } = parseArgs({
  options: {
    messages: { type: "string" },
    "sample-every": { type: "string", default: "50000" },
    "max-message-events": { type: "string", default: String(DEFAULT_MAX_MESSAGE_EVENTS) },
    samples: { type: "boolean", default: false },
  },
  strict: true,
});

/** A positive integer from a flag; exits with a one-line message naming the flag otherwise. */
function positiveInt(name: string, raw: string, min: number): number {
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < min) {
    console.error(`long-stream: --${name} must be an integer >= ${min}, got ${raw}`);
    process.exit(2);
  }
  return value;
}

/** Messages each way in the one call. */
const messages = positiveInt("messages", args.messages ?? process.env.LONG_STREAM_MESSAGES ?? "1000000", 1);
/** Messages received by the client between memory samples. */
const sampleEvery = positiveInt("sample-every", args["sample-every"], 1);
/** connect-otel's cap on recorded message events per span (option `maxMessageEvents`). */
const maxMessageEvents = positiveInt("max-message-events", args["max-message-events"], 0);
/** The message count at which warm-up ends: the slope is fitted from here on. */
const warmUp = Math.max(1, Math.floor(messages / 10));

const gc = (globalThis as { gc?: () => void }).gc;

/** One memory sample: messages received by the client so far; heap used, heap total and RSS in bytes. */
interface Sample {
  readonly at: number;
  readonly heapUsed: number;
  readonly heapTotal: number;
  readonly rss: number;
}

function sample(at: number): Sample {
  gc?.();
  const { heapUsed, heapTotal, rss } = process.memoryUsage();
  return { at, heapUsed, heapTotal, rss };
}

/** What one run of the stream measured. */
interface RunResult {
  readonly name: string;
  readonly samples: readonly Sample[];
  /** Wall time of the call, from opening it to the client reading the end of the response stream, in ms. */
  readonly ms: number;
}

/** The request stream: `count` chat messages, produced as the transport pulls them. */
async function* requests(count: number): AsyncGenerator<MessageInitShape<typeof ChatMessageSchema>> {
  for (let i = 1; i <= count; i++) {
    yield { user: "client", message: "hello", timestamp: BigInt(i) };
  }
}

/**
 * Runs one `Chat` call of `count` messages each way and samples memory as responses arrive: before
 * the call, at {@link warmUp} and every {@link sampleEvery} messages received, and at the end.
 *
 * @throws Error if the client does not receive `count` responses.
 */
async function run(name: string, client: Client<typeof UserService>, count: number): Promise<RunResult> {
  const samples: Sample[] = [sample(0)];
  const started = performance.now();
  let received = 0;
  for await (const _ of client.chat(requests(count))) {
    received++;
    if (received === warmUp || received % sampleEvery === 0) samples.push(sample(received));
  }
  const ms = performance.now() - started;
  if (received !== count) throw new Error(`${name}: client received ${received} messages, expected ${count}`);
  if (samples.at(-1)?.at !== received) samples.push(sample(received));
  return { name, samples, ms };
}

/**
 * Least-squares slope of heapUsed over messages received, in bytes per 1,000 messages, fitted on
 * the samples from `from` messages on; NaN with fewer than two such samples.
 */
function heapSlope(samples: readonly Sample[], from: number): number {
  const pts = samples.filter((s) => s.at >= from);
  if (pts.length < 2) return Number.NaN;
  const mx = pts.reduce((a, s) => a + s.at, 0) / pts.length;
  const my = pts.reduce((a, s) => a + s.heapUsed, 0) / pts.length;
  let num = 0;
  let den = 0;
  for (const s of pts) {
    num += (s.at - mx) * (s.heapUsed - my);
    den += (s.at - mx) ** 2;
  }
  return (num / den) * 1000;
}

/** The sample taken at `at` messages (warm-up end), or the nearest after it. */
function sampleAt(samples: readonly Sample[], at: number): Sample {
  return (samples.find((s) => s.at >= at) ?? samples.at(-1)) as Sample;
}

const mb = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(1)} MB`;

context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
propagation.setGlobalPropagator(new W3CTraceContextPropagator());
const exporter = new InMemorySpanExporter();
// The SDK's own limit (128 events by default) would hide a missing cap: lift it.
const provider = new TracerProvider({
  spanProcessors: [new SimpleSpanProcessor({ exporter })],
  spanLimits: { eventCountLimit: Number.MAX_SAFE_INTEGER },
});

const impl = createUserImpl();
const options = { tracerProvider: provider, maxMessageEvents };
const plainServer = await serveUser(impl);
const tracedServer = await serveUser(traceUserService(impl, options));
const plain = createClient(UserService, createGrpcTransport({ baseUrl: plainServer.baseUrl }));
const traced = createTracedUserServiceClient(createGrpcTransport({ baseUrl: tracedServer.baseUrl }), {
  ...options,
  baseUrl: tracedServer.baseUrl,
  protocol: "grpc",
});

// Warm both paths up (JIT, HTTP/2 sessions) with a short call each, so that neither measured run
// pays for the code the two share.
const warmUpCall = Math.min(warmUp, 20_000);
await run("warm-up untraced", plain, warmUpCall);
await run("warm-up traced", traced, warmUpCall);
await waitForSpans(4);
exporter.reset();

const results = [await run("untraced", plain, messages), await run("traced", traced, messages)];
await waitForSpans(2);
await plainServer.close();
await tracedServer.close();

/** Waits up to 1 s for `n` finished spans: the server span ends when connect has read the handler's last message. */
async function waitForSpans(n: number): Promise<void> {
  for (let i = 0; i < 100 && exporter.getFinishedSpans().length < n; i++) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const base = results[0] as RunResult;
console.log(
  `node ${process.version}; one bidi Chat call, ${messages.toLocaleString("en-US")} messages each way, gRPC over h2c on 127.0.0.1;` +
    ` ${gc ? "heap after gc()" : "no --expose-gc: heap includes garbage"}; slope fitted from ${warmUp.toLocaleString("en-US")} messages`,
);
console.table(
  results.map((r) => {
    const first = r.samples[0] as Sample;
    const last = r.samples.at(-1) as Sample;
    const tenth = sampleAt(r.samples, warmUp);
    return {
      run: r.name,
      "heap start": mb(first.heapUsed),
      "heap 10%": mb(tenth.heapUsed),
      "heap end": mb(last.heapUsed),
      "rss start": mb(first.rss),
      "rss 10%": mb(tenth.rss),
      "rss end": mb(last.rss),
      "heap slope B/1k": Math.round(heapSlope(r.samples, warmUp)),
      "time s": (r.ms / 1000).toFixed(1),
      "round trips/s": Math.round(messages / (r.ms / 1000)),
      "extra µs/round trip": r === base ? "" : (((r.ms - base.ms) * 1000) / messages).toFixed(2),
    };
  }),
);

/** Checks of the traced spans; each failure is one line. */
const failures: string[] = [];
const spans = exporter.getFinishedSpans();
const expectedEvents = Math.min(maxMessageEvents, 2 * messages);
const rows: Record<string, string | number>[] = [];
for (const [side, kind] of [
  ["client", SpanKind.CLIENT],
  ["server", SpanKind.SERVER],
] as const) {
  const found = spans.filter((s: ReadableSpan) => s.kind === kind);
  const span = found[0];
  if (found.length !== 1 || span === undefined) {
    failures.push(`${side}: expected one finished span, found ${found.length}`);
    continue;
  }
  const sent = span.attributes["connect_otel.messages.sent"];
  const receivedTotal = span.attributes["connect_otel.messages.received"];
  rows.push({
    span: `${side} ${span.name}`,
    events: span.events.length,
    "dropped by SDK": span.droppedEventsCount,
    "messages.sent": String(sent),
    "messages.received": String(receivedTotal),
    status: span.status.code === SpanStatusCode.ERROR ? "ERROR" : "OK",
  });
  if (sent !== messages) failures.push(`${side}: connect_otel.messages.sent is ${String(sent)}, expected ${messages}`);
  if (receivedTotal !== messages) {
    failures.push(`${side}: connect_otel.messages.received is ${String(receivedTotal)}, expected ${messages}`);
  }
  if (span.events.length > maxMessageEvents) {
    failures.push(`${side}: ${span.events.length} events exceed the cap of ${maxMessageEvents}`);
  } else if (span.events.length !== expectedEvents) {
    failures.push(`${side}: ${span.events.length} events, expected ${expectedEvents} (the cap, or every message)`);
  }
  if (span.droppedEventsCount !== 0) failures.push(`${side}: the SDK dropped ${span.droppedEventsCount} events`);
  if (span.status.code === SpanStatusCode.ERROR) failures.push(`${side}: span ended with status ERROR`);
}
console.log(`traced spans (cap maxMessageEvents = ${maxMessageEvents}):`);
console.table(rows);

if (args.samples) {
  console.log("every sample (messages received, heapUsed, heapTotal, rss; bytes):");
  for (const r of results) {
    for (const s of r.samples) console.log(`  ${r.name}\t${s.at}\t${s.heapUsed}\t${s.heapTotal}\t${s.rss}`);
  }
}

await provider.shutdown();
if (failures.length > 0) {
  for (const f of failures) console.error(`long-stream: FAIL ${f}`);
  process.exit(1);
}
console.log("long-stream: span totals and event cap OK");
process.exit(0);
