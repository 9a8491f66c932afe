import type { DescMethod, DescService } from "@bufbuild/protobuf";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Context } from "@opentelemetry/api";
import { context, propagation, trace } from "@opentelemetry/api";
import { ATTR_DEADLINE_REMAINING_MS } from "./attribute-names.js";
import { filterAllows } from "./call-filter.js";
import type { TracingConfig } from "./config.js";
import { resolveTracingConfig } from "./config.js";
import { headerGetter } from "./header-carrier.js";
import { continuedServerSpan } from "./http-server-span.js";
import { HandlerResponseStream, recordMessages } from "./message-streams.js";
import type { MethodPlan } from "./method-plan.js";
import { createMethodPlan, systemOfProtocolName } from "./method-plan.js";
import type { AnyMethodFacts, ServiceTable } from "./method-table.js";
import type { TracedServiceOptions } from "./options.js";
import type { SpanStart } from "./rpc-call.js";
import { RpcCall } from "./rpc-call.js";
import { ServerCallEnd } from "./server-call-end.js";
import { ServerStartAttributes } from "./server-start-attributes.js";
import { startAttributes } from "./start-attributes.js";
import { TRACE_RESPONSE_HEADER, traceResponseValue } from "./trace-response.js";

// biome-ignore lint/suspicious/noExplicitAny: handlers of any method kind pass through one shape
type AnyHandler = (input: any, ctx: HandlerContext) => any;

/** What every call of one traced service shares. */
interface ServerSetup {
  readonly config: TracingConfig;
  /** The `publicEndpoint` option as a function of the handler context. */
  readonly isPublic: (ctx: HandlerContext) => boolean;
  readonly traceResponse: boolean;
}

/**
 * Wraps a (partial) service implementation so that every method — also those `impl` leaves out,
 * which answer UNIMPLEMENTED exactly as connect's router would — runs in a SERVER span named
 * `package.Service/Method`, the child of the context extracted from the request headers with the
 * configured propagator. Handler code runs with the span active at every step, streaming handlers
 * included; `rpc.message` events are recorded; the span ends once, with the handler's status, or
 * DEADLINE_EXCEEDED when the call's deadline passed, or CANCELLED when the client went away, in
 * whatever order connect reports these (see `ServerCallEnd`).
 * The wrapper passes requests, results and errors through unchanged. Methods that are untraced
 * (schema annotation, `filter` option) start no span and run in the extracted context; a public
 * endpoint starts root spans linked to the caller's context.
 *
 * Called by generated code (`trace<Service>`), which passes the service's method table.
 *
 * @throws TypeError if an option is invalid (see {@link TracedServiceOptions}).
 */
export function traceService<S extends DescService>(
  service: S,
  table: ServiceTable<S>,
  impl: Partial<ServiceImpl<S>>,
  options?: TracedServiceOptions,
): ServiceImpl<S> {
  const setup: ServerSetup = {
    config: resolveTracingConfig(service, options, "server"),
    isPublic: publicEndpointOption(options?.publicEndpoint),
    traceResponse: booleanOption("traceResponse", options?.traceResponse),
  };
  const facts = table as Record<string, AnyMethodFacts | undefined>;
  const handlers = impl as Record<string, AnyHandler | undefined>;
  const traced: Record<string, AnyHandler> = {};
  for (const method of service.methods) {
    const fn = handlers[method.localName];
    const handler = typeof fn === "function" ? (fn.bind(impl) as AnyHandler) : unimplemented(service, method);
    const methodFacts = facts[method.localName];
    traced[method.localName] =
      methodFacts === undefined
        ? handler
        : wrapHandler(createMethodPlan(method, methodFacts, setup.config), setup, handler);
  }
  return traced as ServiceImpl<S>;
}

/** The handler connect's router uses for a method missing from the implementation, same message. */
function unimplemented(service: DescService, method: DescMethod): AnyHandler {
  const message = `${service.typeName}.${method.name} is not implemented`;
  return () => {
    throw new ConnectError(message, Code.Unimplemented);
  };
}

/** @throws TypeError unless the option is absent, a boolean or a function */
function publicEndpointOption(option: TracedServiceOptions["publicEndpoint"]): (ctx: HandlerContext) => boolean {
  if (option === undefined || typeof option === "boolean") return () => option === true;
  if (typeof option !== "function") {
    throw new TypeError(`connect-otel: option publicEndpoint must be a boolean or a function, got ${typeof option}`);
  }
  return (ctx) => {
    try {
      return option(ctx) === true;
    } catch {
      return true; // a predicate that throws must not open the trust boundary
    }
  };
}

/** @throws TypeError unless the option is absent or a boolean */
function booleanOption(name: string, option: unknown): boolean {
  if (option !== undefined && typeof option !== "boolean") {
    throw new TypeError(`connect-otel: option ${name} must be a boolean, got ${typeof option}`);
  }
  return option === true;
}

/** A server's requests are messages already: extractors read them as they are. */
const receivedMessage = (message: unknown): unknown => message;

/** One call of a traced handler: its span, and what decides how the span ends. */
interface ServerCall {
  readonly call: RpcCall;
  readonly end: ServerCallEnd;
}

/**
 * Starts the SERVER span of one call — the child of the context extracted from the request
 * headers, or for a public endpoint a root span linked to it, or none for an untraced call — and
 * the {@link ServerCallEnd} that ends it: early if the call is cut off (deadline, client gone),
 * else with the handler's outcome. `request` is the single request of a unary or server-streaming
 * call, undefined for request streams.
 */
function startCall(
  plan: MethodPlan,
  setup: ServerSetup,
  starts: ServerStartAttributes,
  ctx: HandlerContext,
  request: unknown,
): ServerCall {
  const { config } = setup;
  const active = context.active();
  let extracted: Context;
  try {
    extracted = config.propagator.extract(active, ctx.requestHeader, headerGetter);
  } catch {
    extracted = active;
  }
  const system = systemOfProtocolName(ctx.protocolName);
  const isPublic = setup.isPublic(ctx);
  const parent = callerParent(active, extracted, isPublic);
  if (
    !plan.traced ||
    !(plan.filterDecision ?? filterAllows(config.filter, plan.spanName, "server", ctx.requestHeader))
  ) {
    const call = new RpcCall(plan, config, "server", system, {}, parent, { traced: false });
    return { call, end: new ServerCallEnd(call, ctx, "none") };
  }
  let start: SpanStart = { traced: true };
  if (isPublic) {
    const remote = trace.getSpanContext(extracted);
    const links = remote?.isRemote === true && trace.isSpanContextValid(remote) ? [{ context: remote }] : undefined;
    start = { traced: true, root: true, links };
  }
  const remaining = ctx.timeoutMs();
  const attributes = startAttributes(
    starts.get(system, ctx.url),
    plan,
    config,
    {
      system,
      request,
      requestHeader: ctx.requestHeader,
      deadline: remaining === undefined ? undefined : [ATTR_DEADLINE_REMAINING_MS, remaining],
    },
    receivedMessage,
  );
  const call = new RpcCall(plan, config, "server", system, attributes, parent, start);
  call.watchResponseMetadata(ctx.responseHeader, ctx.responseTrailer);
  if (setup.traceResponse) {
    const value = traceResponseValue(call.span);
    if (value !== undefined) ctx.responseHeader.set(TRACE_RESPONSE_HEADER, value);
  }
  return { call, end: new ServerCallEnd(call, ctx, plan.requestStreaming ? "exchange" : "handler") };
}

/**
 * The context a server call runs in, also when it starts no span:
 *
 * - `extracted`, the caller's context from the request headers — with the SERVER span that HTTP
 *   instrumentation started for this request as its active span when that span continued the same
 *   caller (`continuedServerSpan`), so that the RPC span is its child and not its sibling;
 * - for a public endpoint, never the caller's context: the `active` one, without the caller's
 *   baggage when HTTP instrumentation extracted it there along with its span.
 */
function callerParent(active: Context, extracted: Context, isPublic: boolean): Context {
  const httpSpan = continuedServerSpan(active, extracted);
  if (isPublic) return httpSpan === undefined ? active : propagation.deleteBaggage(active);
  return httpSpan === undefined ? extracted : trace.setSpan(extracted, httpSpan);
}

function wrapHandler(plan: MethodPlan, setup: ServerSetup, handler: AnyHandler): AnyHandler {
  const { input, output, methodKind } = plan.method;
  const requestStreaming = methodKind === "client_streaming" || methodKind === "bidi_streaming";
  const starts = new ServerStartAttributes(plan);
  /** The handler's input: the request, recorded, or the request stream, recording as it is read. */
  const receive = (call: RpcCall, request: unknown): unknown => {
    if (requestStreaming) return recordMessages(request as AsyncIterable<unknown>, call, "RECEIVED", input);
    call.message("RECEIVED", input, request);
    return request;
  };
  if (methodKind === "server_streaming" || methodKind === "bidi_streaming") {
    return (request, ctx) => {
      const started = startCall(plan, setup, starts, ctx, requestStreaming ? undefined : request);
      return openResponseStream(started, handler, receive(started.call, request), ctx, output);
    };
  }
  return async (request, ctx) => {
    const { call, end } = startCall(plan, setup, starts, ctx, requestStreaming ? undefined : request);
    try {
      const response = await context.with(call.context, handler, undefined, receive(call, request), ctx);
      call.message("SENT", output, response);
      end.succeed();
      return response;
    } catch (error) {
      end.fail(error);
      throw error;
    }
  };
}

function openResponseStream(
  { call, end }: ServerCall,
  handler: AnyHandler,
  input: unknown,
  ctx: HandlerContext,
  output: DescMethod["output"],
): AsyncIterable<unknown> {
  let iterable: AsyncIterable<unknown>;
  try {
    iterable = context.with(call.context, handler, undefined, input, ctx);
  } catch (error) {
    end.fail(error);
    throw error;
  }
  return new HandlerResponseStream(iterable[Symbol.asyncIterator](), call, output, end);
}
