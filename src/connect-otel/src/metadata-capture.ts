import type { Attributes } from "@opentelemetry/api";
import {
  ATTR_RPC_REQUEST_HEADER_PREFIX,
  ATTR_RPC_RESPONSE_HEADER_PREFIX,
  ATTR_RPC_RESPONSE_TRAILER_PREFIX,
  LEGACY_METADATA_PREFIXES,
} from "./attribute-names.js";
import type { RpcSystem } from "./method-plan.js";
import type { SemconvMode } from "./options.js";

/**
 * Header keys whose values are credentials: recorded only when the user lists them in the
 * `allowSensitiveMetadata` option as well.
 */
export const SENSITIVE_METADATA: readonly string[] = ["authorization", "cookie", "set-cookie", "proxy-authorization"];

/** Which metadata an allow-list names: request headers, response headers, response trailers. */
export type MetadataFamily = "request" | "responseHeader" | "responseTrailer";

/** One allow-listed key and the attribute names it is recorded under. */
export interface CapturedKey {
  /** Lowercased header key. */
  readonly key: string;
  /**
   * Stable-mode name: `rpc.request.header.<key>`, `rpc.response.header.<key>` or
   * `rpc.response.trailer.<key>` (semconv v1.45.0).
   */
  readonly stable: string;
  /** Legacy name for gRPC and gRPC-web: `rpc.grpc.(request|response).metadata.<key>` (semconv v1.26–v1.37). */
  readonly grpc: string;
  /** Legacy name for Connect: `rpc.connect_rpc.(request|response).metadata.<key>` (semconv v1.26–v1.37). */
  readonly connect: string;
}

const stablePrefixes: Record<MetadataFamily, string> = {
  request: ATTR_RPC_REQUEST_HEADER_PREFIX,
  responseHeader: ATTR_RPC_RESPONSE_HEADER_PREFIX,
  responseTrailer: ATTR_RPC_RESPONSE_TRAILER_PREFIX,
};

/** RFC 9110 section 5.6.2 `token`, lowercase: what a header field name may be. */
const headerName = /^[!#$%&'*+\-.^_`|~0-9a-z]+$/;

/**
 * Checks an allow-list option and precomputes its attribute names.
 *
 * @param option - the option's name (`requestHeaders`, ...), for error messages
 * @param family - what the keys name
 * @throws TypeError naming the option for a value that is not a list of header names, and for a
 * credential header ({@link SENSITIVE_METADATA}) that `allowSensitiveMetadata` does not list
 */
export function resolveCapturedKeys(
  option: string,
  family: MetadataFamily,
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
    const direction = family === "request" ? "request" : "response";
    result.push({
      key,
      stable: `${stablePrefixes[family]}${key}`,
      grpc: `${LEGACY_METADATA_PREFIXES.grpc[direction]}${key}`,
      connect: `${LEGACY_METADATA_PREFIXES.connect[direction]}${key}`,
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
 * The values of `key` in `sources`, in order: `set-cookie` values one by one; another repeated
 * header as `Headers` joins it, one string per source.
 */
function valuesOf(key: string, sources: readonly (Headers | undefined)[]): string[] {
  const values: string[] = [];
  for (const headers of sources) {
    if (headers === undefined) continue;
    if (key === "set-cookie") values.push(...headers.getSetCookie());
    else {
      const value = headers.get(key);
      if (value !== null) values.push(value);
    }
  }
  return values;
}

/** The legacy name of a key for `system`, or undefined where the system is not known. */
function legacyName(captured: CapturedKey, system: RpcSystem): string | undefined {
  return system === "unknown" ? undefined : system === "grpc" ? captured.grpc : captured.connect;
}

/**
 * Adds the allow-listed request headers found in `header` to `target`, each as a string array:
 * under the stable name unless `legacy`, under the legacy name of `system` unless `stable` (and
 * only for a known system).
 */
export function addRequestMetadata(
  target: Attributes,
  keys: readonly CapturedKey[],
  header: Headers,
  semconv: SemconvMode,
  system: RpcSystem,
): void {
  for (const captured of keys) {
    const values = valuesOf(captured.key, [header]);
    if (values.length === 0) continue;
    if (semconv !== "legacy") target[captured.stable] = values;
    const legacy = semconv === "stable" ? undefined : legacyName(captured, system);
    if (legacy !== undefined) target[legacy] = values;
  }
}

/**
 * Adds the allow-listed response headers (from `headerSources`) and trailers (from
 * `trailerSources`) to `target`: `rpc.response.header.<key>` and `rpc.response.trailer.<key>`
 * unless `legacy`; unless `stable`, the legacy `rpc.<system>.response.metadata.<key>`, which holds
 * the header values and then the trailer values of a key (semconv v1.26–v1.37 did not tell them
 * apart).
 */
export function addResponseMetadata(
  target: Attributes,
  headerKeys: readonly CapturedKey[],
  trailerKeys: readonly CapturedKey[],
  headerSources: readonly (Headers | undefined)[],
  trailerSources: readonly (Headers | undefined)[],
  semconv: SemconvMode,
  system: RpcSystem,
): void {
  const legacy = new Map<string, string[]>();
  const add = (keys: readonly CapturedKey[], sources: readonly (Headers | undefined)[]) => {
    for (const captured of keys) {
      const values = valuesOf(captured.key, sources);
      if (values.length === 0) continue;
      if (semconv !== "legacy") target[captured.stable] = values;
      const name = semconv === "stable" ? undefined : legacyName(captured, system);
      if (name !== undefined) legacy.set(name, [...(legacy.get(name) ?? []), ...values]);
    }
  };
  add(headerKeys, headerSources);
  add(trailerKeys, trailerSources);
  for (const [name, values] of legacy) target[name] = values;
}
