import type { DescMessage, DescMethod, DescService, MessageInitShape } from "@bufbuild/protobuf";
import { create } from "@bufbuild/protobuf";
import type { CallOptions, Client, Transport } from "@connectrpc/connect";
import { Code, ConnectError, makeAnyClient } from "@connectrpc/connect";
import { createAsyncIterable } from "@connectrpc/connect/protocol";
import type { Attributes } from "@opentelemetry/api";
import { context } from "@opentelemetry/api";
import { ATTR_TIMEOUT_MS } from "./attribute-names.js";
import { filterAllows } from "./call-filter.js";
import type { TracingConfig } from "./config.js";
import { resolveTracingConfig } from "./config.js";
import { headerSetter, recordSetter } from "./header-carrier.js";
import { ClientResponseStream, recordMessages } from "./message-streams.js";
import type { MethodPlan, RpcSystem } from "./method-plan.js";
import { createMethodPlan, systemOfContentType, systemOfWireProtocol } from "./method-plan.js";
import type { AnyMethodFacts, ServiceTable } from "./method-table.js";
import type { TracedClientOptions } from "./options.js";
import { RpcCall } from "./rpc-call.js";
import { serverAddressAttributes } from "./server-address.js";
import { startAttributes } from "./start-attributes.js";
import { browserPage, traceHeaderPolicy } from "./trace-header-policy.js";

/** What every call of one traced client shares. */
interface ClientSetup {
  readonly transport: Transport;
  readonly config: TracingConfig;
  readonly system: RpcSystem;
  /** `server.address`/`server.port` from the `baseUrl` option; undefined without it. */
  readonly target: Attributes | undefined;
}

/**
 * Creates a connect client for `service` whose every call runs in a CLIENT span named
 * `package.Service/Method`, injects the span's context into the request headers with the
 * configured propagator, records `rpc.message` events and ends the span with the call's status.
 * In a browser, calls to another origin carry no trace headers unless `propagateTraceHeaderCorsUrls`
 * matches, and none without `baseUrl` (see {@link TracedClientOptions}).
 * Calls behave as those of connect's `createClient(service, transport)`: same arguments, results,
 * errors, `onHeader`/`onTrailer` callbacks. One difference: breaking out of a response stream
 * closes the transport's stream (connect's own client leaves it open).
 *
 * Called by generated code (`createTraced<Service>Client`), which passes the service's method table.
 *
 * @throws TypeError if an option is invalid (see {@link TracedClientOptions}).
 */
export function createTracedClient<S extends DescService>(
  service: S,
  table: ServiceTable<S>,
  transport: Transport,
  options?: TracedClientOptions,
): Client<S> {
  const config = resolveTracingConfig(service, options, "client");
  const page = browserPage();
  // in a browser, a relative baseUrl is relative to the page, as for fetch
  const baseUrl =
    page === undefined || options?.baseUrl === undefined ? options?.baseUrl : new URL(options.baseUrl, page.baseUrl);
  const setup: ClientSetup = {
    transport,
    config,
    system: systemOfWireProtocol(options?.protocol),
    target: baseUrl !== undefined ? serverAddressAttributes(baseUrl) : undefined,
  };
  const injects = traceHeaderPolicy(page, baseUrl, options?.propagateTraceHeaderCorsUrls);
  const facts = table as Record<string, AnyMethodFacts | undefined>;
  return makeAnyClient(service, (method) => {
    const methodFacts = facts[method.localName];
    if (methodFacts === undefined) return null;
    const plan = createMethodPlan(method, methodFacts, config, setup.target);
    const start = plan.startAttributes[setup.system];
    const attributes = setup.target === undefined ? start : { ...start, ...setup.target };
    const m: ClientMethod = {
      plan,
      attributes,
      injects: injects(method),
      shapeRequest: (message) => create(method.input, message as AnyInit),
    };
    switch (method.methodKind) {
      case "unary":
        return createUnaryFn(setup, m, method);
      case "server_streaming":
        return createServerStreamingFn(setup, m, method);
      case "client_streaming":
        return createClientStreamingFn(setup, m, method);
      case "bidi_streaming":
        return createBiDiStreamingFn(setup, m, method);
    }
  }) as Client<S>;
}

type AnyInit = MessageInitShape<DescMessage>;

/** One method of a traced client: its plan and the attributes its spans start with. */
interface ClientMethod {
  readonly plan: MethodPlan;
  /** Start attributes for the client's RPC system and target. Shared by all calls: never mutate. */
  readonly attributes: Attributes;
  /** Whether calls inject the call's context into the request headers. */
  readonly injects: boolean;
  /** Turns a request init object into a message of the method's input type, for extractors. */
  readonly shapeRequest: (request: unknown) => unknown;
}

/**
 * Starts the CLIENT span of one call (none for an untraced call) and injects the call's context
 * into a copy of the call's headers, unless the method's target would reject trace headers (browsers).
 * `request` is the single request of a unary or server-streaming call, undefined for request streams.
 */
function startCall(setup: ClientSetup, m: ClientMethod, options: CallOptions | undefined, request: unknown) {
  const { plan } = m;
  const parent = context.active();
  const { config, system } = setup;
  // A copy of the caller's headers only where something reads or keeps them: the caller's own
  // headers, a filter asked per call, recorded request headers. Otherwise a plain object.
  const copy =
    options?.headers !== undefined || plan.filterDecision === undefined || config.requestHeaders.length > 0
      ? new Headers(options?.headers)
      : undefined;
  let call: RpcCall;
  if (plan.traced && (plan.filterDecision ?? filterAllows(config.filter, plan.spanName, "client", copy as Headers))) {
    const timeoutMs = options?.timeoutMs;
    const attributes = startAttributes(
      m.attributes,
      plan,
      config,
      {
        system,
        request,
        requestHeader: copy,
        deadline: timeoutMs !== undefined && timeoutMs > 0 ? [ATTR_TIMEOUT_MS, timeoutMs] : undefined,
      },
      m.shapeRequest,
    );
    call = new RpcCall(plan, config, "client", system, attributes, parent);
    if (copy !== undefined) call.deferRequestMetadata(copy);
  } else {
    call = new RpcCall(plan, config, "client", system, {}, parent, { traced: false });
  }
  const record: Record<string, string> | undefined = copy === undefined ? {} : undefined;
  if (m.injects) {
    try {
      if (copy !== undefined) config.propagator.inject(call.context, copy, headerSetter);
      else config.propagator.inject(call.context, record, recordSetter);
    } catch {
      // a propagator that throws leaves the headers as the caller gave them
    }
  }
  return { call, headers: (copy ?? record) as HeadersInit };
}

/** Ends a client call that failed, after learning the RPC system from the error's metadata. */
function failCall(call: RpcCall, error: unknown): void {
  if (error instanceof ConnectError) call.learnSystem(systemOfContentType(error.metadata.get("content-type")));
  call.fail(error, Code.Unknown);
}

/**
 * The single request of a unary or server-streaming call as a message, made once here for the
 * span's start attributes, its event and the transport (connect's transport takes a message as
 * it is: `create()` returns a message of the schema unchanged). An init object that does not
 * build is passed on as it was, for connect to fail the call with its own error.
 */
function requestMessage(schema: DescMessage, input: AnyInit): AnyInit {
  try {
    return create(schema, input);
  } catch {
    return input;
  }
}

function createUnaryFn(setup: ClientSetup, m: ClientMethod, method: DescMethod & { methodKind: "unary" }) {
  const { transport } = setup;
  return async (init: AnyInit, options?: CallOptions) => {
    const input = requestMessage(method.input, init);
    const { call, headers } = startCall(setup, m, options, input);
    call.message("SENT", method.input, input);
    let response: Awaited<ReturnType<Transport["unary"]>>;
    try {
      response = await context.with(
        call.context,
        transport.unary,
        transport,
        method,
        options?.signal,
        options?.timeoutMs,
        headers,
        input,
        options?.contextValues,
      );
    } catch (error) {
      failCall(call, error);
      throw error;
    }
    call.learnSystem(systemOfContentType(response.header.get("content-type")));
    call.watchResponseMetadata(response.header, response.trailer);
    call.message("RECEIVED", method.output, response.message);
    call.succeed();
    options?.onHeader?.(response.header);
    options?.onTrailer?.(response.trailer);
    return response.message;
  };
}

/**
 * Opens a streaming call on the transport within the span's context. The transport gets a signal
 * that follows the caller's `signal` and also aborts when the consumer of a response stream stops
 * early, so that the stream is closed (connect's response iterables ignore `return()`).
 */
function openStream(
  setup: ClientSetup,
  call: RpcCall,
  method: DescMethod & { methodKind: "server_streaming" | "client_streaming" | "bidi_streaming" },
  headers: HeadersInit,
  input: AsyncIterable<AnyInit>,
  options: CallOptions | undefined,
  abandon?: AbortController,
) {
  const { transport } = setup;
  let signal = options?.signal;
  if (abandon !== undefined) signal = signal ? AbortSignal.any([signal, abandon.signal]) : abandon.signal;
  const pending = context.with(
    call.context,
    transport.stream,
    transport,
    method,
    signal,
    options?.timeoutMs,
    headers,
    input,
    options?.contextValues,
  );
  // End the span when the call fails before the consumer reads it; the consumer still gets the
  // rejection from `pending` when it does read.
  pending.then(undefined, (error: unknown) => failCall(call, error));
  return pending;
}

function createServerStreamingFn(
  setup: ClientSetup,
  m: ClientMethod,
  method: DescMethod & { methodKind: "server_streaming" },
) {
  return (init: AnyInit, options?: CallOptions) => {
    const input = requestMessage(method.input, init);
    const { call, headers } = startCall(setup, m, options, input);
    call.message("SENT", method.input, input);
    const abandon = new AbortController();
    const pending = openStream(setup, call, method, headers, createAsyncIterable([input]), options, abandon);
    return new ClientResponseStream(pending, call, method.output, options, abandon);
  };
}

function createClientStreamingFn(
  setup: ClientSetup,
  m: ClientMethod,
  method: DescMethod & { methodKind: "client_streaming" },
) {
  return async (request: AsyncIterable<AnyInit>, options?: CallOptions) => {
    const { call, headers } = startCall(setup, m, options, undefined);
    const input = recordMessages(request, call, "SENT", method.input);
    try {
      const response = await openStream(setup, call, method, headers, input, options);
      call.learnSystem(systemOfContentType(response.header.get("content-type")));
      call.watchResponseMetadata(response.header, response.trailer);
      options?.onHeader?.(response.header);
      let single: unknown;
      let count = 0;
      for await (const message of response.message) {
        single = message;
        count++;
      }
      // The same protocol checks, with the same errors, as connect's createClientStreamingFn.
      if (single === undefined) {
        throw new ConnectError("protocol error: missing response message", Code.Unimplemented);
      }
      if (count > 1) {
        throw new ConnectError(
          "protocol error: received extra messages for client streaming method",
          Code.Unimplemented,
        );
      }
      call.message("RECEIVED", method.output, single);
      call.succeed();
      options?.onTrailer?.(response.trailer);
      return single;
    } catch (error) {
      failCall(call, error);
      throw error;
    }
  };
}

function createBiDiStreamingFn(
  setup: ClientSetup,
  m: ClientMethod,
  method: DescMethod & { methodKind: "bidi_streaming" },
) {
  return (request: AsyncIterable<AnyInit>, options?: CallOptions) => {
    const { call, headers } = startCall(setup, m, options, undefined);
    const input = recordMessages(request, call, "SENT", method.input);
    const abandon = new AbortController();
    const pending = openStream(setup, call, method, headers, input, options, abandon);
    return new ClientResponseStream(pending, call, method.output, options, abandon);
  };
}
