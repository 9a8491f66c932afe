import { fromBinary } from "@bufbuild/protobuf";
import { type MetricPointRecord, type PointData, TEMPORALITY_NAMES } from "./metric-record.js";
import { ExportMetricsServiceRequestSchema } from "./otlp-proto/gen/opentelemetry/proto/collector/metrics/v1/metrics_service_pb.js";
import { ExportTraceServiceRequestSchema } from "./otlp-proto/gen/opentelemetry/proto/collector/trace/v1/trace_service_pb.js";
import type { AnyValue, KeyValue } from "./otlp-proto/gen/opentelemetry/proto/common/v1/common_pb.js";
import type { Metric } from "./otlp-proto/gen/opentelemetry/proto/metrics/v1/metrics_pb.js";
import type { Span } from "./otlp-proto/gen/opentelemetry/proto/trace/v1/trace_pb.js";
import { type Attributes, type AttributeValue, KIND_NAMES, type SpanRecord, STATUS_NAMES } from "./span-record.js";

/**
 * Decodes the body of an OTLP/HTTP protobuf export (`content-type: application/x-protobuf`), the
 * default protocol of the Go and Python SDKs' exporters, into the same records as the OTLP/JSON
 * decoders: spans as {@link spansFromOtlpJson} of ./span-record.ts, metric data points as
 * {@link metricsFromOtlpJson} of ./metric-record.ts. The messages are
 * `opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest` and
 * `opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceRequest`, read by protobuf-es with
 * code generated from the vendored schema in ./otlp-proto (opentelemetry-proto v1.9.0).
 *
 * Mapping, as the OTLP/JSON encoding writes the same fields: trace and span ids as lowercase hex,
 * times in ms since the epoch (from `fixed64` nanoseconds), 64-bit integer attributes and counts
 * as numbers, bytes attributes as base64 strings, array and key-value list attributes recursively.
 */

/**
 * Decodes an `ExportTraceServiceRequest`.
 *
 * @param body the request body, after any `content-encoding` was undone
 * @returns the spans of all resources and scopes, in the order of the request
 * @throws {Error} when `body` is not a valid protobuf encoding of the message
 * @throws {TypeError} when a span's trace id is not 16 bytes or its span id not 8 bytes
 */
export function spansFromOtlpProtobuf(body: Uint8Array): SpanRecord[] {
  const request = fromBinary(ExportTraceServiceRequestSchema, body);
  const out: SpanRecord[] = [];
  for (const rs of request.resourceSpans) {
    const resource = decodeAttributes(rs.resource?.attributes ?? []);
    const serviceName = typeof resource["service.name"] === "string" ? resource["service.name"] : "unknown_service";
    for (const ss of rs.scopeSpans) {
      for (const span of ss.spans) {
        out.push(decodeSpan(span, serviceName, resource));
      }
    }
  }
  return out;
}

/**
 * Decodes an `ExportMetricsServiceRequest`, keeping what ./metric-record.ts keeps of each point.
 *
 * @param body the request body, after any `content-encoding` was undone
 * @returns the points of all resources, scopes and metrics, in the order of the request
 * @throws {Error} when `body` is not a valid protobuf encoding of the message
 */
export function metricsFromOtlpProtobuf(body: Uint8Array): MetricPointRecord[] {
  const request = fromBinary(ExportMetricsServiceRequestSchema, body);
  const out: MetricPointRecord[] = [];
  for (const rm of request.resourceMetrics) {
    const resource = decodeAttributes(rm.resource?.attributes ?? []);
    const serviceName = typeof resource["service.name"] === "string" ? resource["service.name"] : "unknown_service";
    for (const sm of rm.scopeMetrics) {
      for (const metric of sm.metrics) {
        for (const [point, data] of decodePoints(metric)) {
          out.push({
            metric: metric.name,
            unit: metric.unit,
            scope: sm.scope?.name ?? "",
            attributes: decodeAttributes(point.attributes),
            startMs: nanosToMs(point.startTimeUnixNano),
            timeMs: nanosToMs(point.timeUnixNano),
            temporality: temporalityOf(metric),
            serviceName,
            resource,
            ...data,
          });
        }
      }
    }
  }
  return out;
}

/** The aggregation temporality of a sum or histogram; `UNSPECIFIED` for the kinds without one. */
function temporalityOf(metric: Metric): MetricPointRecord["temporality"] {
  const data = metric.data;
  return data.case === "sum" || data.case === "histogram" || data.case === "exponentialHistogram"
    ? (TEMPORALITY_NAMES[data.value.aggregationTemporality] ?? "UNSPECIFIED")
    : "UNSPECIFIED";
}

/** The common fields of every kind of data point. */
interface PointHead {
  attributes: KeyValue[];
  startTimeUnixNano: bigint;
  timeUnixNano: bigint;
}

/** The points of a metric with their kind's data; none for a metric without data. */
function decodePoints(metric: Metric): [PointHead, PointData][] {
  const data = metric.data;
  switch (data.case) {
    case "gauge":
    case "sum":
      return data.value.dataPoints.map((p) => [
        p,
        { type: data.case, value: p.value.case === undefined ? 0 : Number(p.value.value) },
      ]);
    case "histogram":
      return data.value.dataPoints.map((p) => {
        const point: Extract<PointData, { type: "histogram" }> = {
          type: "histogram",
          count: Number(p.count),
          explicitBounds: [...p.explicitBounds],
          bucketCounts: p.bucketCounts.map(Number),
        };
        if (p.sum !== undefined) point.sum = p.sum;
        if (p.min !== undefined) point.min = p.min;
        if (p.max !== undefined) point.max = p.max;
        return [p, point];
      });
    case "exponentialHistogram":
      return data.value.dataPoints.map((p) => [
        p,
        p.sum === undefined
          ? { type: data.case, count: Number(p.count) }
          : { type: data.case, count: Number(p.count), sum: p.sum },
      ]);
    case "summary":
      return data.value.dataPoints.map((p) => [p, { type: data.case, count: Number(p.count), sum: p.sum }]);
    default:
      return [];
  }
}

function decodeSpan(span: Span, serviceName: string, resource: Attributes): SpanRecord {
  const record: SpanRecord = {
    traceId: hexId(span.traceId, 16, "traceId"),
    spanId: hexId(span.spanId, 8, "spanId"),
    name: span.name,
    kind: KIND_NAMES[span.kind] ?? "UNSPECIFIED",
    startMs: nanosToMs(span.startTimeUnixNano),
    endMs: nanosToMs(span.endTimeUnixNano),
    status: { code: STATUS_NAMES[span.status?.code ?? 0] ?? "UNSET" },
    attributes: decodeAttributes(span.attributes),
    events: span.events.map((event) => ({
      name: event.name,
      timeMs: nanosToMs(event.timeUnixNano),
      attributes: decodeAttributes(event.attributes),
    })),
    serviceName,
    resource,
  };
  if (span.parentSpanId.length > 0 && span.parentSpanId.some((b) => b !== 0)) {
    record.parentSpanId = hexId(span.parentSpanId, 8, "parentSpanId");
  }
  const message = span.status?.message ?? "";
  if (message !== "") {
    record.status.message = message;
  }
  return record;
}

function decodeAttributes(list: readonly KeyValue[]): Attributes {
  const out: Attributes = {};
  for (const kv of list) {
    out[kv.key] = decodeAnyValue(kv.value);
  }
  return out;
}

function decodeAnyValue(value: AnyValue | undefined): AttributeValue {
  const v = value?.value;
  switch (v?.case) {
    case "stringValue":
    case "boolValue":
    case "doubleValue":
      return v.value;
    case "intValue":
      return Number(v.value);
    case "bytesValue":
      return Buffer.from(v.value).toString("base64");
    case "arrayValue":
      return v.value.values.map(decodeAnyValue);
    case "kvlistValue":
      return decodeAttributes(v.value.values);
    default:
      return null;
  }
}

/** Nanoseconds since the epoch to ms, exact to the microsecond. */
function nanosToMs(nanos: bigint): number {
  return Number(nanos / 1000n) / 1000;
}

function hexId(bytes: Uint8Array, length: number, what: string): string {
  if (bytes.length !== length) {
    throw new TypeError(`otlp protobuf: ${what} is ${bytes.length} bytes, not ${length}`);
  }
  return Buffer.from(bytes).toString("hex");
}
