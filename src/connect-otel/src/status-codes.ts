import { Code } from "@connectrpc/connect";
import { grpcNames } from "./grpc-status-names.js";

/**
 * Connect error code strings by code number (connectrpc.com/docs/protocol#error-codes). Connect
 * has no code for success; this project writes `ok` for it. Connect spells `canceled`.
 */
const connectNames: readonly string[] = grpcNames.map((name, code) =>
  code === Code.Canceled ? "canceled" : name.toLowerCase(),
);

/** Status code of a call that succeeded: 0, gRPC's OK. */
export const OK = 0;

/**
 * A call's status code: {@link OK} or a connect-es `Code`.
 */
export type StatusCode = typeof OK | Code;

/**
 * The gRPC status name of a code, `NOT_FOUND` for 5; `CODE_<n>` for a number outside 0–16.
 */
export function grpcStatusName(code: StatusCode): string {
  return grpcNames[code] ?? `CODE_${code}`;
}

/**
 * The Connect code string of a code, `not_found` for 5, `ok` for 0; `code_<n>` outside 0–16.
 */
export function connectStatusName(code: StatusCode): string {
  return connectNames[code] ?? `code_${code}`;
}

/**
 * The status code name an RPC system records for `code` (semconv docs/rpc/grpc.md, connect-rpc.md):
 * the Connect code string for the Connect protocol, the gRPC name otherwise (also while a client
 * does not know the system yet).
 */
export function statusName(system: "grpc" | "connect" | "unknown", code: StatusCode): string {
  return system === "connect" ? connectStatusName(code) : grpcStatusName(code);
}

/**
 * Codes that make a server span an Error (semconv docs/rpc/grpc.md and connect-rpc.md, "server"
 * status): UNKNOWN, DEADLINE_EXCEEDED, UNIMPLEMENTED, INTERNAL, UNAVAILABLE, DATA_LOSS. Every other
 * code leaves a server span's status Unset. On a client span every code but OK is an Error.
 */
export const defaultServerErrorCodes: ReadonlySet<StatusCode> = new Set([
  Code.Unknown,
  Code.DeadlineExceeded,
  Code.Unimplemented,
  Code.Internal,
  Code.Unavailable,
  Code.DataLoss,
]);
