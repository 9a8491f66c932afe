import type { DescService } from "@bufbuild/protobuf";
import type { Context, TextMapGetter, TextMapSetter, Tracer } from "@opentelemetry/api";
import * as otel from "@opentelemetry/api";
import type { CallFilter } from "./call-filter.js";
import { defaultCallFilter } from "./call-filter.js";
import type { SideMetrics } from "./call-metrics.js";
import { createSideMetrics } from "./call-metrics.js";
import type { AnyMethodHooks } from "./hooks.js";
import type { CapturedKey } from "./metadata-capture.js";
import { resolveAllowSensitive, resolveCapturedKeys } from "./metadata-capture.js";
import type {
  ExceptionLoggerProvider,
  ExceptionMode,
  MessageEventMode,
  SemconvMode,
  SemconvOption,
  TracingOptions,
} from "./options.js";
import { VERSION } from "./version.js";

/**
 * What injects and extracts trace context: a `TextMapPropagator`, or the global `propagation` API,
 * which delegates to the registered global propagator.
 */
export interface Propagator {
  inject<C>(context: Context, carrier: C, setter: TextMapSetter<C>): void;
  extract(context: Context, carrier: Headers, getter: TextMapGetter<Headers>): Context;
}

/** Tracing options resolved once per traced client or service: defaults applied, values checked. */
export interface TracingConfig {
  readonly tracer: Tracer;
  readonly propagator: Propagator;
  readonly semconv: SemconvMode;
  /** True if failed calls record an `exception` span event (`exceptions`: `span`, `both`). */
  readonly exceptionSpanEvents: boolean;
  /** Logger of the `rpc.*.call.exception` log events (`exceptions`: `log`, `both`); undefined otherwise. */
  readonly exceptionLogger: ExceptionLogger | undefined;
  readonly messageEvents: MessageEventMode;
  readonly maxMessageEvents: number;
  /** Hooks by method local name. */
  readonly hooks: Readonly<Record<string, AnyMethodHooks | undefined>>;
  readonly filter: CallFilter;
  readonly requestHeaders: readonly CapturedKey[];
  readonly responseHeaders: readonly CapturedKey[];
  readonly responseTrailers: readonly CapturedKey[];
  /** The client's or service's instruments; undefined with `metrics: false` or a meter that threw. */
  readonly metrics: SideMetrics | undefined;
}

/** The logger a {@link ExceptionLoggerProvider} gives. */
export type ExceptionLogger = ReturnType<ExceptionLoggerProvider["getLogger"]>;

/** The instrumentation scope name of every span this package starts. */
export const INSTRUMENTATION_SCOPE = "connect-otel";

/** Default cap on recorded `rpc.message` events per span; equals the SDK's default event limit. */
export const DEFAULT_MAX_MESSAGE_EVENTS = 128;

/** `semconv` option values and the mode each selects; `current` and `both` are deprecated aliases. */
const semconvOptions: Readonly<Record<SemconvOption, SemconvMode>> = {
  stable: "stable",
  legacy: "legacy",
  dup: "dup",
  current: "stable",
  both: "dup",
};
const exceptionModes: readonly ExceptionMode[] = ["span", "log", "both"];
const messageEventModes: readonly MessageEventMode[] = ["all", "streaming", "none"];

const hookNames = ["onRequest", "onResponse", "onMessage", "onError"];

/**
 * Applies defaults to the tracing options of a client or service wrapper of `service` and checks
 * them.
 *
 * @throws TypeError naming the option when `semconv`, `exceptions`, `messageEvents` or
 * `maxMessageEvents` has a value outside its documented set, `filter` is not a function,
 * `loggerProvider` or `meterProvider` lacks `getLogger` or `getMeter`, `metrics` is not a boolean,
 * `hooks` names a method the service lacks or a hook that is
 * not a function, or a header allow-list is invalid (see `resolveCapturedKeys`).
 */
export function resolveTracingConfig(
  service: DescService,
  options: TracingOptions | undefined,
  side: "client" | "server",
): TracingConfig {
  const opt = options ?? {};
  const semconv =
    opt.semconv === undefined
      ? semconvFromEnv(readEnv("OTEL_SEMCONV_STABILITY_OPT_IN"))
      : Object.hasOwn(semconvOptions, opt.semconv)
        ? semconvOptions[opt.semconv]
        : undefined;
  if (semconv === undefined) {
    throw new TypeError(`connect-otel: option semconv must be one of stable, legacy, dup, got ${String(opt.semconv)}`);
  }
  const exceptions = opt.exceptions ?? "span";
  if (!exceptionModes.includes(exceptions)) {
    throw new TypeError(
      `connect-otel: option exceptions must be one of ${exceptionModes.join(", ")}, got ${String(exceptions)}`,
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
  if (opt.metrics !== undefined && typeof opt.metrics !== "boolean") {
    throw new TypeError(
      `connect-otel: option metrics must be a boolean, got ${typeOf(opt.metrics)} ${String(opt.metrics)}`,
    );
  }
  const meterProvider = opt.meterProvider ?? otel.metrics.getMeterProvider();
  if (typeof meterProvider?.getMeter !== "function") {
    throw new TypeError(
      `connect-otel: option meterProvider must have a getMeter function, got ${typeOf(meterProvider)}`,
    );
  }
  const allowSensitive = resolveAllowSensitive(opt.allowSensitiveMetadata);
  const provider = opt.tracerProvider ?? otel.trace.getTracerProvider();
  return {
    tracer: provider.getTracer(INSTRUMENTATION_SCOPE, VERSION),
    propagator: opt.propagator ?? otel.propagation,
    semconv,
    exceptionSpanEvents: exceptions !== "log",
    exceptionLogger: exceptions === "span" ? undefined : resolveLogger(opt.loggerProvider),
    messageEvents,
    maxMessageEvents,
    hooks: resolveHooks(service, opt.hooks),
    filter,
    requestHeaders: unionOfKeys(
      resolveCapturedKeys("requestHeaders", "request", opt.requestHeaders, allowSensitive),
      resolveCapturedKeys("requestMetadata", "request", opt.requestMetadata, allowSensitive),
    ),
    responseHeaders: unionOfKeys(
      resolveCapturedKeys("responseHeaders", "responseHeader", opt.responseHeaders, allowSensitive),
      resolveCapturedKeys("responseMetadata", "responseHeader", opt.responseMetadata, allowSensitive),
    ),
    metrics:
      opt.metrics === false
        ? undefined
        : createSideMetrics(meterProvider, side, semconv, { name: INSTRUMENTATION_SCOPE, version: VERSION }),
    responseTrailers: unionOfKeys(
      resolveCapturedKeys("responseTrailers", "responseTrailer", opt.responseTrailers, allowSensitive),
      resolveCapturedKeys("responseMetadata", "responseTrailer", opt.responseMetadata, allowSensitive),
    ),
  };
}

/** The keys of `a`, then those of `b` that `a` lacks (an option and its deprecated alias). */
function unionOfKeys(a: readonly CapturedKey[], b: readonly CapturedKey[]): readonly CapturedKey[] {
  return [...a, ...b.filter((k) => !a.some((other) => other.key === k.key))];
}

/**
 * The logger of the exception log events: from `provider`, else from the global logger provider
 * of `@opentelemetry/api` 1.10+ (read through a namespace import, so that api 1.9, which has no
 * logs API, still loads this module; there the option is required).
 *
 * @throws TypeError naming the option when `provider` has no `getLogger`, or when it is not given
 * and the installed `@opentelemetry/api` has no global logger provider
 */
function resolveLogger(provider: ExceptionLoggerProvider | undefined): ExceptionLogger {
  const logs = (otel as { logs?: { getLoggerProvider(): ExceptionLoggerProvider } }).logs;
  const resolved = provider ?? logs?.getLoggerProvider();
  if (typeof resolved?.getLogger !== "function") {
    throw new TypeError(
      provider === undefined
        ? "connect-otel: option exceptions log needs option loggerProvider with @opentelemetry/api before 1.10"
        : `connect-otel: option loggerProvider must have a getLogger function, got ${typeOf(provider)}`,
    );
  }
  return resolved.getLogger(INSTRUMENTATION_SCOPE, VERSION);
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
 * The semconv mode that an `OTEL_SEMCONV_STABILITY_OPT_IN` value (a comma-separated list) selects,
 * as semconv docs/non-normative/rpc-migration.md defines the values: `rpc/dup` selects `dup` (old
 * and stable names) and wins over `rpc`, which selects `stable`. Without either the default is
 * `stable` too: this package emits the stable conventions unless asked for the old ones.
 */
export function semconvFromEnv(value: string | undefined): SemconvMode {
  const tokens = (value ?? "").split(",").map((token) => token.trim().toLowerCase());
  return tokens.includes("rpc/dup") ? "dup" : "stable";
}

/** Reads an environment variable where there is a `process` (Node, Deno, Bun); undefined in browsers. */
function readEnv(name: string): string | undefined {
  const proc = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process;
  return proc?.env?.[name];
}
