import type { TextMapPropagator, TracerProvider } from "@opentelemetry/api";

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
 * Options shared by traced clients and traced service implementations.
 */
export interface TracingOptions {
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
}

/** The wire protocol of a connect transport. */
export type WireProtocol = "connect" | "grpc" | "grpc-web";

/**
 * Options of a traced client.
 *
 * A connect `Transport` does not reveal its protocol or target, so a client learns the protocol
 * from the response `content-type` and has no `server.address` unless these options say.
 */
export interface TracedClientOptions extends TracingOptions {
  /**
   * The transport's `baseUrl`; sets `server.address` and `server.port` (default port 443 for
   * `https:`, 80 for `http:`) at span start. Throws a `TypeError` at client creation if not a URL.
   */
  baseUrl?: string | URL;
  /**
   * The transport's protocol; sets `rpc.system.name` at span start instead of at the response.
   * Without it, a call that fails before any response has no `rpc.system.name`.
   */
  protocol?: WireProtocol;
}

/** Options of a traced service implementation. */
export interface TracedServiceOptions extends TracingOptions {}
