/**
 * Per-call and per-message cost of tracing: the same loopback gRPC (HTTP/2) calls, untraced
 * (connect's createClient and a plain implementation) and traced (generated client and wrapper,
 * client + server span), with spans recording or sampled out. Prints latency per operation and the
 * extra microseconds tracing adds, from medians (p50), which a busy 2-core machine skews least.
 * Run: `npm run bench`.
 */
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { createClient } from "@connectrpc/connect";
import { connectNodeAdapter, createGrpcTransport } from "@connectrpc/connect-node";
import { context, propagation } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import type { ReadableSpan, SpanExporter } from "@opentelemetry/sdk-trace";
import { AlwaysOffSampler, BatchSpanProcessor, TracerProvider } from "@opentelemetry/sdk-trace";
import { Bench } from "tinybench";
import { createTracedUserServiceClient, traceUserService } from "../generated/user/v1/user_otel.js";
import { UserService } from "../generated/user/v1/user_pb.js";
import { createUserImpl } from "../test/support/user-impl.js";

/** Messages per server-streaming call in the streaming tasks. */
const STREAM_MESSAGES = 1000;

/** An exporter that drops spans: the cost measured is the instrumentation's, not the export's. */
const discard: SpanExporter = {
  export: (_spans: ReadableSpan[], done) => done({ code: 0 }),
  shutdown: async () => {},
};

context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
propagation.setGlobalPropagator(new W3CTraceContextPropagator());
const recording = new TracerProvider({ spanProcessors: [new BatchSpanProcessor({ exporter: discard })] });
const sampledOut = new TracerProvider({ sampler: new AlwaysOffSampler() });

const impl = createUserImpl();
// One server per variant: a router serves a service once.
const server = http2.createServer(connectNodeAdapter({ routes: (router) => router.service(UserService, impl) }));
const tracedServer = http2.createServer(
  connectNodeAdapter({
    routes: (router) => router.service(UserService, traceUserService(impl, { tracerProvider: recording })),
  }),
);
const sampledOutServer = http2.createServer(
  connectNodeAdapter({
    routes: (router) => router.service(UserService, traceUserService(impl, { tracerProvider: sampledOut })),
  }),
);

async function listen(s: http2.Http2Server): Promise<string> {
  await new Promise<void>((resolve) => s.listen(0, "127.0.0.1", resolve));
  return `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
}

const [plainUrl, tracedUrl, sampledOutUrl] = await Promise.all([
  listen(server),
  listen(tracedServer),
  listen(sampledOutServer),
]);
const plain = createClient(UserService, createGrpcTransport({ baseUrl: plainUrl }));
const traced = createTracedUserServiceClient(createGrpcTransport({ baseUrl: tracedUrl }), {
  tracerProvider: recording,
  baseUrl: tracedUrl,
  protocol: "grpc",
});
const tracedSampledOut = createTracedUserServiceClient(createGrpcTransport({ baseUrl: sampledOutUrl }), {
  tracerProvider: sampledOut,
});

async function drain(stream: AsyncIterable<unknown>): Promise<void> {
  for await (const _ of stream) {
    // consume
  }
}

const bench = new Bench({ time: 3000, warmupTime: 1000 });
bench
  .add("unary, untraced", () => plain.fetchUser({ userId: 7 }).then(() => undefined))
  .add("unary, traced (recording)", () => traced.fetchUser({ userId: 7 }).then(() => undefined))
  .add("unary, traced (sampled out)", () => tracedSampledOut.fetchUser({ userId: 7 }).then(() => undefined))
  .add(`stream ${STREAM_MESSAGES} msgs, untraced`, () => drain(plain.streamUsers({ pageSize: STREAM_MESSAGES })))
  .add(`stream ${STREAM_MESSAGES} msgs, traced (recording)`, () =>
    drain(traced.streamUsers({ pageSize: STREAM_MESSAGES })),
  )
  .add(`stream ${STREAM_MESSAGES} msgs, traced (sampled out)`, () =>
    drain(tracedSampledOut.streamUsers({ pageSize: STREAM_MESSAGES })),
  );

await bench.run();
console.table(bench.table());

/** Median latency of a task in µs. */
function medianMicros(name: string): number {
  const task = bench.getTask(name);
  const result = task?.result;
  if (!result || !("latency" in result)) throw new Error(`bench task ${name} has no result`);
  return result.latency.p50 * 1000;
}

const unaryBase = medianMicros("unary, untraced");
const streamBase = medianMicros(`stream ${STREAM_MESSAGES} msgs, untraced`);
console.log(`node ${process.version}; extra cost of tracing (client + server span), gRPC over HTTP/2 on loopback:`);
for (const mode of ["recording", "sampled out"]) {
  const unary = medianMicros(`unary, traced (${mode})`) - unaryBase;
  const perMessage = (medianMicros(`stream ${STREAM_MESSAGES} msgs, traced (${mode})`) - streamBase) / STREAM_MESSAGES;
  console.log(`  ${mode}: +${unary.toFixed(1)} µs per unary call, +${perMessage.toFixed(2)} µs per streamed message`);
}

await Promise.all([recording.shutdown(), sampledOut.shutdown()]);
for (const s of [server, tracedServer, sampledOutServer]) s.close();
process.exit(0);
