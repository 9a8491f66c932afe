import { Code } from "@connectrpc/connect";
import { ATTR_RPC_CONNECT_RPC_ERROR_CODE, ATTR_RPC_GRPC_STATUS_CODE } from "./attribute-names.js";
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
 * The status attribute of semconv v1.26–v1.37, for spans and metrics alike, as a key and value:
 * `rpc.grpc.status_code` with the code number for gRPC (also while a client does not know the
 * system yet, as the name), `rpc.connect_rpc.error_code` with the Connect code string `name` for a
 * Connect call that failed, none for one that succeeded.
 */
export function legacyStatusAttribute(
  system: "grpc" | "connect" | "unknown",
  code: StatusCode,
  name: string,
): readonly [key: string, value: number | string] | undefined {
  if (system !== "connect") return [ATTR_RPC_GRPC_STATUS_CODE, code];
  return code === OK ? undefined : [ATTR_RPC_CONNECT_RPC_ERROR_CODE, name];
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
