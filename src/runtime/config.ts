import type { Context, TextMapGetter, TextMapSetter, Tracer } from "@opentelemetry/api";
import { propagation, trace } from "@opentelemetry/api";
import { VERSION } from "../version.js";
import type { MessageEventMode, SemconvMode, TracingOptions } from "./options.js";

/**
 * What injects and extracts trace context: a `TextMapPropagator`, or the global `propagation` API,
 * which delegates to the registered global propagator.
 */
export interface Propagator {
  inject(context: Context, carrier: Headers, setter: TextMapSetter<Headers>): void;
  extract(context: Context, carrier: Headers, getter: TextMapGetter<Headers>): Context;
}

/** Tracing options resolved once per traced client or service: defaults applied, values checked. */
export interface TracingConfig {
  readonly tracer: Tracer;
  readonly propagator: Propagator;
  readonly semconv: SemconvMode;
  readonly messageEvents: MessageEventMode;
  readonly maxMessageEvents: number;
}

/** The instrumentation scope name of every span this package starts. */
export const INSTRUMENTATION_SCOPE = "connect-otel";

/** Default cap on recorded `rpc.message` events per span; equals the SDK's default event limit. */
export const DEFAULT_MAX_MESSAGE_EVENTS = 128;

const semconvModes: readonly SemconvMode[] = ["current", "legacy", "both"];
const messageEventModes: readonly MessageEventMode[] = ["all", "streaming", "none"];

/**
 * Applies defaults to tracing options and checks them.
 *
 * @throws TypeError naming the option when `semconv`, `messageEvents` or `maxMessageEvents` has a
 * value outside its documented set.
 */
export function resolveTracingConfig(options: TracingOptions | undefined): TracingConfig {
  const opt = options ?? {};
  const semconv = opt.semconv ?? semconvFromEnv(readEnv("OTEL_SEMCONV_STABILITY_OPT_IN"));
  if (!semconvModes.includes(semconv)) {
    throw new TypeError(
      `connect-otel: option semconv must be one of ${semconvModes.join(", ")}, got ${String(semconv)}`,
    );
  }
  const messageEvents = opt.messageEvents ?? "all";
  if (!messageEventModes.includes(messageEvents)) {
    throw new TypeError(
      `connect-otel: option messageEvents must be one of ${messageEventModes.join(", ")}, got ${String(messageEvents)}`,
    );
  }
  const maxMessageEvents = opt.maxMessageEvents ?? DEFAULT_MAX_MESSAGE_EVENTS;
  if (!Number.isInteger(maxMessageEvents) || maxMessageEvents < 0) {
    throw new TypeError(
      `connect-otel: option maxMessageEvents must be a non-negative integer, got ${String(maxMessageEvents)}`,
    );
  }
  const provider = opt.tracerProvider ?? trace.getTracerProvider();
  return {
    tracer: provider.getTracer(INSTRUMENTATION_SCOPE, VERSION),
    propagator: opt.propagator ?? propagation,
    semconv,
    messageEvents,
    maxMessageEvents,
  };
}

/**
 * The semconv mode that an `OTEL_SEMCONV_STABILITY_OPT_IN` value selects (semconv
 * docs/rpc/rpc-spans.md): `rpc/dup` selects `both` and wins over `rpc`, which selects `current`;
 * without either the default is `current`, the conventions this project was born with.
 */
export function semconvFromEnv(value: string | undefined): SemconvMode {
  const tokens = (value ?? "").split(",").map((token) => token.trim().toLowerCase());
  return tokens.includes("rpc/dup") ? "both" : "current";
}

/** Reads an environment variable where there is a `process` (Node, Deno, Bun); undefined in browsers. */
function readEnv(name: string): string | undefined {
  const proc = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process;
  return proc?.env?.[name];
}
