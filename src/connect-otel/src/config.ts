import type { DescService } from "@bufbuild/protobuf";
import type { Context, TextMapGetter, TextMapSetter, Tracer } from "@opentelemetry/api";
import { propagation, trace } from "@opentelemetry/api";
import type { CallFilter } from "./call-filter.js";
import { defaultCallFilter } from "./call-filter.js";
import type { AnyMethodHooks } from "./hooks.js";
import type { CapturedKey } from "./metadata-capture.js";
import { resolveAllowSensitive, resolveCapturedKeys } from "./metadata-capture.js";
import type { MessageEventMode, SemconvMode, TracingOptions } from "./options.js";
import { VERSION } from "./version.js";

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
  /** Hooks by method local name. */
  readonly hooks: Readonly<Record<string, AnyMethodHooks | undefined>>;
  readonly filter: CallFilter;
  readonly requestMetadata: readonly CapturedKey[];
  readonly responseMetadata: readonly CapturedKey[];
}

/** The instrumentation scope name of every span this package starts. */
export const INSTRUMENTATION_SCOPE = "connect-otel";

/** Default cap on recorded `rpc.message` events per span; equals the SDK's default event limit. */
export const DEFAULT_MAX_MESSAGE_EVENTS = 128;

const semconvModes: readonly SemconvMode[] = ["current", "legacy", "both"];
const messageEventModes: readonly MessageEventMode[] = ["all", "streaming", "none"];

const hookNames = ["onRequest", "onResponse", "onMessage", "onError"];

/**
 * Applies defaults to the tracing options of a client or service wrapper of `service` and checks
 * them.
 *
 * @throws TypeError naming the option when `semconv`, `messageEvents` or `maxMessageEvents` has a
 * value outside its documented set, `filter` is not a function, `hooks` names a method the service
 * lacks or a hook that is not a function, or a metadata allow-list is invalid (see
 * `resolveCapturedKeys`).
 */
export function resolveTracingConfig(service: DescService, options: TracingOptions | undefined): TracingConfig {
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
  const filter = opt.filter ?? defaultCallFilter;
  if (typeof filter !== "function") {
    throw new TypeError(`connect-otel: option filter must be a function, got ${typeof filter}`);
  }
  const allowSensitive = resolveAllowSensitive(opt.allowSensitiveMetadata);
  const provider = opt.tracerProvider ?? trace.getTracerProvider();
  return {
    tracer: provider.getTracer(INSTRUMENTATION_SCOPE, VERSION),
    propagator: opt.propagator ?? propagation,
    semconv,
    messageEvents,
    maxMessageEvents,
    hooks: resolveHooks(service, opt.hooks),
    filter,
    requestMetadata: resolveCapturedKeys("requestMetadata", "request", opt.requestMetadata, allowSensitive),
    responseMetadata: resolveCapturedKeys("responseMetadata", "response", opt.responseMetadata, allowSensitive),
  };
}

/**
 * @throws TypeError for hooks or a method's hooks that are not an object, a method `service` lacks,
 * or a hook that is not a function
 */
function resolveHooks(service: DescService, hooks: TracingOptions["hooks"]): TracingConfig["hooks"] {
  if (hooks === undefined) return {};
  if (typeof hooks !== "object" || hooks === null) {
    throw new TypeError(`connect-otel: option hooks must be an object keyed by method name, got ${typeOf(hooks)}`);
  }
  const byMethod = hooks as Record<string, Record<string, unknown> | undefined>;
  for (const [method, methodHooks] of Object.entries(byMethod)) {
    if (methodHooks === undefined) continue;
    if (!service.methods.some((m) => m.localName === method)) {
      throw new TypeError(`connect-otel: option hooks names ${method}, which is not a method of ${service.typeName}`);
    }
    if (typeof methodHooks !== "object" || methodHooks === null) {
      throw new TypeError(
        `connect-otel: option hooks.${method} must be an object of hooks, got ${typeOf(methodHooks)}`,
      );
    }
    for (const [name, fn] of Object.entries(methodHooks)) {
      if (!hookNames.includes(name) || (fn !== undefined && typeof fn !== "function")) {
        throw new TypeError(
          `connect-otel: option hooks.${method}.${name} must be one of ${hookNames.join(", ")} and a function`,
        );
      }
    }
  }
  return byMethod as TracingConfig["hooks"];
}

/** `typeof`, with `null` told apart from objects: for option error messages. */
export function typeOf(value: unknown): string {
  return value === null ? "null" : typeof value;
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
