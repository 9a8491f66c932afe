import type { Attributes } from "@opentelemetry/api";
import type { RpcSystem } from "./method-plan.js";
import type { SemconvMode } from "./options.js";

/**
 * Header keys whose values are credentials: recorded only when the user lists them in the
 * `allowSensitiveMetadata` option as well.
 */
export const SENSITIVE_METADATA: readonly string[] = ["authorization", "cookie", "set-cookie", "proxy-authorization"];

/** One allow-listed header key and the attribute names it is recorded under. */
export interface CapturedKey {
  /** Lowercased header key. */
  readonly key: string;
  /** `rpc.request.metadata.<key>` or `rpc.response.metadata.<key>` (current conventions). */
  readonly current: string;
  /** `rpc.grpc.(request|response).metadata.<key>` (legacy, gRPC and gRPC-web). */
  readonly grpc: string;
  /** `rpc.connect_rpc.(request|response).metadata.<key>` (legacy, Connect). */
  readonly connect: string;
}

/** RFC 9110 section 5.6.2 `token`, lowercase: what a header field name may be. */
const headerName = /^[!#$%&'*+\-.^_`|~0-9a-z]+$/;

/**
 * Checks an allow-list option and precomputes its attribute names.
 *
 * @param option - `requestMetadata` or `responseMetadata`, for error messages
 * @param direction - `request` or `response`
 * @throws TypeError naming the option for a value that is not a list of header names, and for a
 * credential header ({@link SENSITIVE_METADATA}) that `allowSensitiveMetadata` does not list
 */
export function resolveCapturedKeys(
  option: string,
  direction: "request" | "response",
  keys: readonly string[] | undefined,
  allowSensitive: ReadonlySet<string>,
): readonly CapturedKey[] {
  if (keys === undefined) return [];
  if (!Array.isArray(keys)) {
    throw new TypeError(`connect-otel: option ${option} must be an array of header names, got ${typeof keys}`);
  }
  const seen = new Set<string>();
  const result: CapturedKey[] = [];
  for (const raw of keys) {
    const key = typeof raw === "string" ? raw.toLowerCase() : "";
    if (!headerName.test(key)) {
      throw new TypeError(`connect-otel: option ${option} lists ${JSON.stringify(raw)}, which is not a header name`);
    }
    if (SENSITIVE_METADATA.includes(key) && !allowSensitive.has(key)) {
      throw new TypeError(
        `connect-otel: option ${option} lists "${key}", a credential header; list it in option allowSensitiveMetadata too to record it anyway`,
      );
    }
    if (seen.has(key)) continue;
    seen.add(key);
    result.push({
      key,
      current: `rpc.${direction}.metadata.${key}`,
      grpc: `rpc.grpc.${direction}.metadata.${key}`,
      connect: `rpc.connect_rpc.${direction}.metadata.${key}`,
    });
  }
  return result;
}

/**
 * Checks the `allowSensitiveMetadata` option.
 *
 * @throws TypeError when it is not an array of strings
 */
export function resolveAllowSensitive(keys: readonly string[] | undefined): ReadonlySet<string> {
  if (keys === undefined) return new Set();
  if (!Array.isArray(keys) || keys.some((k) => typeof k !== "string")) {
    throw new TypeError("connect-otel: option allowSensitiveMetadata must be an array of header names");
  }
  return new Set(keys.map((k) => k.toLowerCase()));
}

/**
 * Adds the allow-listed keys found in `sources` (headers, then trailers) to `target`, each as a
 * string array of its values in order (`set-cookie` values one by one; other repeated headers as
 * `Headers` joins them, one string per source), under the names of `semconv` and `system`: the
 * current name unless `legacy`; the legacy name unless `current`, and only for a known system.
 */
export function addMetadata(
  target: Attributes,
  keys: readonly CapturedKey[],
  sources: readonly (Headers | undefined)[],
  semconv: SemconvMode,
  system: RpcSystem,
): void {
  for (const captured of keys) {
    const values: string[] = [];
    for (const headers of sources) {
      if (headers === undefined) continue;
      if (captured.key === "set-cookie") values.push(...headers.getSetCookie());
      else {
        const value = headers.get(captured.key);
        if (value !== null) values.push(value);
      }
    }
    if (values.length === 0) continue;
    if (semconv !== "legacy") target[captured.current] = values;
    if (semconv !== "current" && system !== "unknown")
      target[system === "grpc" ? captured.grpc : captured.connect] = values;
  }
}
