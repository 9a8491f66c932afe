import type { CallSide } from "./rpc-call.js";

/** What a {@link CallFilter} knows of a call before its span would start. */
export interface CallInfo {
  /** Fully-qualified method without leading slash, `grpc.health.v1.Health/Check`. */
  readonly method: string;
  /** Which end of the call decides: a traced client or a traced service. */
  readonly side: CallSide;
  /**
   * The request headers: as the caller gave them on a client (the trace context is injected into
   * this object after the filter returned, so read it during the call), as received on a server.
   */
  readonly requestHeader: Headers;
}

/**
 * Returns true to trace a call, false to leave it untraced (no span; trace context still
 * propagates). A filter that throws traces the call.
 */
export type CallFilter = (call: CallInfo) => boolean;

/**
 * Services that {@link defaultCallFilter} leaves untraced: gRPC health checking
 * (grpc/doc/health-checking.md) and server reflection (v1 and v1alpha), whose calls are frequent
 * and say nothing of the application.
 */
export const DEFAULT_UNTRACED_SERVICES: readonly string[] = [
  "grpc.health.v1.Health",
  "grpc.reflection.v1.ServerReflection",
  "grpc.reflection.v1alpha.ServerReflection",
];

const untracedPrefixes = DEFAULT_UNTRACED_SERVICES.map((service) => `${service}/`);

/**
 * The filter in effect without a `filter` option: traces every call except those of
 * {@link DEFAULT_UNTRACED_SERVICES}. Matches the fully-qualified method, so a `Check` method of
 * another service is traced. Call it from your own filter to keep the defaults.
 */
export function defaultCallFilter(call: CallInfo): boolean {
  return !isDefaultUntracedMethod(call.method);
}

/** True for a method of {@link DEFAULT_UNTRACED_SERVICES}: what {@link defaultCallFilter} leaves out. */
export function isDefaultUntracedMethod(method: string): boolean {
  return untracedPrefixes.some((prefix) => method.startsWith(prefix));
}

/** The filter's answer for a call; a filter that throws traces the call. */
export function filterAllows(filter: CallFilter, method: string, side: CallSide, requestHeader: Headers): boolean {
  try {
    return filter({ method, side, requestHeader }) !== false;
  } catch {
    return true;
  }
}
