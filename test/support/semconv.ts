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

/** Stable `rpc.system.name` of a wire: `grpc` for gRPC and gRPC-web, `connectrpc` for Connect. */
export function systemName(wire: Wire): string {
  return isConnect(wire) ? "connectrpc" : "grpc";
}

/** Legacy `rpc.system` of a wire: `grpc` or `connect_rpc`. */
export function legacySystem(wire: Wire): string {
  return isConnect(wire) ? "connect_rpc" : "grpc";
}

/** `rpc.status_code` of a code on a wire: gRPC name, or Connect string for Connect. */
export function statusName(wire: Wire, code: number): string {
  const name = (isConnect(wire) ? connectStatusNames : grpcStatusNames)[code];
  if (name === undefined) throw new Error(`no status code ${code}`);
  return name;
}

/** Attribute keys of the legacy conventions (v1.26–v1.37), none of which a `stable` span may carry. */
export const legacyKeys = ["rpc.system", "rpc.service", "rpc.grpc.status_code", "rpc.connect_rpc.error_code"] as const;

/** Attribute keys only the stable conventions (v1.45.0) have, none of which a `legacy` span may carry. */
export const stableOnlyKeys = ["rpc.system.name", "rpc.status_code"] as const;

/** The semconv modes of the runtime: stable v1.45.0, legacy v1.26–v1.37, and both (`rpc/dup`). */
export type ConventionMode = "stable" | "legacy" | "dup";

/** Keys in the namespaces the RPC conventions write (our own `connect_otel.*` and `app.*` excluded). */
export function conventionKeysOf(attributes: Record<string, unknown>): Record<string, unknown> {
  const entries = Object.entries(attributes).filter(([key]) => /^(rpc|error|server|client|network)\./.test(key));
  return Object.fromEntries(entries.sort(([a], [b]) => a.localeCompare(b)));
}

/**
 * Exactly the convention attributes a span of a call ends with, restated from the semconv pages:
 * v1.45.0 docs/rpc/rpc-spans.md, grpc.md and connect-rpc.md for `stable` (`rpc.system.name`,
 * fully-qualified `rpc.method`, `rpc.status_code`, `error.type` iff the span is an error); v1.37.0
 * docs/rpc/rpc-spans.md for `legacy` (`rpc.system`, `rpc.service`, bare `rpc.method`, integer
 * `rpc.grpc.status_code` on gRPC, `rpc.connect_rpc.error_code` on a failed Connect call, no
 * `error.type`, which v1.37 did not define for RPC); both for `dup`, where `rpc.method` keeps the
 * stable value. `server.address`/`server.port` where the caller says they are known.
 */
export function expectedConventionAttributes(
  mode: ConventionMode,
  wire: Wire,
  side: "client" | "server",
  method: string,
  code: number,
  server: { address: string; port: number } | undefined,
): Record<string, unknown> {
  const attrs: Record<string, unknown> = {};
  const slash = method.lastIndexOf("/");
  if (mode !== "stable") {
    attrs["rpc.system"] = legacySystem(wire);
    attrs["rpc.service"] = method.slice(0, slash);
    attrs["rpc.method"] = method.slice(slash + 1);
    if (!isConnect(wire)) attrs["rpc.grpc.status_code"] = code;
    else if (code !== 0) attrs["rpc.connect_rpc.error_code"] = statusName(wire, code);
  }
  if (mode !== "legacy") {
    attrs["rpc.system.name"] = systemName(wire);
    attrs["rpc.method"] = method;
    attrs["rpc.status_code"] = statusName(wire, code);
    const isError = code !== 0 && (side === "client" || serverErrorCodes.has(code));
    if (isError) attrs["error.type"] = statusName(wire, code);
  }
  if (server !== undefined) {
    attrs["server.address"] = server.address;
    attrs["server.port"] = server.port;
  }
  return conventionKeysOf(attrs);
}

/**
 * Exactly the attributes of a call's data point, restated from the semconv pages: v1.45.0
 * docs/rpc/rpc-metrics.md for `rpc.client.call.duration`/`rpc.server.call.duration`
 * (`rpc.system.name`, fully-qualified `rpc.method`, `rpc.status_code`, `error.type` iff the call
 * failed, `server.address`/`server.port` on the client when known, opt-in and absent on the
 * server); v1.37.0 docs/rpc/rpc-metrics.md for the older histograms (`rpc.system`, `rpc.service`,
 * bare `rpc.method`, the status attribute of the v1.37 spans, `server.*` on the client).
 */
export function expectedMetricAttributes(
  generation: "stable" | "legacy",
  wire: Wire,
  side: "client" | "server",
  method: string,
  code: number,
  target: { address: string; port: number } | undefined,
): Record<string, unknown> {
  const attrs: Record<string, unknown> = {};
  const slash = method.lastIndexOf("/");
  if (generation === "stable") {
    attrs["rpc.system.name"] = systemName(wire);
    attrs["rpc.method"] = method;
    attrs["rpc.status_code"] = statusName(wire, code);
    if (code !== 0 && (side === "client" || serverErrorCodes.has(code))) attrs["error.type"] = statusName(wire, code);
  } else {
    attrs["rpc.system"] = legacySystem(wire);
    attrs["rpc.service"] = method.slice(0, slash);
    attrs["rpc.method"] = method.slice(slash + 1);
    if (!isConnect(wire)) attrs["rpc.grpc.status_code"] = code;
    else if (code !== 0) attrs["rpc.connect_rpc.error_code"] = statusName(wire, code);
  }
  if (side === "client" && target !== undefined) {
    attrs["server.address"] = target.address;
    attrs["server.port"] = target.port;
  }
  return attrs;
}

/** Bucket boundaries in seconds that semconv v1.45.0 docs/rpc/rpc-metrics.md advises for call durations. */
export const callDurationBuckets = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10];
