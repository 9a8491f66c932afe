/**
 * What the BatchSpanProcessor's export costs the call that fills a batch: the spans of 256 traced
 * calls (the generated client and service wrapper, default options, client + server span, so 512
 * spans: the processor's default batch) are captured, then encoded to one OTLP
 * `ExportTraceServiceRequest` with `ProtobufTraceSerializer` `--repeats` times. Prints the median
 * time of a batch, per span, and per call, for unary FetchUser calls and for StreamUsers calls of 100
 * messages (whose spans carry an `rpc.message` event per message, up to the 128 cap).
 *
 * A latency median never contains this cost: with 2 spans per call, one call in 256 pays a whole
 * batch. bench/README.md ("Why the first benchmark's +45 µs differs ...") uses these figures. Run:
 * `node --import tsx bench/otlp-encode.ts [--repeats 30]`.
 */
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { parseArgs } from "node:util";
import { connectNodeAdapter, createGrpcTransport } from "@connectrpc/connect-node";
import { context, propagation } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { ProtobufTraceSerializer } from "@opentelemetry/otlp-transformer";
import type { ReadableSpan } from "@opentelemetry/sdk-trace";
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider } from "@opentelemetry/sdk-trace";
import { createTracedUserServiceClient, traceUserService } from "../generated/user/v1/user_otel.js";
import { UserService } from "../generated/user/v1/user_pb.js";
import { createUserImpl } from "../test/support/user-impl.js";
import { Samples } from "./support/stats.js";

/** The flags; an unknown flag or a missing value exits 2 with one line. */
const { values: flags } = (() => {
  try {
    return parseArgs({ options: { repeats: { type: "string", default: "30" } }, strict: true });
  } catch (err) {
    console.error(`otlp-encode: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(2);
  }
})();
const repeats = Number(flags.repeats);
if (!Number.isSafeInteger(repeats) || repeats < 1) {
  console.error(`otlp-encode: --repeats must be an integer >= 1, got ${flags.repeats}`);
  process.exit(2);
}

/** Calls whose spans make one batch of the BatchSpanProcessor's default size (512). */
const CALLS = 256;

context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
propagation.setGlobalPropagator(new W3CTraceContextPropagator());
const exporter = new InMemorySpanExporter();
const provider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] });
const server = http2.createServer(
  connectNodeAdapter({
    routes: (router) => router.service(UserService, traceUserService(createUserImpl(), { tracerProvider: provider })),
  }),
);
await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
const baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
const client = createTracedUserServiceClient(createGrpcTransport({ baseUrl }), {
  tracerProvider: provider,
  baseUrl,
  protocol: "grpc",
});

/** The spans of {@link CALLS} calls made by `call`, once both spans of every call have ended. */
async function capture(call: () => Promise<void>): Promise<ReadableSpan[]> {
  exporter.reset();
  for (let i = 0; i < CALLS; i++) await call();
  for (let i = 0; i < 100 && exporter.getFinishedSpans().length < 2 * CALLS; i++) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return exporter.getFinishedSpans().slice(0, 2 * CALLS);
}

const cases: [string, () => Promise<void>, number][] = [
  ["unary FetchUser", () => client.fetchUser({ userId: 7 }).then(() => undefined), 1],
  [
    "StreamUsers of 100 messages",
    async () => {
      for await (const _ of client.streamUsers({ pageSize: 100 })) {
        // read to the end
      }
    },
    100,
  ],
];

console.log(`node ${process.version}; one batch = the spans of ${CALLS} calls; median of ${repeats} encodings`);
for (const [name, call, messages] of cases) {
  const spans = await capture(call);
  const events = spans.reduce((n, s) => n + s.events.length, 0);
  const bytes = ProtobufTraceSerializer.serializeRequest(spans)?.length ?? 0;
  for (let i = 0; i < 5; i++) ProtobufTraceSerializer.serializeRequest(spans); // warm-up
  const times = new Samples();
  for (let i = 0; i < repeats; i++) {
    const t0 = performance.now();
    ProtobufTraceSerializer.serializeRequest(spans);
    times.push((performance.now() - t0) * 1000);
  }
  const us = times.summary().p50;
  console.log(
    `  ${name}: ${spans.length} spans, ${events} events, ${(bytes / 1024).toFixed(0)} KiB; a batch ${(us / 1000).toFixed(2)} ms, ` +
      `${(us / spans.length).toFixed(1)} µs per span, ${(us / CALLS).toFixed(1)} µs per call` +
      (messages > 1 ? `, ${(us / CALLS / messages).toFixed(2)} µs per message` : ""),
  );
}
server.close();
await provider.shutdown();
process.exit(0);
