import { readFile } from "node:fs/promises";
import * as path from "node:path";
import { gzipSync } from "node:zlib";
import { context, type Span, SpanKind, SpanStatusCode, trace, ValueType } from "@opentelemetry/api";
import { ExportResultCode } from "@opentelemetry/core";
import { OTLPMetricExporter as JsonMetricExporter } from "@opentelemetry/exporter-metrics-otlp-http";
import { OTLPMetricExporter as ProtobufMetricExporter } from "@opentelemetry/exporter-metrics-otlp-proto";
import { OTLPTraceExporter as JsonExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { OTLPTraceExporter as ProtobufExporter } from "@opentelemetry/exporter-trace-otlp-proto";
import { CompressionAlgorithm } from "@opentelemetry/otlp-exporter-base";
import { resourceFromAttributes } from "@opentelemetry/resources";
import {
  AggregationTemporality,
  MeterProvider,
  MetricReader,
  type PushMetricExporter,
  type ResourceMetrics,
} from "@opentelemetry/sdk-metrics";
import {
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
  type SpanExporter,
  TracerProvider,
} from "@opentelemetry/sdk-trace";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { MetricPointRecord } from "../examples/metric-record.js";
import { type OtlpReceiver, startOtlpReceiver } from "../examples/otlp-receiver.js";
import type { SpanRecord } from "../examples/span-record.js";
import { bufBin, listFiles, makeTmpDir, removeTmpDir, repoRoot, runOk } from "./support/plugin-harness.js";

// The demos' OTLP receiver takes both encodings of OTLP/HTTP, for traces and metrics: the spans and
// metric data points that OpenTelemetry JS's own http/json and http/protobuf exporters send decode
// to the same records, and those records are the spans the SDK ended and the points it collected. Its protobuf decoder is protobuf-es code generated from the vendored OTLP
// schema of examples/otlp-proto, checked in and compared with a fresh `buf generate` here.

/** Ends a few spans covering what the records carry: kinds, parents, every attribute type, events, status. */
function endedSpans(): ReadableSpan[] {
  const memory = new InMemorySpanExporter();
  const provider = new TracerProvider({
    resource: resourceFromAttributes({ "service.name": "receiver-test", "deployment.environment.name": "test" }),
    spanProcessors: [new SimpleSpanProcessor({ exporter: memory })],
  });
  const tracer = provider.getTracer("receiver-test");
  tracer.startActiveSpan("parent", { kind: SpanKind.SERVER }, (parent: Span) => {
    const ctx = trace.setSpan(context.active(), parent);
    const child = tracer.startSpan(
      "child",
      {
        kind: SpanKind.CLIENT,
        attributes: {
          "a.string": "value with spaces",
          "a.bool": true,
          "a.int": 42,
          "a.negative": -7,
          "a.double": 2.5,
          "a.strings": ["x", "y"],
          "a.ints": [1, 2, 3],
          "a.bools": [true, false],
        },
      },
      ctx,
    );
    child.addEvent("rpc.message", { "rpc.message.type": "SENT", "rpc.message.id": 1 });
    child.addEvent("bare");
    child.setStatus({ code: SpanStatusCode.ERROR, message: "it broke" });
    child.end();
    parent.setStatus({ code: SpanStatusCode.OK });
    parent.end();
  });
  return memory.getFinishedSpans();
}

function exportWith(exporter: SpanExporter, spans: ReadableSpan[]): Promise<void> {
  return new Promise((resolve, reject) =>
    exporter.export(spans, (result) => {
      if (result.code === ExportResultCode.SUCCESS) resolve();
      else reject(result.error ?? new Error("export failed"));
    }),
  );
}

/** A reader that collects when asked, to export one collection with several exporters. */
class CollectingReader extends MetricReader {
  protected override async onForceFlush(): Promise<void> {}
  protected override async onShutdown(): Promise<void> {}
}

/**
 * Records one instrument of each kind the records keep whole (a histogram with explicit buckets,
 * an int counter, a double up-down counter, a gauge), as a process would, and collects them.
 */
async function collectedMetrics(temporality: AggregationTemporality): Promise<ResourceMetrics> {
  const reader = new CollectingReader({ aggregationTemporalitySelector: () => temporality });
  const provider = new MeterProvider({
    resource: resourceFromAttributes({ "service.name": "receiver-test", "deployment.environment.name": "test" }),
    readers: [reader],
  });
  const meter = provider.getMeter("receiver-test-meter", "1.2.3");
  const histogram = meter.createHistogram("rpc.client.call.duration", {
    unit: "s",
    advice: { explicitBucketBoundaries: [0.005, 0.01, 0.025] },
  });
  const attrs = { "rpc.method": "user.v1.UserService/FetchUser", "rpc.status_code": "OK" };
  histogram.record(0.002, attrs);
  histogram.record(0.02, attrs);
  histogram.record(0.5, attrs);
  histogram.record(0.007, { ...attrs, "rpc.status_code": "NOT_FOUND", "error.type": "NOT_FOUND", "a.int": 7 });
  meter.createCounter("calls", { unit: "{call}" }).add(3, { "a.bool": true });
  meter.createUpDownCounter("in.flight", { valueType: ValueType.DOUBLE }).add(-1.5);
  meter.createGauge("temperature", { unit: "Cel" }).record(21.25, { room: "a" });
  const { resourceMetrics, errors } = await reader.collect();
  expect(errors).toEqual([]);
  await provider.shutdown();
  return resourceMetrics;
}

function exportMetricsWith(exporter: PushMetricExporter, metrics: ResourceMetrics): Promise<void> {
  return new Promise((resolve, reject) =>
    exporter.export(metrics, (result) => {
      if (result.code === ExportResultCode.SUCCESS) resolve();
      else reject(result.error ?? new Error("export failed"));
    }),
  );
}

describe("OTLP receiver", () => {
  let receiver: OtlpReceiver;
  const spans = endedSpans();
  beforeAll(async () => {
    receiver = await startOtlpReceiver();
  });
  afterAll(async () => {
    await receiver.close();
  });

  async function received(exporter: SpanExporter): Promise<SpanRecord[]> {
    const before = receiver.spans().length;
    try {
      await exportWith(exporter, spans);
    } finally {
      await exporter.shutdown();
    }
    return receiver.spans().slice(before);
  }

  it("decodes the protobuf export of OpenTelemetry JS as the JSON export, gzipped or not", async () => {
    const url = `${receiver.url}/v1/traces`;
    const json = await received(new JsonExporter({ url }));
    const protobuf = await received(new ProtobufExporter({ url }));
    const gzipped = await received(new ProtobufExporter({ url, compression: CompressionAlgorithm.GZIP }));
    expect(json).toHaveLength(2);
    expect(protobuf).toEqual(json);
    expect(gzipped).toEqual(json);
    expect(receiver.rejected()).toBe(0);
  });

  it("keeps the spans as the SDK ended them", async () => {
    const [child, parent] = await received(new ProtobufExporter({ url: `${receiver.url}/v1/traces` }));
    const [childSpan, parentSpan] = spans as [ReadableSpan, ReadableSpan];
    expect(parent).toMatchObject({
      traceId: parentSpan.spanContext().traceId,
      spanId: parentSpan.spanContext().spanId,
      name: "parent",
      kind: "SERVER",
      status: { code: "OK" },
      serviceName: "receiver-test",
      attributes: {},
      events: [],
    });
    expect(parent?.parentSpanId).toBeUndefined();
    expect(parent?.resource["deployment.environment.name"]).toBe("test");
    expect(child).toMatchObject({
      traceId: parentSpan.spanContext().traceId,
      spanId: childSpan.spanContext().spanId,
      parentSpanId: parentSpan.spanContext().spanId,
      name: "child",
      kind: "CLIENT",
      status: { code: "ERROR", message: "it broke" },
      attributes: {
        "a.string": "value with spaces",
        "a.bool": true,
        "a.int": 42,
        "a.negative": -7,
        "a.double": 2.5,
        "a.strings": ["x", "y"],
        "a.ints": [1, 2, 3],
        "a.bools": [true, false],
      },
    });
    expect(child?.events.map((e) => [e.name, e.attributes])).toEqual([
      ["rpc.message", { "rpc.message.type": "SENT", "rpc.message.id": 1 }],
      ["bare", {}],
    ]);
    const startMs = childSpan.startTime[0] * 1000 + childSpan.startTime[1] / 1e6;
    expect(child?.startMs).toBeCloseTo(startMs, 3);
    expect(child?.endMs).toBeGreaterThanOrEqual(child?.startMs ?? Number.POSITIVE_INFINITY);
  });

  it("answers a protobuf export with an empty protobuf ExportTraceServiceResponse", async () => {
    const res = await fetch(`${receiver.url}/v1/traces`, {
      method: "POST",
      headers: { "content-type": "application/x-protobuf" },
      body: new Blob([]), // an empty request: no spans
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/x-protobuf");
    expect((await res.arrayBuffer()).byteLength).toBe(0);
  });

  async function receivedMetrics(exporter: PushMetricExporter, metrics: ResourceMetrics): Promise<MetricPointRecord[]> {
    const before = receiver.metrics().length;
    try {
      await exportMetricsWith(exporter, metrics);
    } finally {
      await exporter.shutdown();
    }
    return receiver.metrics().slice(before);
  }

  it("decodes the protobuf metrics export of OpenTelemetry JS as the JSON export, gzipped or not", async () => {
    const url = `${receiver.url}/v1/metrics`;
    const spansBefore = receiver.spans().length;
    for (const temporality of [AggregationTemporality.CUMULATIVE, AggregationTemporality.DELTA]) {
      const metrics = await collectedMetrics(temporality);
      const json = await receivedMetrics(new JsonMetricExporter({ url }), metrics);
      const protobuf = await receivedMetrics(new ProtobufMetricExporter({ url }), metrics);
      const gzipped = await receivedMetrics(
        new ProtobufMetricExporter({ url, compression: CompressionAlgorithm.GZIP }),
        metrics,
      );
      expect(json).toHaveLength(5);
      expect(protobuf).toEqual(json);
      expect(gzipped).toEqual(json);
    }
    expect(receiver.spans()).toHaveLength(spansBefore);
    expect(receiver.rejected()).toBe(0);
  });

  it("keeps the metric data points as the SDK collected them", async () => {
    const metrics = await collectedMetrics(AggregationTemporality.CUMULATIVE);
    const points = await receivedMetrics(new ProtobufMetricExporter({ url: `${receiver.url}/v1/metrics` }), metrics);
    const common = {
      scope: "receiver-test-meter",
      serviceName: "receiver-test",
      resource: expect.objectContaining({
        "service.name": "receiver-test",
        "deployment.environment.name": "test",
      }) as unknown,
    };
    const [ok, notFound, calls, inFlight, temperature] = points;
    expect(ok).toMatchObject({
      ...common,
      metric: "rpc.client.call.duration",
      unit: "s",
      type: "histogram",
      temporality: "CUMULATIVE",
      attributes: { "rpc.method": "user.v1.UserService/FetchUser", "rpc.status_code": "OK" },
      count: 3,
      min: 0.002,
      max: 0.5,
      explicitBounds: [0.005, 0.01, 0.025],
      bucketCounts: [1, 0, 1, 1],
    });
    expect((ok as { sum: number }).sum).toBeCloseTo(0.522);
    expect(notFound).toMatchObject({
      type: "histogram",
      attributes: { "rpc.status_code": "NOT_FOUND", "error.type": "NOT_FOUND", "a.int": 7 },
      count: 1,
      bucketCounts: [0, 1, 0, 0],
    });
    expect(calls).toMatchObject({
      ...common,
      metric: "calls",
      unit: "{call}",
      type: "sum",
      temporality: "CUMULATIVE",
      value: 3,
      attributes: { "a.bool": true },
    });
    expect(inFlight).toMatchObject({ metric: "in.flight", type: "sum", value: -1.5 });
    expect(temperature).toMatchObject({
      metric: "temperature",
      unit: "Cel",
      type: "gauge",
      temporality: "UNSPECIFIED",
      value: 21.25,
      attributes: { room: "a" },
    });
    const histogram = metrics.scopeMetrics[0]?.metrics[0];
    const sdkPoint = histogram?.dataPoints[0];
    expect(ok?.timeMs).toBeCloseTo((sdkPoint?.endTime[0] ?? 0) * 1000 + (sdkPoint?.endTime[1] ?? 0) / 1e6, 3);
    expect(ok?.startMs).toBeLessThanOrEqual(ok?.timeMs ?? 0);
  });

  it("answers a protobuf metrics export with an empty protobuf response, and 404 on a signal it does not take", async () => {
    const res = await fetch(`${receiver.url}/v1/metrics`, {
      method: "POST",
      headers: { "content-type": "application/x-protobuf" },
      body: new Blob([]), // an empty request: no metrics
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/x-protobuf");
    expect((await res.arrayBuffer()).byteLength).toBe(0);
    const before = receiver.rejected();
    const logs = await fetch(`${receiver.url}/v1/logs`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{}",
    });
    expect(logs.status).toBe(404);
    const get = await fetch(`${receiver.url}/v1/metrics`);
    expect(get.status).toBe(405);
    expect(((await get.json()) as { message: string }).message).toBe("method GET not allowed on /v1/metrics");
    expect(receiver.rejected()).toBe(before + 2);
  });

  it("rejects a body that is not protobuf with 400, other content types with 415", async () => {
    const before = receiver.rejected();
    const post = (type: string, body: Uint8Array, encoding?: string) =>
      fetch(`${receiver.url}/v1/traces`, {
        method: "POST",
        headers: { "content-type": type, ...(encoding ? { "content-encoding": encoding } : {}) },
        body: new Blob([Uint8Array.from(body)]),
      });
    // Field 1 (resource_spans), length-delimited, declaring 100 bytes that are not there.
    const truncated = new Uint8Array([0x0a, 0x64, 0x01]);
    const bad = await post("application/x-protobuf", truncated);
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { message: string }).message).toMatch(/^bad application\/x-protobuf body: /);
    expect((await post("application/x-protobuf", gzipSync(truncated), "gzip")).status).toBe(400);
    expect((await post("text/plain", new Uint8Array([1]))).status).toBe(415);
    expect(receiver.rejected()).toBe(before + 3);
  });
});

describe("examples/otlp-proto/gen is fresh", () => {
  let tmp: string | undefined;
  beforeAll(async () => {
    tmp = await makeTmpDir("otlp-proto-freshness-");
  });
  afterAll(async () => {
    await removeTmpDir(tmp);
  });

  it("equals what buf generate writes from the vendored schema, file for file", async () => {
    const template = "examples/otlp-proto/buf.gen.yaml";
    // `-o` prefixes the template's `out:`, so this writes <tmp>/examples/otlp-proto/gen.
    await runOk(bufBin, ["generate", "--template", template, "-o", tmp as string], {
      cwd: repoRoot,
      timeoutMs: 60_000,
    });
    const fresh = path.join(tmp as string, "examples", "otlp-proto", "gen");
    const checkedIn = path.join(repoRoot, "examples", "otlp-proto", "gen");
    const names = await listFiles(fresh);
    expect(names.length, "buf generate wrote no files").toBeGreaterThan(0);
    expect(await listFiles(checkedIn)).toEqual(names);
    const stale: string[] = [];
    for (const name of names) {
      const [want, have] = await Promise.all([readFile(path.join(fresh, name)), readFile(path.join(checkedIn, name))]);
      if (!want.equals(have)) stale.push(name);
    }
    expect(stale, `stale: run npx buf generate --template ${template} and commit the result`).toEqual([]);
  }, 90_000);
});
