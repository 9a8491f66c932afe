/**
 * The client and server pairs overhead.ts compares: untraced connect, the generated traced pair
 * with several options, the hand-written floor (floor-interceptors.ts), and grpc-js with and
 * without `@opentelemetry/instrumentation-grpc`. See bench/README.md for what each one is.
 */

import { context, propagation } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { ParentBasedSampler, TraceIdRatioBasedSampler } from "@opentelemetry/sdk-trace";
import type { PairTransport, TracedUserOptions } from "./connect-user.js";
import { openConnectCalls } from "./connect-user.js";
import { openFloorCalls } from "./floor-interceptors.js";
import type { GrpcJsCopies, UserCalls } from "./grpc-js-user.js";
import { loadGrpcJs, startGrpcUserStack } from "./grpc-js-user.js";
import type { ExportTally, TracePipeline } from "./sdk-pipeline.js";
import { createMetricPipeline, createTracePipeline } from "./sdk-pipeline.js";

/** Names of the systems; the default set leaves out `noop-exporter`. */
export const SYSTEM_NAMES = [
  "connect",
  "connect-2",
  "traced",
  "events-off",
  "sampled-out",
  "metrics",
  "floor",
  "floor-sampled-out",
  "noop-exporter",
  "grpc-js",
  "grpc-js+otel",
] as const;
export type SystemName = (typeof SYSTEM_NAMES)[number];

/** The untraced system of each system's stack, against which its ratio is taken. */
export const BASELINE: Record<SystemName, SystemName> = {
  connect: "connect",
  "connect-2": "connect",
  traced: "connect",
  "events-off": "connect",
  "sampled-out": "connect",
  metrics: "connect",
  floor: "connect",
  "floor-sampled-out": "connect",
  "noop-exporter": "connect",
  "grpc-js": "grpc-js",
  "grpc-js+otel": "grpc-js",
};

/** grpc-js has no in-memory transport: its systems run over h2c only. */
export const GRPC_SYSTEMS: readonly SystemName[] = ["grpc-js", "grpc-js+otel"];

/** A client and server pair under test, with what flushes and counts its telemetry. */
export interface System {
  readonly name: SystemName;
  readonly calls: UserCalls;
  /** Exports what the system's pipelines hold: spans queued in the batch processor, metrics collected. */
  flush(): Promise<void>;
  /** Spans handed to the exporter so far (0 for untraced systems). */
  readonly spans: ExportTally;
  close(): Promise<void>;
}

const noTally: ExportTally = { items: 0, bytes: 0 };

/** The sampler of the sampled-out systems: parent-based, ratio 0 at the root. */
const samplingOut = () => new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(0) });

/**
 * What makes each system, with its connect pairs on `transport`. Installs the AsyncLocalStorage
 * context manager and the W3C propagator globally. grpc-js is loaded, twice, when the first grpc-js
 * system is made (the instrumentation hooks `require` before its copy loads; see grpc-js-user.ts):
 * nothing else may load grpc-js before that.
 */
export function systemFactories(transport: PairTransport): Record<SystemName, () => Promise<System>> {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());

  /** A connect system: untraced when `options` is undefined, else the generated traced pair with them. */
  async function connectSystem(
    name: SystemName,
    options?: { tracing: TracedUserOptions; flush(): Promise<void>; spans: ExportTally },
  ): Promise<System> {
    const { pair, calls } = await openConnectCalls(transport, options?.tracing);
    return {
      name,
      calls,
      flush: options?.flush ?? (async () => {}),
      spans: options?.spans ?? noTally,
      close: pair.close,
    };
  }

  /** A traced connect system on its own span pipeline, with extra options. */
  function tracedSystem(
    name: SystemName,
    extra: TracedUserOptions = {},
    pipeline: TracePipeline = createTracePipeline(),
    onFlush: () => Promise<void> = async () => {},
  ): Promise<System> {
    return connectSystem(name, {
      tracing: { tracerProvider: pipeline.provider, ...extra },
      async flush() {
        await pipeline.provider.forceFlush();
        await onFlush();
      },
      spans: pipeline.exporter.tally,
    });
  }

  /**
   * Untraced connect with the hand-written interceptors of floor-interceptors.ts on its own span
   * pipeline: the same spans as `traced`, with nothing else.
   */
  async function floorSystem(name: SystemName, pipeline = createTracePipeline()): Promise<System> {
    const { pair, calls } = await openFloorCalls(transport, pipeline.provider.getTracer("floor"));
    return {
      name,
      calls,
      flush: () => pipeline.provider.forceFlush(),
      spans: pipeline.exporter.tally,
      close: pair.close,
    };
  }

  let grpc: { pipeline: TracePipeline; copies: GrpcJsCopies } | undefined;
  async function grpcSystem(name: SystemName, traced: boolean): Promise<System> {
    if (transport !== "h2c") throw new Error(`${name} runs over h2c only`);
    if (grpc === undefined) {
      const pipeline = createTracePipeline();
      grpc = { pipeline, copies: loadGrpcJs(pipeline.provider) };
    }
    const { pipeline, copies } = grpc;
    const stack = await startGrpcUserStack(traced ? copies.instrumented : copies.plain);
    return {
      name,
      calls: stack.calls,
      flush: traced ? () => pipeline.provider.forceFlush() : async () => {},
      spans: traced ? pipeline.exporter.tally : noTally,
      async close() {
        stack.close();
        // the instrumentation stays enabled while the other copy's system still runs; either close disables it
        await copies.instrumentation.disable();
      },
    };
  }

  let metricPipeline: ReturnType<typeof createMetricPipeline> | undefined;
  return {
    connect: () => connectSystem("connect"),
    "connect-2": () => connectSystem("connect-2"),
    traced: () => tracedSystem("traced"),
    "events-off": () => tracedSystem("events-off", { messageEvents: "none" }),
    "sampled-out": () => tracedSystem("sampled-out", {}, createTracePipeline({ sampler: samplingOut() })),
    metrics: () => {
      metricPipeline ??= createMetricPipeline();
      const metrics = metricPipeline.provider;
      return tracedSystem("metrics", { meterProvider: metrics }, createTracePipeline(), () => metrics.forceFlush());
    },
    floor: () => floorSystem("floor"),
    "floor-sampled-out": () => floorSystem("floor-sampled-out", createTracePipeline({ sampler: samplingOut() })),
    "noop-exporter": () => tracedSystem("noop-exporter", {}, createTracePipeline({ encode: false })),
    "grpc-js": () => grpcSystem("grpc-js", false),
    "grpc-js+otel": () => grpcSystem("grpc-js+otel", true),
  };
}
