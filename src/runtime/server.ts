import type { DescMethod, DescService } from "@bufbuild/protobuf";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Context } from "@opentelemetry/api";
import { context } from "@opentelemetry/api";
import type { TracingConfig } from "./config.js";
import { resolveTracingConfig } from "./config.js";
import { headerGetter } from "./header-carrier.js";
import { HandlerResponseStream, RecordedMessages } from "./message-streams.js";
import type { MethodPlan } from "./method-plan.js";
import { createMethodPlan, systemOfProtocolName } from "./method-plan.js";
import type { MethodFacts, ServiceTable } from "./method-table.js";
import type { TracedServiceOptions } from "./options.js";
import { RpcCall } from "./rpc-call.js";
import { authorityAttributes } from "./server-address.js";

// biome-ignore lint/suspicious/noExplicitAny: handlers of any method kind pass through one shape
type AnyHandler = (input: any, ctx: HandlerContext) => any;

/**
 * Wraps a (partial) service implementation so that every method — also those `impl` leaves out,
 * which answer UNIMPLEMENTED exactly as connect's router would — runs in a SERVER span named
 * `package.Service/Method`, the child of the context extracted from the request headers with the
 * configured propagator. Handler code runs with the span active at every step, streaming handlers
 * included; `rpc.message` events are recorded; the span ends once, with the status of the call, a
 * client cancel (CANCELLED) or a deadline (DEADLINE_EXCEEDED), whichever comes first.
 * The wrapper passes requests, results and errors through unchanged.
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
  const config = resolveTracingConfig(options);
  const facts = table as Record<string, MethodFacts | undefined>;
  const handlers = impl as Record<string, AnyHandler | undefined>;
  const traced: Record<string, AnyHandler> = {};
  for (const method of service.methods) {
    const fn = handlers[method.localName];
    const handler = typeof fn === "function" ? (fn.bind(impl) as AnyHandler) : unimplemented(service, method);
    const methodFacts = facts[method.localName];
    traced[method.localName] =
      methodFacts === undefined ? handler : wrapHandler(createMethodPlan(method, methodFacts, config), config, handler);
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

/** Starts the SERVER span of one call and ends it early if the handler context is aborted. */
function startCall(plan: MethodPlan, config: TracingConfig, ctx: HandlerContext): RpcCall {
  const active = context.active();
  let parent: Context;
  try {
    parent = config.propagator.extract(active, ctx.requestHeader, headerGetter);
  } catch {
    parent = active;
  }
  const system = systemOfProtocolName(ctx.protocolName);
  const attributes = { ...plan.startAttributes[system], ...authorityAttributes(ctx.url) };
  const call = new RpcCall(plan, config, "server", system, attributes, parent);
  ctx.signal.addEventListener("abort", call, { once: true });
  return call;
}

function wrapHandler(plan: MethodPlan, config: TracingConfig, handler: AnyHandler): AnyHandler {
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
      const call = startCall(plan, config, ctx);
      return openResponseStream(call, handler, receive(call, request), ctx, output);
    };
  }
  return async (request, ctx) => {
    const call = startCall(plan, config, ctx);
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
