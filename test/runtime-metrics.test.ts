import { Code, type ServiceImpl } from "@connectrpc/connect";
import { SpanKind, trace } from "@opentelemetry/api";
import { AlwaysOffSampler } from "@opentelemetry/sdk-trace";
import type { SemconvMode, TracedClientOptions } from "connect-otel";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createTracedUserServiceClient, traceUserService } from "../generated/user/v1/user_otel.js";
import { UserService } from "../generated/user/v1/user_pb.js";
import { createMetricRecorder, createRecordingMeterProvider, type HistogramPoint } from "./support/metric-recorder.js";
import { callDurationBuckets, expectedMetricAttributes } from "./support/semconv.js";
import type { TestServer, Wire } from "./support/servers.js";
import { startServer, wires } from "./support/servers.js";
import { callSpans, createSpanRecorder, durationMs, spanOf } from "./support/span-recorder.js";
import { installTestTracing } from "./support/tracing.js";
import { errorOf, methodCasesFor } from "./support/user-calls.js";
import { createUserImpl, ERROR_BASE } from "./support/user-impl.js";

// RPC metrics over real sockets: one data point per call on each side, recorded when the span ends,
// with the span's duration and status, the attributes of semconv v1.45.0 (and v1.37 in the legacy
// and dup modes), the call's context for exemplars, nothing for untraced or filtered calls, and
// a broken meter is in test/runtime-telemetry-faults.test.ts.

installTestTracing();
const recorder = createSpanRecorder();
const metrics = createMetricRecorder();
const FETCH_USER = "user.v1.UserService/FetchUser";

const CLIENT_DURATION = "rpc.client.call.duration";
const SERVER_DURATION = "rpc.server.call.duration";

/** The points of one instrument. */
const pointsOf = (points: readonly HistogramPoint[], name: string) => points.filter((p) => p.name === name);

/** A UserService whose StreamUsers never ends by itself: it waits for the call to be cancelled. */
function hangingImpl(): ServiceImpl<typeof UserService> {
  return {
    ...createUserImpl(),
    async *streamUsers(_req, ctx) {
      yield { id: 1 };
      await new Promise<void>((resolve) => ctx.signal.addEventListener("abort", () => resolve(), { once: true }));
    },
  };
}

describe.each(wires)("$name", (wire: Wire) => {
  const servers = new Map<string, TestServer>();
  const serverOf = (name: string) => servers.get(name) as TestServer;
  const options = (semconv: SemconvMode) => ({
    tracerProvider: recorder.provider,
    meterProvider: metrics.provider,
    semconv,
  });
  beforeAll(async () => {
    for (const semconv of ["stable", "legacy", "dup"] as const) {
      const server = await startServer(wire, (router) =>
        router.service(UserService, traceUserService(createUserImpl(), options(semconv))),
      );
      servers.set(semconv, server);
    }
    servers.set(
      "hanging",
      await startServer(wire, (router) =>
        router.service(UserService, traceUserService(hangingImpl(), options("stable"))),
      ),
    );
  });
  afterAll(async () => {
    for (const server of servers.values()) await server.close();
  });
  beforeEach(async () => {
    recorder.reset();
    await metrics.collect();
  });
  afterEach(() => recorder.settle());

  const target = (server: TestServer) => ({ address: "127.0.0.1", port: Number(new URL(server.baseUrl).port) });
  const client = (name: string, extra: TracedClientOptions = {}) => {
    const server = serverOf(name);
    const semconv = (name === "hanging" ? "stable" : name) as SemconvMode;
    // protocol: a client that must learn its RPC system from the response records the sizes of
    // the requests it sends before that without rpc.system (see the README)
    return createTracedUserServiceClient(server.transport(), {
      ...options(semconv),
      baseUrl: server.baseUrl,
      protocol: wire.protocol,
      ...extra,
    });
  };

  describe.each(methodCasesFor(wire))("$method", (mc) => {
    it("stable: one call-duration point per side, s, advised buckets, exact attributes, the span's duration", async () => {
      await mc.run(client("stable"));
      const spans = await callSpans(recorder, mc.spanName);
      const points = await metrics.collect();
      const t = target(serverOf("stable"));
      for (const [name, side, span] of [
        [CLIENT_DURATION, "client", spans.client],
        [SERVER_DURATION, "server", spans.server],
      ] as const) {
        const [point, ...more] = pointsOf(points, name);
        expect(more, name).toEqual([]);
        expect(point?.count).toBe(1);
        expect(point?.unit).toBe("s");
        expect(point?.scope).toBe("connect-otel");
        expect(point?.boundaries).toEqual(callDurationBuckets);
        expect(point?.attributes).toEqual(expectedMetricAttributes("stable", wire, side, mc.spanName, 0, t));
        // the same clock readings as the span: equal up to the SDK's nanosecond rounding
        expect(Math.abs((point?.sum ?? 0) * 1000 - durationMs(span)), name).toBeLessThan(0.01);
      }
      expect(points.filter((p) => p.name.startsWith("rpc.") && !p.name.endsWith(".call.duration"))).toEqual([]);
    });

    it("legacy: the v1.37 histograms only — duration in ms, sizes per message, messages per call", async () => {
      const exchange = await mc.run(client("legacy"));
      const spans = await callSpans(recorder, mc.spanName);
      const points = await metrics.collect();
      expect(pointsOf(points, CLIENT_DURATION)).toEqual([]);
      expect(pointsOf(points, SERVER_DURATION)).toEqual([]);
      const t = target(serverOf("legacy"));
      for (const [side, span] of [
        ["client", spans.client],
        ["server", spans.server],
      ] as const) {
        const attributes = expectedMetricAttributes("legacy", wire, side, mc.spanName, 0, t);
        const duration = pointsOf(points, `rpc.${side}.duration`);
        expect(duration.map((p) => [p.unit, p.count, p.attributes])).toEqual([["ms", 1, attributes]]);
        expect(Math.abs((duration[0]?.sum ?? 0) - durationMs(span))).toBeLessThan(0.01);
        const perRpc = (name: string) =>
          pointsOf(points, `rpc.${side}.${name}`).map((p) => [p.unit, p.count, p.sum, p.attributes]);
        expect(perRpc("requests_per_rpc")).toEqual([["{count}", 1, exchange.sent.length, attributes]]);
        expect(perRpc("responses_per_rpc")).toEqual([["{count}", 1, exchange.received.length, attributes]]);
        // sizes: one record per message, status-free attributes
        const { "rpc.grpc.status_code": _status, ...sizeAttributes } = attributes;
        const sizes = (name: string) =>
          pointsOf(points, `rpc.${side}.${name}`).map((p) => [p.unit, p.count, p.attributes]);
        expect(sizes("request.size")).toEqual([["By", exchange.sent.length, sizeAttributes]]);
        expect(sizes("response.size")).toEqual([["By", exchange.received.length, sizeAttributes]]);
      }
    });

    it("dup: the stable and the v1.37 histograms, each with its own attributes", async () => {
      await mc.run(client("dup"));
      const points = await metrics.collect();
      const t = target(serverOf("dup"));
      for (const side of ["client", "server"] as const) {
        expect(pointsOf(points, `rpc.${side}.call.duration`).map((p) => p.attributes)).toEqual([
          expectedMetricAttributes("stable", wire, side, mc.spanName, 0, t),
        ]);
        expect(pointsOf(points, `rpc.${side}.duration`).map((p) => p.attributes)).toEqual([
          expectedMetricAttributes("legacy", wire, side, mc.spanName, 0, t),
        ]);
      }
    });

    it("the context of each record carries the call's span (exemplars)", async () => {
      const recording = createRecordingMeterProvider();
      const server = await startServer(wire, (router) =>
        router.service(
          UserService,
          traceUserService(createUserImpl(), {
            tracerProvider: recorder.provider,
            meterProvider: recording.provider,
            semconv: "dup",
          }),
        ),
      );
      try {
        await mc.run(
          createTracedUserServiceClient(server.transport(), {
            tracerProvider: recorder.provider,
            meterProvider: recording.provider,
            semconv: "dup",
          }),
        );
        const spans = await callSpans(recorder, mc.spanName);
        expect(recording.records.length).toBeGreaterThan(4);
        for (const r of recording.records) {
          const side = r.instrument.startsWith("rpc.client.") ? spans.client : spans.server;
          const spanContext = r.context === undefined ? undefined : trace.getSpanContext(r.context);
          expect(spanContext?.spanId, r.instrument).toBe(side.spanContext().spanId);
          expect(spanContext?.traceId, r.instrument).toBe(side.spanContext().traceId);
        }
      } finally {
        await server.close();
      }
    });
  });

  it.each([Code.NotFound, Code.Unavailable])(
    "FetchUser failing with %i: status and error.type as on the spans",
    async (code) => {
      const error = await errorOf(client("stable").fetchUser({ userId: ERROR_BASE + code }));
      expect(error.code).toBe(code);
      const points = await metrics.collect();
      const t = target(serverOf("stable"));
      for (const [name, side] of [
        [CLIENT_DURATION, "client"],
        [SERVER_DURATION, "server"],
      ] as const) {
        expect(pointsOf(points, name).map((p) => p.attributes)).toEqual([
          expectedMetricAttributes("stable", wire, side, FETCH_USER, code, t),
        ]);
      }
    },
  );

  it("a stream the client cancels: CANCELLED on both sides, one point each", async () => {
    const abort = new AbortController();
    const error = await errorOf(
      (async () => {
        for await (const _ of client("hanging").streamUsers({ pageSize: 1 }, { signal: abort.signal })) abort.abort();
      })(),
    );
    expect(error.code).toBe(Code.Canceled);
    await spanOf(recorder, "user.v1.UserService/StreamUsers", SpanKind.SERVER);
    const points = await metrics.collect();
    for (const name of [CLIENT_DURATION, SERVER_DURATION]) {
      expect(
        pointsOf(points, name).map((p) => p.attributes["rpc.status_code"]),
        name,
      ).toEqual([wire.protocol === "connect" ? "canceled" : "CANCELLED"]);
    }
  });

  it("a deadline: DEADLINE_EXCEEDED on the client, one point", async () => {
    const error = await errorOf(
      (async () => {
        for await (const _ of client("hanging").streamUsers({ pageSize: 1 }, { timeoutMs: 200 })) {
          // keep reading until the deadline
        }
      })(),
    );
    expect(error.code).toBe(Code.DeadlineExceeded);
    await spanOf(recorder, "user.v1.UserService/StreamUsers", SpanKind.SERVER);
    const points = await metrics.collect();
    expect(pointsOf(points, CLIENT_DURATION).map((p) => p.attributes["error.type"])).toEqual([
      wire.protocol === "connect" ? "deadline_exceeded" : "DEADLINE_EXCEEDED",
    ]);
    expect(pointsOf(points, SERVER_DURATION)).toHaveLength(1);
  });

  it("sampled-out calls record metrics; untraced methods, filtered calls and metrics: false record none", async () => {
    const off = createSpanRecorder({ sampler: new AlwaysOffSampler() });
    await client("stable", { tracerProvider: off.provider }).fetchUser({ userId: 1 });
    expect(pointsOf(await metrics.collect(), CLIENT_DURATION)).toHaveLength(1);

    await client("stable", { filter: () => false }).fetchUser({ userId: 1 });
    expect(pointsOf(await metrics.collect(), CLIENT_DURATION)).toEqual([]);

    await client("stable", { metrics: false }).fetchUser({ userId: 1 });
    expect(pointsOf(await metrics.collect(), CLIENT_DURATION)).toEqual([]);
  });
});

afterAll(() => metrics.shutdown());
