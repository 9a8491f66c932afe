import { decodeBinaryHeader, encodeBinaryHeader } from "@connectrpc/connect";
import type { Context, SpanContext, TextMapGetter, TextMapPropagator, TextMapSetter } from "@opentelemetry/api";
import { TraceFlags, trace } from "@opentelemetry/api";

/** gRPC metadata key of the OpenCensus binary trace context; `-bin`: its value is base64 on the wire. */
export const GRPC_TRACE_BIN_HEADER = "grpc-trace-bin";

/**
 * Bytes of the encoded span context (OpenCensus BinaryEncoding, version 0): version 0; field 0 and
 * the 16-byte trace id; field 1 and the 8-byte span id; field 2 and the 1-byte trace options.
 */
const ENCODED_LENGTH = 29;
/** Offsets of the field numbers; each field's value follows its number. */
const TRACE_ID_FIELD = 1;
const SPAN_ID_FIELD = 18;
const OPTIONS_FIELD = 27;

/** Longest header value that can hold {@link ENCODED_LENGTH} bytes: base64 with padding. */
const MAX_VALUE_LENGTH = 40;

/**
 * A `TextMapPropagator` for the binary trace context of OpenCensus gRPC, the `grpc-trace-bin`
 * metadata that gRPC C++ and Java census setups and Go's `go.opencensus.io/plugin/ocgrpc` send
 * and read (OpenCensus BinaryEncoding: 29 bytes, version 0; field 0 + 16-byte trace id; field 1 +
 * 8-byte span id; field 2 + 1 byte of trace options, bit 0 = sampled). As gRPC and connect carry
 * binary metadata, the value is base64 (`encodeBinaryHeader` / `decodeBinaryHeader` of
 * `@connectrpc/connect`: padded or not, standard or URL alphabet).
 *
 * Usable alone (`propagator: new GrpcTraceBinPropagator()`) or in a `CompositePropagator` with the
 * W3C propagators, which then send and accept both formats; on extraction the propagator listed
 * last wins when both carry a valid, different context.
 *
 * - `inject` writes the active span context: trace id, span id and the sampled flag (the trace
 *   state has no place in the format). Nothing for an invalid span context.
 * - `extract` sets a remote span context from a value that decodes to exactly those 29 bytes with
 *   a valid (non-zero) trace id and span id. Anything else — other versions, other lengths or field
 *   numbers, bad base64, a repeated header (joined with `, `), an oversized value — is ignored: the
 *   context is returned unchanged. It never throws.
 *
 * Runs in browsers too: no `node:` imports, no `Buffer`.
 */
export class GrpcTraceBinPropagator implements TextMapPropagator {
  inject(context: Context, carrier: unknown, setter: TextMapSetter): void {
    const sc = trace.getSpanContext(context);
    if (sc === undefined || !trace.isSpanContextValid(sc)) return;
    setter.set(carrier, GRPC_TRACE_BIN_HEADER, encodeBinaryHeader(encodeSpanContext(sc)));
  }

  extract(context: Context, carrier: unknown, getter: TextMapGetter): Context {
    let sc: SpanContext | undefined;
    try {
      const raw = getter.get(carrier, GRPC_TRACE_BIN_HEADER);
      const value = Array.isArray(raw) ? (raw.length === 1 ? raw[0] : undefined) : raw;
      if (typeof value === "string" && value.length <= MAX_VALUE_LENGTH) sc = decodeSpanContext(value);
    } catch {
      // a getter that throws, or a value that is not base64: no context
    }
    return sc === undefined ? context : trace.setSpanContext(context, sc);
  }

  fields(): string[] {
    return [GRPC_TRACE_BIN_HEADER];
  }
}

/** The 29 bytes of a span context; trace options carry only the sampled bit. */
function encodeSpanContext(sc: SpanContext): Uint8Array {
  const bytes = new Uint8Array(ENCODED_LENGTH);
  bytes[0] = 0; // version
  bytes[TRACE_ID_FIELD] = 0;
  writeHex(bytes, TRACE_ID_FIELD + 1, sc.traceId);
  bytes[SPAN_ID_FIELD] = 1;
  writeHex(bytes, SPAN_ID_FIELD + 1, sc.spanId);
  bytes[OPTIONS_FIELD] = 2;
  bytes[OPTIONS_FIELD + 1] = sc.traceFlags & TraceFlags.SAMPLED;
  return bytes;
}

/**
 * The remote span context of a base64 value, or undefined unless it is exactly the version-0
 * encoding with a valid trace id and span id.
 *
 * @throws ConnectError (DATA_LOSS) from `decodeBinaryHeader` for a value that is not base64
 */
function decodeSpanContext(value: string): SpanContext | undefined {
  const bytes = decodeBinaryHeader(value);
  if (
    bytes.length !== ENCODED_LENGTH ||
    bytes[0] !== 0 ||
    bytes[TRACE_ID_FIELD] !== 0 ||
    bytes[SPAN_ID_FIELD] !== 1 ||
    bytes[OPTIONS_FIELD] !== 2
  ) {
    return undefined;
  }
  const sc: SpanContext = {
    traceId: readHex(bytes, TRACE_ID_FIELD + 1, 16),
    spanId: readHex(bytes, SPAN_ID_FIELD + 1, 8),
    traceFlags: (bytes[OPTIONS_FIELD + 1] ?? 0) & TraceFlags.SAMPLED,
    isRemote: true,
  };
  return trace.isSpanContextValid(sc) ? sc : undefined;
}

/** Writes lowercase hex `hex` (an even number of digits) as bytes at `offset`. */
function writeHex(bytes: Uint8Array, offset: number, hex: string): void {
  for (let i = 0; i < hex.length / 2; i++) bytes[offset + i] = Number.parseInt(hex.slice(2 * i, 2 * i + 2), 16);
}

/** `length` bytes at `offset` as lowercase hex. */
function readHex(bytes: Uint8Array, offset: number, length: number): string {
  let hex = "";
  for (let i = offset; i < offset + length; i++) hex += (bytes[i] ?? 0).toString(16).padStart(2, "0");
  return hex;
}
