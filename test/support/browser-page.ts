// The script of the page that test/browser.test.ts opens in headless Chromium, bundled with esbuild:
// traced and untraced connect-web clients call servers on other origins and on the page's own, and
// the page POSTs what it saw to /report. The browser SDK set-up is the README's "In the browser" one, with an
// in-memory exporter.
import { Code, createClient, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";
import { context, propagation, SpanKind, trace } from "@opentelemetry/api";
import { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } from "@opentelemetry/core";
import {
  InMemorySpanExporter,
  SimpleSpanProcessor,
  StackContextManager,
  TracerProvider,
} from "@opentelemetry/sdk-trace";
import type { TracedClientOptions } from "connect-otel";
import { createTracedUserServiceClient } from "../../generated/user/v1/user_otel.js";
import { UserService } from "../../generated/user/v1/user_pb.js";
import type { CallOutcome, ErrorOutcome } from "./call-outcomes.js";
import { errorOutcome, observeCall } from "./call-outcomes.js";
import type { MethodCase, UserClient } from "./user-calls.js";
import { methodCases } from "./user-calls.js";
import { ERROR_BASE } from "./user-impl.js";

/** The page's query parameters: base URLs of the servers it calls. */
export interface PageParams {
  /** A server on another origin whose CORS configuration allows the trace headers. */
  readonly allowing: string;
  /** A server on another origin with connect's CORS defaults only, which do not. */
  readonly strict: string;
}

export type BrowserProtocol = "connect" | "grpc-web";

/** Trace and span id of a CLIENT span the browser recorded. */
export interface SpanIds {
  readonly traceId: string;
  readonly spanId: string;
}

/** A traced call whose trace context must reach the server. */
export interface PropagatedCall {
  readonly protocol: BrowserProtocol;
  /** `allowing`: cross-origin and allow-listed; `page`: same-origin, no allow-list. */
  readonly server: "allowing" | "page";
  readonly outcome: CallOutcome;
  readonly clientSpan: SpanIds;
}

/**
 * What clients saw of the strict server, per protocol. Each client makes the same three calls: FetchUser,
 * StreamUsers (every method kind connect-web has) and a FetchUser that fails with NOT_FOUND.
 */
export interface StrictCalls {
  readonly protocol: BrowserProtocol;
  readonly untraced: CallOutcome[];
  /** Traced clients with `baseUrl` and without `propagateTraceHeaderCorsUrls`. */
  readonly traced: CallOutcome[];
  /** Traced clients without `baseUrl`. */
  readonly tracedWithoutBaseUrl: CallOutcome[];
  /** The CLIENT spans of the traced calls (both kinds), in call order. */
  readonly tracedSpans: SpanIds[];
  /** A traced client that allow-lists the strict server anyway: the browser must fail its call. */
  readonly forcedError: ErrorOutcome | undefined;
}

/** What the page POSTs to /report. */
export interface PageReport {
  /** The page script failed: its error, with the stack. */
  readonly failure?: string;
  readonly propagated?: PropagatedCall[];
  readonly strict?: StrictCalls[];
}

const exporter = new InMemorySpanExporter();
const provider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] });
context.setGlobalContextManager(new StackContextManager().enable());
propagation.setGlobalPropagator(
  new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()] }),
);
trace.setGlobalTracerProvider(provider);

function transport(protocol: BrowserProtocol, baseUrl: string): Transport {
  return protocol === "connect" ? createConnectTransport({ baseUrl }) : createGrpcWebTransport({ baseUrl });
}

function traced(protocol: BrowserProtocol, baseUrl: string, options: TracedClientOptions): UserClient {
  return createTracedUserServiceClient(transport(protocol, baseUrl), { protocol, ...options });
}

function methodCase(method: MethodCase["method"]): MethodCase {
  const found = methodCases.find((mc) => mc.method === method);
  if (found === undefined) throw new Error(`no method case ${method}`);
  return found;
}

/** Runs `call` and returns its result with the CLIENT spans that ended meanwhile. */
async function withClientSpans<T>(call: () => Promise<T>): Promise<{ result: T; spans: SpanIds[] }> {
  exporter.reset();
  const result = await call();
  const spans = exporter
    .getFinishedSpans()
    .filter((s) => s.kind === SpanKind.CLIENT)
    .map((s) => ({ traceId: s.spanContext().traceId, spanId: s.spanContext().spanId }));
  return { result, spans };
}

async function propagatedCall(
  protocol: BrowserProtocol,
  server: PropagatedCall["server"],
  client: UserClient,
): Promise<PropagatedCall> {
  const { result, spans } = await withClientSpans(() => observeCall(methodCase("FetchUser"), client));
  if (spans.length !== 1) throw new Error(`expected one client span, got ${spans.length}`);
  return { protocol, server, outcome: result, clientSpan: spans[0] as SpanIds };
}

/** Makes the three calls of {@link StrictCalls} on `client`. */
async function strictOutcomes(client: UserClient): Promise<CallOutcome[]> {
  const notFound = async (): Promise<CallOutcome> => {
    try {
      return { received: [await client.fetchUser({ userId: ERROR_BASE + Code.NotFound })], headers: [], trailers: [] };
    } catch (error) {
      return { received: [], error: errorOutcome(error), headers: [], trailers: [] };
    }
  };
  return [
    await observeCall(methodCase("FetchUser"), client),
    await observeCall(methodCase("StreamUsers"), client),
    await notFound(),
  ];
}

async function strictCallsOf(protocol: BrowserProtocol, strict: string): Promise<StrictCalls> {
  const untraced = await strictOutcomes(createClient(UserService, transport(protocol, strict)));
  const traced1 = await withClientSpans(() => strictOutcomes(traced(protocol, strict, { baseUrl: strict })));
  const traced2 = await withClientSpans(() => strictOutcomes(traced(protocol, strict, {})));
  const forcedClient = traced(protocol, strict, { baseUrl: strict, propagateTraceHeaderCorsUrls: /.*/ });
  let forcedError: ErrorOutcome | undefined;
  try {
    await forcedClient.fetchUser({ userId: 1 });
  } catch (error) {
    forcedError = errorOutcome(error);
  }
  return {
    protocol,
    untraced,
    traced: traced1.result,
    tracedWithoutBaseUrl: traced2.result,
    tracedSpans: [...traced1.spans, ...traced2.spans],
    forcedError,
  };
}

async function run(params: PageParams): Promise<PageReport> {
  const propagated: PropagatedCall[] = [];
  const strict: StrictCalls[] = [];
  const allowingOrigin = new URL(params.allowing).origin;
  for (const protocol of ["connect", "grpc-web"] as const) {
    const allowList = new RegExp(`^${allowingOrigin.replaceAll(".", "\\.")}/`);
    const client = traced(protocol, params.allowing, {
      baseUrl: params.allowing,
      propagateTraceHeaderCorsUrls: [allowList],
    });
    propagated.push(await propagatedCall(protocol, "allowing", client));
    propagated.push(await propagatedCall(protocol, "page", traced(protocol, location.origin, { baseUrl: "/" })));
    strict.push(await strictCallsOf(protocol, params.strict));
  }
  return { propagated, strict };
}

/** JSON with bigints as `"<digits>n"` strings, so that outcomes survive the trip. */
function toJson(report: PageReport): string {
  return JSON.stringify(report, (_key, value: unknown) => (typeof value === "bigint" ? `${value}n` : value));
}

function post(report: PageReport): void {
  void fetch("/report", { method: "POST", body: toJson(report) });
}

addEventListener("error", (event) => post({ failure: `uncaught: ${String(event.error?.stack ?? event.message)}` }));
addEventListener("unhandledrejection", (event) => post({ failure: `unhandled rejection: ${String(event.reason)}` }));

const query = new URL(location.href).searchParams;
run({ allowing: query.get("allowing") ?? "", strict: query.get("strict") ?? "" }).then(post, (error: unknown) =>
  post({ failure: error instanceof Error ? `${error.stack ?? error.message}` : String(error) }),
);
