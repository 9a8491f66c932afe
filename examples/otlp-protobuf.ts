import { fromBinary } from "@bufbuild/protobuf";
import { ExportTraceServiceRequestSchema } from "./otlp-proto/gen/opentelemetry/proto/collector/trace/v1/trace_service_pb.js";
import type { AnyValue, KeyValue } from "./otlp-proto/gen/opentelemetry/proto/common/v1/common_pb.js";
import type { Span } from "./otlp-proto/gen/opentelemetry/proto/trace/v1/trace_pb.js";
import { type Attributes, type AttributeValue, KIND_NAMES, type SpanRecord, STATUS_NAMES } from "./span-record.js";

/**
 * Decodes the body of an OTLP/HTTP protobuf export (`content-type: application/x-protobuf`), the
 * default protocol of the Go and Python SDKs' exporters, into the same span records as
 * {@link spansFromOtlpJson} of ./span-record.ts. The message is
 * `opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest`, read by protobuf-es with code
 * generated from the vendored schema in ./otlp-proto (opentelemetry-proto v1.9.0).
 *
 * Mapping, as the OTLP/JSON encoding writes the same fields: trace and span ids as lowercase hex,
 * times in ms since the epoch (from `fixed64` nanoseconds), 64-bit integer attributes as numbers,
 * bytes attributes as base64 strings, array and key-value list attributes recursively.
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
