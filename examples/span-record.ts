/**
 * Finished spans as the demo's receiver keeps them and the waterfall draws them: one flat record
 * per span, decoded from an OTLP/JSON `ExportTraceServiceRequest`
 * (opentelemetry-proto `opentelemetry/proto/collector/trace/v1/trace_service.proto`, JSON mapping
 * as in the OTLP specification: hex trace and span ids, enum values as integers, 64-bit integers
 * as decimal strings or numbers).
 */

import { type Attributes, arrayField, attributesFromOtlpJson, enumName, field, nanosToMs } from "./otlp-json.js";

export type { Attributes, AttributeValue } from "./otlp-json.js";

/** Span kind names of `opentelemetry.proto.trace.v1.Span.SpanKind`, without the prefix. */
export type SpanKindName = "UNSPECIFIED" | "INTERNAL" | "SERVER" | "CLIENT" | "PRODUCER" | "CONSUMER";

/** Status code names of `opentelemetry.proto.trace.v1.Status.StatusCode`, without the prefix. */
export type StatusCodeName = "UNSET" | "OK" | "ERROR";

/** One event of a span. */
export interface SpanEventRecord {
  name: string;
  /** Time of the event, milliseconds since the Unix epoch (fractional). */
  timeMs: number;
  attributes: Attributes;
}

/** One finished span. */
export interface SpanRecord {
  /** Trace id, 32 lowercase hex digits. */
  traceId: string;
  /** Span id, 16 lowercase hex digits. */
  spanId: string;
  /** Parent span id, 16 lowercase hex digits; absent on a root span. */
  parentSpanId?: string;
  name: string;
  kind: SpanKindName;
  /** Start, milliseconds since the Unix epoch (fractional; about microsecond precision). */
  startMs: number;
  /** End, milliseconds since the Unix epoch (fractional). */
  endMs: number;
  status: { code: StatusCodeName; message?: string };
  attributes: Attributes;
  events: SpanEventRecord[];
  /** `service.name` of the span's resource; `unknown_service` when the resource has none. */
  serviceName: string;
  /** Attributes of the span's resource. */
  resource: Attributes;
}

/** The attribute in which connect-otel records a call's status code name (semconv RPC conventions). */
export const RPC_STATUS_CODE_KEY = "rpc.status_code";

/**
 * The status code name connect-otel recorded on a span: the gRPC name (`NOT_FOUND`) or the Connect
 * one (`not_found`), as {@link RPC_STATUS_CODE_KEY} holds it; undefined when the span has none.
 */
export function rpcStatusCode(span: SpanRecord): string | undefined {
  const value = span.attributes[RPC_STATUS_CODE_KEY];
  return typeof value === "string" ? value : undefined;
}

/** {@link SpanKindName}s by their number in `opentelemetry.proto.trace.v1.Span.SpanKind`. */
export const KIND_NAMES: readonly SpanKindName[] = [
  "UNSPECIFIED",
  "INTERNAL",
  "SERVER",
  "CLIENT",
  "PRODUCER",
  "CONSUMER",
];
/** {@link StatusCodeName}s by their number in `opentelemetry.proto.trace.v1.Status.StatusCode`. */
export const STATUS_NAMES: readonly StatusCodeName[] = ["UNSET", "OK", "ERROR"];

/**
 * Decodes the body of an OTLP/JSON `POST /v1/traces` into span records.
 *
 * @param body the parsed JSON body (`JSON.parse` of the request)
 * @returns the spans of all resources and scopes, in the order of the request
 * @throws {TypeError} when the body is not an object with a `resourceSpans` array, or a span lacks
 *   its trace id, span id or times
 */
export function spansFromOtlpJson(body: unknown): SpanRecord[] {
  const resourceSpans = field(body, "resourceSpans");
  if (resourceSpans === undefined) {
    return [];
  }
  if (!Array.isArray(resourceSpans)) {
    throw new TypeError("otlp json: resourceSpans is not an array");
  }
  const out: SpanRecord[] = [];
  for (const rs of resourceSpans) {
    const resource = attributesFromOtlpJson(field(field(rs, "resource"), "attributes"));
    const serviceName = typeof resource["service.name"] === "string" ? resource["service.name"] : "unknown_service";
    for (const ss of arrayField(rs, "scopeSpans")) {
      for (const span of arrayField(ss, "spans")) {
        out.push(decodeSpan(span, serviceName, resource));
      }
    }
  }
  return out;
}

function decodeSpan(span: unknown, serviceName: string, resource: Attributes): SpanRecord {
  const traceId = hexId(field(span, "traceId"), 32, "traceId");
  const spanId = hexId(field(span, "spanId"), 16, "spanId");
  const parent = field(span, "parentSpanId");
  const status = field(span, "status");
  const message = field(status, "message");
  const record: SpanRecord = {
    traceId,
    spanId,
    name: String(field(span, "name") ?? ""),
    kind: enumName(field(span, "kind"), KIND_NAMES, "SPAN_KIND_", "UNSPECIFIED"),
    startMs: nanosToMs(field(span, "startTimeUnixNano"), "startTimeUnixNano"),
    endMs: nanosToMs(field(span, "endTimeUnixNano"), "endTimeUnixNano"),
    status: { code: enumName(field(status, "code"), STATUS_NAMES, "STATUS_CODE_", "UNSET") },
    attributes: attributesFromOtlpJson(field(span, "attributes")),
    events: arrayField(span, "events").map((event) => ({
      name: String(field(event, "name") ?? ""),
      timeMs: nanosToMs(field(event, "timeUnixNano"), "timeUnixNano"),
      attributes: attributesFromOtlpJson(field(event, "attributes")),
    })),
    serviceName,
    resource,
  };
  if (typeof parent === "string" && parent !== "" && !/^0+$/.test(parent)) {
    record.parentSpanId = hexId(parent, 16, "parentSpanId");
  }
  if (typeof message === "string" && message !== "") {
    record.status.message = message;
  }
  return record;
}

function hexId(value: unknown, length: number, what: string): string {
  if (typeof value !== "string" || value.length !== length || !/^[0-9a-fA-F]+$/.test(value)) {
    throw new TypeError(`otlp json: ${what} is not ${length} hex digits: ${JSON.stringify(value)}`);
  }
  return value.toLowerCase();
}
