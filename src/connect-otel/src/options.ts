import type { DescService } from "@bufbuild/protobuf";
import type { HandlerContext } from "@connectrpc/connect";
import type { TextMapPropagator, TracerProvider } from "@opentelemetry/api";
import type { CallFilter } from "./call-filter.js";
import type { ServiceHooks } from "./hooks.js";
import type { PropagateTraceHeaderCorsUrls } from "./trace-header-policy.js";

/**
 * Which generation of the RPC semantic conventions a span carries.
 *
 * - `current`: semconv v1.39+ (`rpc.system.name`, fully-qualified `rpc.method`,
 *   `rpc.response.status_code`, event `rpc.message`).
 * - `legacy`: semconv v1.26–v1.37 (`rpc.system`, `rpc.service`, bare `rpc.method`,
 *   `rpc.grpc.status_code`, `rpc.connect_rpc.error_code`, event `message`).
 * - `both`: what `OTEL_SEMCONV_STABILITY_OPT_IN=rpc/dup` asks for: both attribute sets, where
 *   `rpc.method` keeps its current, fully-qualified value (the two generations share the key).
 */
export type SemconvMode = "current" | "legacy" | "both";

/**
 * Which calls record an `rpc.message` event per message.
 *
 * - `all` (default): all four method kinds, unary included.
 * - `streaming`: server-streaming, client-streaming and bidi calls only.
 * - `none`: no message events (streaming spans still count their messages).
 */
export type MessageEventMode = "all" | "streaming" | "none";

/**
 * Options shared by traced clients and traced service implementations of the service `S`.
 */
export interface TracingOptions<S extends DescService = DescService> {
  /** Provider of the tracer that starts the spans. Default: the global tracer provider. */
  tracerProvider?: TracerProvider;
  /**
   * Propagator that injects into request headers (client) and extracts from them (server).
   * Default: the global propagator, usually W3C `traceparent`/`tracestate` plus baggage.
   */
  propagator?: TextMapPropagator;
  /** Which calls record per-message events. Default: `all`. */
  messageEvents?: MessageEventMode;
  /**
   * Most `rpc.message` events recorded on one span; messages past the cap are only counted.
   * Default: 128 (the SDK's default span event limit). Must be a non-negative integer.
   */
  maxMessageEvents?: number;
  /**
   * Semantic-convention generation. Default: from `OTEL_SEMCONV_STABILITY_OPT_IN` (`rpc/dup`
   * selects `both`, `rpc` selects `current`), else `current`.
   */
  semconv?: SemconvMode;
  /**
   * Typed hooks per method, keyed by the method's local name (`fetchUser`), called with the span
   * while it records: `onRequest`, `onResponse`, `onMessage` (streamed messages) and `onError`.
   * A hook that throws is contained: the exception is recorded on the span, the RPC goes on.
   */
  hooks?: ServiceHooks<S>;
  /**
   * Decides per call whether to trace it, from the fully-qualified method (`pkg.Service/Method`,
   * never the bare method name) and the request headers. An untraced call starts no span but
   * still propagates the trace context. Default: {@link defaultCallFilter}, which leaves out
   * `grpc.health.v1.Health` and the gRPC reflection services; a filter given here replaces it.
   */
  filter?: CallFilter;
  /**
   * Request header keys to record as `rpc.request.metadata.<key>` (lowercased key, string array;
   * semconv docs/rpc/rpc-spans.md), plus `rpc.grpc.request.metadata.<key>` or
   * `rpc.connect_rpc.request.metadata.<key>` in the `legacy` and `both` modes. Default: none.
   * Credential headers (`authorization`, `cookie`, `set-cookie`, `proxy-authorization`) must also be
   * listed in {@link allowSensitiveMetadata}.
   *
   * @throws TypeError at client or service creation for a key that is not a header name, or a
   * credential header that `allowSensitiveMetadata` does not list.
   */
  requestMetadata?: readonly string[];
  /**
   * Response header and trailer keys to record as `rpc.response.metadata.<key>` (and the legacy
   * names, see {@link requestMetadata}), read when the call ends. Default: none.
   */
  responseMetadata?: readonly string[];
  /**
   * Credential header keys that `requestMetadata` and `responseMetadata` may record: an explicit
   * opt-in, because their values are secrets that would land in every trace backend. Default: none.
   */
  allowSensitiveMetadata?: readonly string[];
}

/** The wire protocol of a connect transport. */
export type WireProtocol = "connect" | "grpc" | "grpc-web";

/**
 * Options of a traced client.
 *
 * A connect `Transport` does not reveal its protocol or target, so a client learns the protocol
 * from the response `content-type` and has no `server.address` unless these options say.
 */
export interface TracedClientOptions<S extends DescService = DescService> extends TracingOptions<S> {
  /**
   * The transport's `baseUrl`; sets `server.address` and `server.port` (default port 443 for
   * `https:`, 80 for `http:`) at span start. In a browser it may be relative (to the page, as for
   * fetch), and it is the target that decides whether calls carry trace headers (see
   * {@link propagateTraceHeaderCorsUrls}). Throws a `TypeError` at client creation if not a URL.
   */
  baseUrl?: string | URL;
  /**
   * In a browser, calls carry trace headers only to the page's own origin and to request URLs this
   * matches (a string: equal to the absolute request URL `<baseUrl>/<package.Service>/<Method>`; a
   * RegExp: matching it; a list: one entry matching), as the OpenTelemetry fetch instrumentation's
   * option of the same name; list only servers whose CORS configuration allows the headers (see
   * `CORS_ALLOWED_TRACE_HEADERS`), or the browser fails every call. Without `baseUrl` no call
   * carries them. Ignored outside browsers, where every call carries them. The span is started either
   * way. Default: none.
   *
   * @throws TypeError at client creation for a value other than a string, a RegExp or an array of them.
   */
  propagateTraceHeaderCorsUrls?: PropagateTraceHeaderCorsUrls;
  /**
   * The transport's protocol; sets `rpc.system.name` at span start instead of at the response.
   * Without it, a call that fails before any response has no `rpc.system.name`.
   */
  protocol?: WireProtocol;
}

/** Options of a traced service implementation. */
export interface TracedServiceOptions<S extends DescService = DescService> extends TracingOptions<S> {
  /**
   * Trust boundary for internet-facing services: `true`, or a function of the call's handler
   * context that returns true, makes the server span a new root span with a link to the caller's
   * span context instead of its child, so callers cannot choose the trace id or the sampling
   * decision; the caller's baggage is dropped too. An untraced call (filter, schema annotation) of a
   * public endpoint runs its handler in the server's own context, not the caller's. Default: false
   * (continue the caller's trace).
   */
  publicEndpoint?: boolean | ((ctx: HandlerContext) => boolean);
  /**
   * Sends the W3C `traceresponse` response header (Trace Context Level 2,
   * `00-<trace-id>-<span-id>-<flags>`) with the server span's context, so that a caller without
   * tracing can find the trace. Browsers read it only if CORS exposes it. Default: false.
   */
  traceResponse?: boolean;
}
