import { TRACE_RESPONSE_HEADER } from "./trace-response.js";

/**
 * Request header names that a server's CORS configuration must allow (preflight response header
 * `Access-Control-Allow-Headers`) so that browsers on other origins can send trace context:
 * `traceparent` and `tracestate` (W3C Trace Context) and `baggage` (W3C Baggage), which the default
 * W3C propagators inject. None of them is a CORS-safelisted request header (Fetch standard), so a
 * cross-origin request that carries one is preflighted, and the browser fails the call when the
 * preflight does not allow it. Lowercase, spreads into connect's list:
 * `allowedHeaders: [...cors.allowedHeaders, ...CORS_ALLOWED_TRACE_HEADERS]`.
 *
 * A custom propagator sends other names: allow the ones its `propagator.fields()` returns.
 */
export const CORS_ALLOWED_TRACE_HEADERS: readonly string[] = Object.freeze(["traceparent", "tracestate", "baggage"]);

/**
 * Response header names that a server's CORS configuration must expose (`Access-Control-Expose-Headers`)
 * so that scripts on other origins can read them: `traceresponse` (W3C Trace Context Level 2), which a
 * server wrapper sends with the `traceResponse` option. It is not a CORS-safelisted response header
 * (Fetch standard), so without this a browser hides it. Spreads into connect's list:
 * `exposedHeaders: [...cors.exposedHeaders, ...CORS_EXPOSED_TRACE_HEADERS]`.
 */
export const CORS_EXPOSED_TRACE_HEADERS: readonly string[] = Object.freeze([TRACE_RESPONSE_HEADER]);
