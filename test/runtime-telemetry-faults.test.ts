import { Code, createClient } from "@connectrpc/connect";
import type {
  MeterProvider,
  Span,
  SpanContext,
  TextMapPropagator,
  Tracer,
  TracerProvider as TracerProviderApi,
} from "@opentelemetry/api";
import { INVALID_SPAN_CONTEXT, trace } from "@opentelemetry/api";
import type { ExportResult } from "@opentelemetry/core";
import { ExportResultCode } from "@opentelemetry/core";
import type { ReadableSpan, SpanExporter, SpanProcessor } from "@opentelemetry/sdk-trace";
import { AlwaysOffSampler, BatchSpanProcessor, SimpleSpanProcessor, TracerProvider } from "@opentelemetry/sdk-trace";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createTracedUserServiceClient, traceUserService } from "../generated/user/v1/user_otel.js";
import { UserService } from "../generated/user/v1/user_pb.js";
import { watchEscapes } from "./support/escapes.js";
import type { ScenarioSide, Step, StepOutcome } from "./support/scenario-runs.js";
import { runStep } from "./support/scenario-runs.js";
import type { HandlerView } from "./support/scenario-service.js";
import { createScenarioService } from "./support/scenario-service.js";
import type { TestServer, Wire } from "./support/servers.js";
import { startServer, wires } from "./support/servers.js";
import type { SpanRecorder } from "./support/span-recorder.js";
import { createSpanRecorder } from "./support/span-recorder.js";
import { installTestTracing } from "./support/tracing.js";
import type { MethodCase } from "./support/user-calls.js";
import { methodCasesFor } from "./support/user-calls.js";

// Faults in the telemetry path stay there: with a span processor, exporter, propagator, tracer or
// meter that throws, or a tracer that records nothing, every call of every method kind gives the caller
// and the handler exactly what untraced connect gives them, and nothing is left unhandled.

installTestTracing();

const escapes = watchEscapes();

/** Telemetry failures thrown in the current test: proof that the fault was met, not skipped. */
let failures = 0;

function fail(where: string): never {
  failures++;
  throw new Error(`telemetry failure in ${where}`);
}

/** A span processor that throws from the hooks named in `where`. */
function throwingProcessor(where: { onStart?: boolean; onEnd?: boolean }): SpanProcessor {
  return {
    onStart: () => (where.onStart ? fail("onStart") : undefined),
    onEnd: () => (where.onEnd ? fail("onEnd") : undefined),
    forceFlush: () => Promise.resolve(),
    shutdown: () => Promise.resolve(),
  };
}

/** An exporter whose `export` throws, or (`report`) calls back with a failed result. */
function failingExporter(how: "throw" | "report"): SpanExporter {
  return {
    export(_spans: ReadableSpan[], done: (result: ExportResult) => void) {
      if (how === "throw") fail("export");
      failures++;
      done({ code: ExportResultCode.FAILED, error: new Error("telemetry failure in export") });
    },
    shutdown: () => Promise.resolve(),
    forceFlush: () => Promise.resolve(),
  };
}

/** A tracer provider whose tracer starts every span with `start`. */
function providerOf(start: () => Span): TracerProviderApi {
  const tracer = {
    startSpan: start,
    startActiveSpan: () => fail("startActiveSpan"),
  } as unknown as Tracer;
  return { getTracer: () => tracer };
}

/**
 * A span every method of which throws; `isRecording` answers true unless `recording` is false,
 * in which case it throws too.
 */
function hostileSpan(recording: boolean): Span {
  const span = {
    spanContext: (): SpanContext => fail("spanContext"),
    isRecording: () => (recording ? true : fail("isRecording")),
  } as Record<string, unknown>;
  for (const name of [
    "setAttribute",
    "setAttributes",
    "addEvent",
    "addLink",
    "addLinks",
    "setStatus",
    "updateName",
    "end",
    "recordException",
  ]) {
    span[name] = () => fail(name);
  }
  return span as unknown as Span;
}

/** A faulty telemetry setup: options for both traced client and service, and what to audit. */
interface TelemetryFault {
  readonly title: string;
  /** False for setups that fail no call, only record nothing. */
  readonly throws?: false;
  /** Creates the setup for one wire. */
  setup(): {
    readonly tracerProvider?: TracerProviderApi;
    readonly propagator?: TextMapPropagator;
    readonly meterProvider?: MeterProvider;
    readonly semconv?: "dup";
    /** A recorder still sees every span: each must end exactly once. */
    readonly recorder?: SpanRecorder;
    /** Runs after each test, before the audit: flushes what the setup buffers. */
    readonly flush?: () => Promise<void>;
    readonly shutdown?: () => Promise<void>;
  };
}

const faults: readonly TelemetryFault[] = [
  {
    title: "a span processor whose onStart and onEnd throw",
    setup: () => ({
      tracerProvider: new TracerProvider({ spanProcessors: [throwingProcessor({ onStart: true, onEnd: true })] }),
    }),
  },
  {
    title: "a span processor whose onEnd throws (after one that audits)",
    setup() {
      const recorder = createSpanRecorder({ processors: [throwingProcessor({ onEnd: true })] });
      return { tracerProvider: recorder.provider, recorder };
    },
  },
  {
    title: "an exporter that throws, behind a SimpleSpanProcessor",
    setup() {
      const recorder = createSpanRecorder({
        processors: [new SimpleSpanProcessor({ exporter: failingExporter("throw") })],
      });
      return { tracerProvider: recorder.provider, recorder };
    },
  },
  {
    title: "an exporter that throws, behind a BatchSpanProcessor",
    setup() {
      const batch = new BatchSpanProcessor({
        exporter: failingExporter("throw"),
        scheduledDelayMillis: 1,
        maxExportBatchSize: 2,
      });
      const recorder = createSpanRecorder({ processors: [batch] });
      return {
        tracerProvider: recorder.provider,
        recorder,
        // the batch processor's own contract: forceFlush settles; what it resolves to is the SDK's
        flush: () => batch.forceFlush().catch(() => {}),
        shutdown: () => batch.shutdown().catch(() => {}),
      };
    },
  },
  {
    title: "an exporter that reports every export failed, behind a BatchSpanProcessor",
    setup() {
      const batch = new BatchSpanProcessor({ exporter: failingExporter("report"), scheduledDelayMillis: 1 });
      const recorder = createSpanRecorder({ processors: [batch] });
      return {
        tracerProvider: recorder.provider,
        recorder,
        flush: () => batch.forceFlush().catch(() => {}),
        shutdown: () => batch.shutdown().catch(() => {}),
      };
    },
  },
  {
    title: "a propagator whose inject and extract throw",
    setup() {
      const recorder = createSpanRecorder();
      const propagator: TextMapPropagator = {
        inject: () => fail("inject"),
        extract: () => fail("extract"),
        fields: () => ["traceparent"],
      };
      return { tracerProvider: recorder.provider, propagator, recorder };
    },
  },
  {
    title: "an SDK that samples nothing (non-recording spans)",
    throws: false,
    setup: () => ({ tracerProvider: new TracerProvider({ sampler: new AlwaysOffSampler() }) }),
  },
  {
    title: "a tracer that returns the API's non-recording span",
    throws: false,
    setup: () => ({ tracerProvider: providerOf(() => trace.wrapSpanContext(INVALID_SPAN_CONTEXT)) }),
  },
  {
    title: "a tracer whose startSpan throws",
    setup: () => ({ tracerProvider: providerOf(() => fail("startSpan")) }),
  },
  {
    title: "a tracer whose spans throw from every method (isRecording says true)",
    setup: () => ({ tracerProvider: providerOf(() => hostileSpan(true)) }),
  },
  {
    title: "a tracer whose spans throw from every method, isRecording included",
    setup: () => ({ tracerProvider: providerOf(() => hostileSpan(false)) }),
  },
  {
    title: "a meter provider whose getMeter throws",
    setup: () => ({ meterProvider: { getMeter: () => fail("getMeter") } }),
  },
  {
    title: "a meter whose histograms throw on record (v1.37 and stable instruments)",
    setup: () => ({
      meterProvider: meterProviderOf(() => fail("record")),
      // every instrument of both generations
      semconv: "dup" as const,
    }),
  },
];

/** A meter provider whose histograms call `record` for every value. */
function meterProviderOf(record: () => void): MeterProvider {
  const meter = { createHistogram: () => ({ record }) };
  return { getMeter: () => meter } as unknown as MeterProvider;
}

/** The calls compared: success, handler errors before and after the first message, a cancel. */
function stepsFor(mc: MethodCase): Step[] {
  const when = mc.kind === "unary" ? "before" : "after-first";
  return [
    { title: "success", scenario: { kind: "ok" }, cancel: "none" },
    { title: `NOT_FOUND ${when}`, scenario: { kind: "fail", code: Code.NotFound, when }, cancel: "none" },
    { title: "TypeError before", scenario: { kind: "fail", code: "plain", when: "before" }, cancel: "none" },
    { title: "client aborts mid-call", scenario: { kind: "hold" }, cancel: "mid-call" },
  ];
}

describe.each(wires)("$name", (wire: Wire) => {
  const plainViews: HandlerView[] = [];
  let plainServer: TestServer;
  let plain: ScenarioSide;
  /** Outcomes of untraced connect, per method and step title. */
  const expected = new Map<string, StepOutcome>();
  beforeAll(async () => {
    plainServer = await startServer(wire, (router) => router.service(UserService, createScenarioService(plainViews)));
    plain = { views: plainViews, client: () => createClient(UserService, plainServer.transport()) };
  });
  afterAll(() => plainServer.close());

  async function expectedOutcome(mc: MethodCase, step: Step): Promise<StepOutcome> {
    const key = `${mc.method}/${step.title}`;
    let outcome = expected.get(key);
    if (outcome === undefined) {
      outcome = await runStep(plain, mc, step);
      expected.set(key, outcome);
    }
    return outcome;
  }

  describe.each(faults)("$title", (fault) => {
    const views: HandlerView[] = [];
    let setup: ReturnType<TelemetryFault["setup"]>;
    let server: TestServer;
    let traced: ScenarioSide;
    beforeAll(async () => {
      setup = fault.setup();
      const options = {
        ...(setup.tracerProvider ? { tracerProvider: setup.tracerProvider } : {}),
        ...(setup.propagator ? { propagator: setup.propagator } : {}),
        ...(setup.meterProvider ? { meterProvider: setup.meterProvider } : {}),
        ...(setup.semconv ? { semconv: setup.semconv } : {}),
      };
      server = await startServer(wire, (router) => {
        router.service(UserService, traceUserService(createScenarioService(views), options));
      });
      traced = {
        views,
        client: () => createTracedUserServiceClient(server.transport(), { ...options, protocol: wire.protocol }),
      };
    });
    afterAll(async () => {
      await server.close();
      await setup.shutdown?.();
    });
    afterEach(async () => {
      await setup.flush?.();
      if (fault.throws !== false) expect(failures).toBeGreaterThan(0);
      failures = 0;
      await setup.recorder?.settle();
      setup.recorder?.reset();
      expect(escapes.take()).toEqual([]);
    });

    describe.each(methodCasesFor(wire))("$method", (mc) => {
      it.each(stepsFor(mc))("$title: same outcome as untraced connect", async (step) => {
        const want = await expectedOutcome(mc, step);
        const got = await runStep(traced, mc, step);
        expect(got).toEqual(want);
        // the fault is not vacuous: the recorded setups did start spans
        if (setup.recorder) expect(setup.recorder.spans().length).toBeGreaterThan(0);
      });
    });
  });
});
