import type { DescMethod } from "@bufbuild/protobuf";
import { createMethodUrl } from "@connectrpc/connect/protocol";
import { typeOf } from "./config.js";

/**
 * Cross-origin URLs whose requests may carry trace headers in a browser, as the OpenTelemetry fetch
 * instrumentation's option of the same name: a string matches a request URL equal to it (absolute,
 * `https://api.example.com/user.v1.UserService/FetchUser`), a RegExp one it matches
 * (`/^https:\/\/api\.example\.com\//`); a list matches if one of its entries does.
 */
export type PropagateTraceHeaderCorsUrls = string | RegExp | readonly (string | RegExp)[];

/** The document or worker a script runs in, whose fetch applies CORS to other origins. */
export interface BrowserPage {
  /** `location.origin`: requests to it are same-origin. */
  readonly origin: string;
  /** What fetch resolves relative URLs against: `document.baseURI`, or a worker's `location.href`. */
  readonly baseUrl: string;
}

/**
 * The page when the script runs in a browser (a `document`, or a `WorkerGlobalScope`) with a `location`;
 * undefined elsewhere (Node, Deno, Bun), where fetch has no CORS. Reads globals only, imports nothing.
 */
export function browserPage(): BrowserPage | undefined {
  const scope = globalThis as {
    document?: { baseURI?: unknown } | null;
    location?: { origin?: unknown; href?: unknown } | null;
    WorkerGlobalScope?: unknown;
  };
  const worker = typeof scope.WorkerGlobalScope === "function" && globalThis instanceof scope.WorkerGlobalScope;
  const { document, location } = scope;
  if (!worker && (typeof document !== "object" || document === null)) return undefined;
  if (typeof location?.origin !== "string" || typeof location.href !== "string") return undefined;
  const baseUrl = !worker && typeof document?.baseURI === "string" ? document.baseURI : location.href;
  return { origin: location.origin, baseUrl };
}

/**
 * Decides per method of a traced client whether its calls inject trace headers, with the rule of the
 * OpenTelemetry fetch instrumentation (`shouldPropagateTraceHeaders`): outside a browser, always. In a
 * browser, only when the method's request URL (connect's `createMethodUrl` of `baseUrl`, resolved as
 * fetch resolves it) is same-origin with the page or matches `corsUrls`, because a cross-origin server
 * whose CORS preflight does not allow the headers fails the call (Fetch standard, CORS-preflight fetch);
 * never without `baseUrl`, whose target is unknown.
 *
 * @throws TypeError naming the option if `corsUrls` is not a {@link PropagateTraceHeaderCorsUrls}.
 */
export function traceHeaderPolicy(
  page: BrowserPage | undefined,
  baseUrl: string | URL | undefined,
  corsUrls: unknown,
): (method: DescMethod) => boolean {
  const patterns = resolveCorsUrls(corsUrls);
  if (page === undefined) return () => true;
  if (baseUrl === undefined) return () => false;
  return (method) => {
    const url = new URL(createMethodUrl(baseUrl, method), page.baseUrl);
    if (url.origin === page.origin) return true;
    return patterns.some((p) => (typeof p === "string" ? url.href === p : url.href.search(p) !== -1));
  };
}

/** @throws TypeError naming the option for a value other than a string, a RegExp or an array of them */
function resolveCorsUrls(value: unknown): readonly (string | RegExp)[] {
  if (value === undefined) return [];
  const list: readonly unknown[] = Array.isArray(value) ? [...value] : [value];
  for (const [index, entry] of list.entries()) {
    if (typeof entry !== "string" && !(entry instanceof RegExp)) {
      const where = Array.isArray(value) ? ` at index ${index}` : "";
      throw new TypeError(
        `connect-otel: option propagateTraceHeaderCorsUrls must be a string, a RegExp or an array of them, got ${typeOf(entry)}${where}`,
      );
    }
  }
  return list as readonly (string | RegExp)[];
}
