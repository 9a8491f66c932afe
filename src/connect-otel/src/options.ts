import type { DescService } from "@bufbuild/protobuf";
import type { HandlerContext } from "@connectrpc/connect";
import type { Attributes, Context, MeterProvider, TextMapPropagator, TracerProvider } from "@opentelemetry/api";
import type { CallFilter } from "./call-filter.js";
import type { ServiceHooks } from "./hooks.js";
import type { PropagateTraceHeaderCorsUrls } from "./trace-header-policy.js";

/**
 * Which RPC semantic conventions a span carries, as `OTEL_SEMCONV_STABILITY_OPT_IN` selects them
 * (semconv docs/non-normative/rpc-migration.md).
 *
 * - `stable` (default; also `OTEL_SEMCONV_STABILITY_OPT_IN=rpc`): semconv v1.45.0, where RPC
 *   became stable: `rpc.system.name`, fully-qualified `rpc.method`, `rpc.status_code`,
 *   `rpc.request.header.<key>`, `rpc.response.header.<key>`, `rpc.response.trailer.<key>`.
 * - `legacy`: semconv v1.26–v1.37, what most dashboards, otelgrpc's older releases and
 *   `@opentelemetry/instrumentation-grpc` use: `rpc.system`, `rpc.service`, bare `rpc.method`,
 *   `rpc.grpc.status_code` (int), `rpc.connect_rpc.error_code`, `rpc.grpc.request.metadata.<key>`.
 * - `dup` (`OTEL_SEMCONV_STABILITY_OPT_IN=rpc/dup`): both sets on the same span, where `rpc.method`
 *   keeps its stable, fully-qualified value (the two share the key).
 *
 * Message events are `rpc.message` with `rpc.message.*` in every mode (the shape of v1.26–v1.44).
 * `current` and `both`, this option's values before v1.45.0 was adopted, are deprecated aliases of
 * `stable` and `dup` and will be removed in the next minor release.
 */
export type SemconvMode = "stable" | "legacy" | "dup";

/** {@link SemconvMode} or one of its deprecated aliases, as the `semconv` option accepts it. */
export type SemconvOption = SemconvMode | "current" | "both";

/**
 * Where a failed call's exception is recorded.
 *
 * - `span` (default): an `exception` event on the span (what Jaeger and Tempo show).
 * - `log`: a log-based event `rpc.client.call.exception` (severity WARN) or
 *   `rpc.server.call.exception` (severity ERROR) in the call's span context (semconv v1.45.0
 *   docs/rpc/rpc-exceptions.md), through the `loggerProvider` option.
 * - `both`: the two.
 */
export type ExceptionMode = "span" | "log" | "both";

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
   * Provider of the meter (scope `connect-otel`) that records the RPC call metrics: semconv v1.45.0
   * `rpc.client.call.duration` / `rpc.server.call.duration` (histogram, s), and in the `legacy` and
   * `dup` modes the v1.26–v1.37 duration (ms), message size and messages-per-call histograms.
   * Default: the global meter provider.
   */
  meterProvider?: MeterProvider;
  /**
   * False turns the RPC metrics off for this client or service. Calls that the schema marks
   * untraced or that the `filter` leaves out record no metrics either; sampled-out calls do
   * (sampling is a tracing decision). Default: true.
   */
  metrics?: boolean;
  /**
   * Propagator that injects into request headers (client) and extracts from them (server).
   * Default: the global propagator, usually W3C `traceparent`/`tracestate` plus baggage. For the
   * OpenCensus binary `grpc-trace-bin` metadata, give `GrpcTraceBinPropagator`, alone or in a
   * `CompositePropagator` with the W3C ones.
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
   * Semantic conventions of the spans. Default: from `OTEL_SEMCONV_STABILITY_OPT_IN` (`rpc/dup`
   * selects `dup`, `rpc` selects `stable`), else `stable`. See {@link SemconvMode}.
   */
  semconv?: SemconvOption;
  /** Where a failed call's exception is recorded. Default: `span`. See {@link ExceptionMode}. */
  exceptions?: ExceptionMode;
  /**
   * Provider of the logger (scope `connect-otel`) that records the exception events of the `log`
   * and `both` modes of {@link exceptions}. Default: the global logger provider of
   * `@opentelemetry/api` 1.10+ (`logs.getLoggerProvider()`, which an SDK such as `NodeSDK`
   * registers).
   */
  loggerProvider?: ExceptionLoggerProvider;
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
   * Request header keys to record as `rpc.request.header.<key>` (lowercased key, string array of
   * the values; semconv v1.45.0 registry `rpc.request.header`), plus
   * `rpc.grpc.request.metadata.<key>` or `rpc.connect_rpc.request.metadata.<key>` in the `legacy`
   * and `dup` modes. Default: none. Credential headers (`authorization`, `cookie`, `set-cookie`,
   * `proxy-authorization`) must also be listed in {@link allowSensitiveMetadata}.
   *
   * @throws TypeError at client or service creation for a key that is not a header name, or a
   * credential header that `allowSensitiveMetadata` does not list.
   */
  requestHeaders?: readonly string[];
  /**
   * Response header keys (metadata sent before the response payload) to record as
   * `rpc.response.header.<key>`, read when the call ends; `rpc.<system>.response.metadata.<key>` in
   * the `legacy` and `dup` modes. A failed call's error metadata counts as trailers, except on a
   * client (where connect merges headers and trailers into `ConnectError.metadata`, so a key is
   * recorded from it under each list that names it) and in a Connect unary error response (sent as
   * headers). Default: none. Checked as {@link requestHeaders}.
   */
  responseHeaders?: readonly string[];
  /**
   * Response trailer keys (metadata sent after the response payload) to record as
   * `rpc.response.trailer.<key>`; `rpc.<system>.response.metadata.<key>` (together with headers) in
   * the `legacy` and `dup` modes. See {@link responseHeaders}. Default: none.
   */
  responseTrailers?: readonly string[];
  /**
   * @deprecated Use {@link requestHeaders}, which this is an alias of (the semconv v1.39–v1.44
   * name `rpc.request.metadata.<key>` is no longer written). Removed in the next minor release.
   */
  requestMetadata?: readonly string[];
  /**
   * @deprecated Use {@link responseHeaders} and {@link responseTrailers}: this lists a key in both.
   * Removed in the next minor release.
   */
  responseMetadata?: readonly string[];
  /**
   * Credential header keys that the header and trailer allow-lists may record: an explicit
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
   * decision; the caller's baggage is dropped too, also the baggage that HTTP instrumentation
   * extracted with the caller's context before connect ran. An untraced call (filter, schema
   * annotation) of a public endpoint runs its handler in the server's own context, not the caller's.
   * Default: false (continue the caller's trace; under HTTP instrumentation that continued the same
   * caller, as the child of its HTTP SERVER span).
   */
  publicEndpoint?: boolean | ((ctx: HandlerContext) => boolean);
  /**
   * Sends the W3C `traceresponse` response header (Trace Context Level 2,
   * `00-<trace-id>-<span-id>-<flags>`) with the server span's context, so that a caller without
   * tracing can find the trace. Browsers read it only if CORS exposes it. Default: false.
   */
  traceResponse?: boolean;
}

/**
 * What the `loggerProvider` option needs of a logger provider: a `LoggerProvider` of
 * `@opentelemetry/api` 1.10+ (or of `@opentelemetry/api-logs`) fits. Declared here so that this
 * package's types do not require either.
 */
export interface ExceptionLoggerProvider {
  getLogger(
    name: string,
    version?: string,
  ): {
    emit(record: {
      eventName?: string;
      severityNumber?: number;
      severityText?: string;
      attributes?: Attributes;
      context?: Context;
    }): void;
  };
}
