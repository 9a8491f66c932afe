import { Code } from "@connectrpc/connect";
import { rpcStatusCode, type SpanRecord } from "../span-record.js";

/**
 * RPC status codes across the three tracing stacks of the polyglot system, which record them under
 * three names: connect-otel `rpc.status_code` (semconv v1.45.0, read by {@link rpcStatusCode} of
 * ../span-record.ts), otelgrpc (v0.65 and later) `rpc.response.status_code` (semconv v1.39–v1.44),
 * both as canonical names, and opentelemetry-instrumentation-grpc the integer `rpc.grpc.status_code`
 * (semconv v1.26–v1.37).
 */

/**
 * Canonical gRPC status names (grpc/doc/statuscodes.md), index = code: connect's `Code` members,
 * whose numbers are gRPC's, in gRPC's spelling (`NotFound` is `NOT_FOUND`, `Canceled` `CANCELLED`).
 */
export const GRPC_STATUS_NAMES: readonly string[] = [
  "OK",
  ...Array.from({ length: Code.Unauthenticated }, (_, i) =>
    i + 1 === Code.Canceled
      ? "CANCELLED"
      : String(Code[i + 1])
          .replace(/([a-z])([A-Z])/g, "$1_$2")
          .toUpperCase(),
  ),
];

/**
 * The canonical name of a gRPC status code, `OK` for undefined (a call that succeeded); connect's
 * `Code` numbers are gRPC's.
 *
 * @throws {RangeError} for a number that is no gRPC status code
 */
export function grpcStatusName(code: number | undefined): string {
  const name = GRPC_STATUS_NAMES[code ?? 0];
  if (name === undefined) throw new RangeError(`${code} is not a grpc status code`);
  return name;
}

/**
 * The status code name a span of any of the three stacks records, looked up in the order
 * connect-otel, otelgrpc, instrumentation-grpc; undefined when the span has none (an HTTP span).
 */
export function anyStackStatusCode(span: SpanRecord): string | undefined {
  const ours = rpcStatusCode(span);
  if (ours !== undefined) return ours;
  const otelgrpc = span.attributes["rpc.response.status_code"];
  if (typeof otelgrpc === "string") return otelgrpc;
  const legacy = span.attributes["rpc.grpc.status_code"];
  return typeof legacy === "number" && GRPC_STATUS_NAMES[legacy] !== undefined ? GRPC_STATUS_NAMES[legacy] : undefined;
}
