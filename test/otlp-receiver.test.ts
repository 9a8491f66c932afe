import { readFile } from "node:fs/promises";
import * as path from "node:path";
import { gzipSync } from "node:zlib";
import { context, type Span, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import { ExportResultCode } from "@opentelemetry/core";
import { OTLPTraceExporter as JsonExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { OTLPTraceExporter as ProtobufExporter } from "@opentelemetry/exporter-trace-otlp-proto";
import { CompressionAlgorithm } from "@opentelemetry/otlp-exporter-base";
import { resourceFromAttributes } from "@opentelemetry/resources";
import {
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
  type SpanExporter,
  TracerProvider,
} from "@opentelemetry/sdk-trace";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type OtlpReceiver, startOtlpReceiver } from "../examples/otlp-receiver.js";
import type { SpanRecord } from "../examples/span-record.js";
import { bufBin, listFiles, makeTmpDir, removeTmpDir, repoRoot, runOk } from "./support/plugin-harness.js";

// The demos' OTLP receiver takes both encodings of OTLP/HTTP: the spans that OpenTelemetry JS's own
// http/json and http/protobuf exporters send decode to the same records, and those records are the
// spans the SDK ended. Its protobuf decoder is protobuf-es code generated from the vendored OTLP
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
