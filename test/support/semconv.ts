import { Code } from "@connectrpc/connect";
import type { Wire } from "./servers.js";

/*
 * What the semantic conventions say, restated independently of src/ so that tests catch a wrong
 * table in the runtime: gRPC status names (grpc/doc/statuscodes.md), Connect code strings
 * (connectrpc.com/docs/protocol#error-codes), and the server error codes of semconv
 * docs/rpc/grpc.md and connect-rpc.md.
 */

/** Canonical gRPC status names, index = code. */
export const grpcStatusNames = [
  "OK",
  "CANCELLED",
  "UNKNOWN",
  "INVALID_ARGUMENT",
  "DEADLINE_EXCEEDED",
  "NOT_FOUND",
  "ALREADY_EXISTS",
  "PERMISSION_DENIED",
  "RESOURCE_EXHAUSTED",
  "FAILED_PRECONDITION",
  "ABORTED",
  "OUT_OF_RANGE",
  "UNIMPLEMENTED",
  "INTERNAL",
  "UNAVAILABLE",
  "DATA_LOSS",
  "UNAUTHENTICATED",
] as const;

/** Connect code strings, index = code; `ok` for success as this project writes it. */
export const connectStatusNames = [
  "ok",
  "canceled",
  "unknown",
  "invalid_argument",
  "deadline_exceeded",
  "not_found",
  "already_exists",
  "permission_denied",
  "resource_exhausted",
  "failed_precondition",
  "aborted",
  "out_of_range",
  "unimplemented",
  "internal",
  "unavailable",
  "data_loss",
  "unauthenticated",
] as const;

/** Codes that make a server span an Error; all others leave it Unset. */
export const serverErrorCodes: ReadonlySet<number> = new Set([
  Code.Unknown,
  Code.DeadlineExceeded,
  Code.Unimplemented,
  Code.Internal,
  Code.Unavailable,
  Code.DataLoss,
]);

/** True for the Connect protocol, whose spans carry Connect code strings. */
export function isConnect(wire: Wire): boolean {
  return wire.protocol === "connect";
}

/** Current `rpc.system.name` of a wire: `grpc` for gRPC and gRPC-web, `connectrpc` for Connect. */
export function systemName(wire: Wire): string {
  return isConnect(wire) ? "connectrpc" : "grpc";
}

/** Legacy `rpc.system` of a wire: `grpc` or `connect_rpc`. */
export function legacySystem(wire: Wire): string {
  return isConnect(wire) ? "connect_rpc" : "grpc";
}

/** `rpc.response.status_code` of a code on a wire: gRPC name, or Connect string for Connect. */
export function statusName(wire: Wire, code: number): string {
  const name = (isConnect(wire) ? connectStatusNames : grpcStatusNames)[code];
  if (name === undefined) throw new Error(`no status code ${code}`);
  return name;
}

/** Attribute keys of the legacy conventions, none of which a `current` span may carry. */
export const legacyKeys = ["rpc.system", "rpc.service", "rpc.grpc.status_code", "rpc.connect_rpc.error_code"] as const;

/** Attribute keys only the current conventions have, none of which a `legacy` span may carry. */
export const currentOnlyKeys = ["rpc.system.name", "rpc.response.status_code"] as const;
