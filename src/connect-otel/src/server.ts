import type { DescMethod, DescService } from "@bufbuild/protobuf";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Context } from "@opentelemetry/api";
import { context, trace } from "@opentelemetry/api";
import { ATTR_DEADLINE_REMAINING_MS } from "./attribute-names.js";
import { filterAllows } from "./call-filter.js";
import type { TracingConfig } from "./config.js";
import { resolveTracingConfig } from "./config.js";
import { headerGetter } from "./header-carrier.js";
import { HandlerResponseStream, RecordedMessages } from "./message-streams.js";
import type { MethodPlan } from "./method-plan.js";
import { createMethodPlan, systemOfProtocolName } from "./method-plan.js";
import type { AnyMethodFacts, ServiceTable } from "./method-table.js";
import type { TracedServiceOptions } from "./options.js";
import type { SpanStart } from "./rpc-call.js";
import { RpcCall } from "./rpc-call.js";
import { authorityAttributes } from "./server-address.js";
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
 * included; `rpc.message` events are recorded; the span ends once, with the status of the call, a
 * client cancel (CANCELLED) or a deadline (DEADLINE_EXCEEDED), whichever comes first.
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

/**
 * Starts the SERVER span of one call — the child of the context extracted from the request
 * headers, or for a public endpoint a root span linked to it, or none for an untraced call — and
 * ends it early if the handler context is aborted. `request` is the single request of a unary or
 * server-streaming call, undefined for request streams.
 */
function startCall(plan: MethodPlan, setup: ServerSetup, ctx: HandlerContext, request: unknown): RpcCall {
  const { config } = setup;
  const active = context.active();
  let extracted: Context;
  try {
    extracted = config.propagator.extract(active, ctx.requestHeader, headerGetter);
  } catch {
    extracted = active;
  }
  const system = systemOfProtocolName(ctx.protocolName);
  if (!plan.traced || !filterAllows(config.filter, plan.spanName, "server", ctx.requestHeader)) {
    // a public endpoint never continues the caller's context, also when it starts no span
    const untracedParent = setup.isPublic(ctx) ? active : extracted;
    return new RpcCall(plan, config, "server", system, {}, untracedParent, { traced: false });
  }
  let parent = extracted;
  let start: SpanStart = { traced: true };
  if (setup.isPublic(ctx)) {
    parent = active;
    const remote = trace.getSpanContext(extracted);
    const links = remote?.isRemote === true && trace.isSpanContextValid(remote) ? [{ context: remote }] : undefined;
    start = { traced: true, root: true, links };
  }
  const remaining = ctx.timeoutMs();
  const attributes = startAttributes(
    { ...plan.startAttributes[system], ...authorityAttributes(ctx.url) },
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
  ctx.signal.addEventListener("abort", call, { once: true });
  return call;
}

function wrapHandler(plan: MethodPlan, setup: ServerSetup, handler: AnyHandler): AnyHandler {
  const { input, output, methodKind } = plan.method;
  const requestStreaming = methodKind === "client_streaming" || methodKind === "bidi_streaming";
  /** The handler's input: the request, recorded, or the request stream, recording as it is read. */
  const receive = (call: RpcCall, request: unknown): unknown => {
    if (requestStreaming) return new RecordedMessages(request as AsyncIterable<unknown>, call, "RECEIVED", input);
    call.message("RECEIVED", input, request);
    return request;
  };
  if (methodKind === "server_streaming" || methodKind === "bidi_streaming") {
    return (request, ctx) => {
      const call = startCall(plan, setup, ctx, requestStreaming ? undefined : request);
      return openResponseStream(call, handler, receive(call, request), ctx, output);
    };
  }
  return async (request, ctx) => {
    const call = startCall(plan, setup, ctx, requestStreaming ? undefined : request);
    try {
      const response = await context.with(call.context, handler, undefined, receive(call, request), ctx);
      call.message("SENT", output, response);
      call.succeed();
      return response;
    } catch (error) {
      call.fail(error, Code.Internal);
      throw error;
    }
  };
}

function openResponseStream(
  call: RpcCall,
  handler: AnyHandler,
  input: unknown,
  ctx: HandlerContext,
  output: DescMethod["output"],
): AsyncIterable<unknown> {
  let iterable: AsyncIterable<unknown>;
  try {
    iterable = context.with(call.context, handler, undefined, input, ctx);
  } catch (error) {
    call.fail(error, Code.Internal);
    throw error;
  }
  return new HandlerResponseStream(iterable[Symbol.asyncIterator](), call, output);
}
