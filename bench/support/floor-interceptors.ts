/**
 * The `floor` system of overhead.ts: the least instrumentation that produces the spans the
 * generated traced pair produces with default options, written by hand as a connect client
 * interceptor and a server interceptor that call the OpenTelemetry API and nothing else. Same span
 * names, kinds, attributes (semconv v1.45.0 stable names, the schema's field attributes of
 * proto/user/v1/user.proto, the message totals of streaming calls), `rpc.message` events with ids
 * and sizes (at most 128 per span, the runtime's default cap), parents, and the server handler's
 * steps run with the server span active; overhead.ts checks the spans against the traced pair's
 * before it measures (`floorSpanMismatches` of floor-check.ts).
 *
 * What it leaves out is what the runtime does beyond these spans, which the benchmark's calls do
 * not exercise: options and their validation, filters, hooks, header allow-lists, cut-off calls
 * (deadlines, clients that go away), guards against a telemetry SDK or a propagator that throws,
 * metrics, legacy conventions, gRPC-web. Errors end a span as an error, roughly;
 * the benchmark makes no failing calls. Its cost against untraced connect is the cost of the spans
 * themselves with this SDK pipeline; the traced pair's cost over it is what the runtime adds.
 */

import type { DescMessage } from "@bufbuild/protobuf";
import { toBinary } from "@bufbuild/protobuf";
import type { Interceptor, StreamRequest, StreamResponse, UnaryRequest, UnaryResponse } from "@connectrpc/connect";
import { ConnectError, createClient } from "@connectrpc/connect";
import { createAsyncIterable } from "@connectrpc/connect/protocol";
import type { Attributes, Context, Span, TextMapGetter, TextMapSetter, Tracer } from "@opentelemetry/api";
import { context, propagation, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import { UserService } from "../../generated/user/v1/user_pb.js";
import { connectStatusNames, grpcStatusNames } from "../../test/support/semconv.js";
import { createUserImpl } from "../../test/support/user-impl.js";
import type { PairCalls, PairTransport } from "./connect-user.js";
import { connectCalls, openUserPair } from "./connect-user.js";

/** Most `rpc.message` events per span: the runtime's `maxMessageEvents` default. */
const MAX_MESSAGE_EVENTS = 128;

/** `rpc.system.name` of a call: `grpc` for gRPC, `connectrpc` for the Connect protocol. */
export type FloorSystem = "grpc" | "connectrpc";

/**
 * `rpc.status_code` of `code` (connect `Code`, gRPC numbers): gRPC's names, or Connect's snake case,
 * from the tests' independent tables.
 */
function statusName(system: FloorSystem, code: number): string {
  return (system === "connectrpc" ? connectStatusNames[code] : grpcStatusNames[code]) ?? "UNKNOWN";
}

/** The annotated fields of user.proto's messages, by message type: `(connectotel.v1.field).attribute`. */
const FIELD_ATTRIBUTES: Record<string, (message: Record<string, unknown>) => Attributes> = {
  "user.v1.FetchUserRequest": (m) => ({ "app.user.id": m.userId as number }),
  "user.v1.StreamUsersRequest": (m) => ({ "app.page.size": m.pageSize as number }),
  "user.v1.ChatMessage": (m) => ({ "app.chat.user": m.user as string }),
};

const headerSetter: TextMapSetter<Headers> = { set: (h, k, v) => h.set(k, v) };
const headerGetter: TextMapGetter<Headers> = {
  get: (h, k) => h.get(k) ?? undefined,
  keys: (h) => [...h.keys()],
};

type AnyRequest = UnaryRequest<DescMessage, DescMessage> | StreamRequest<DescMessage, DescMessage>;
type AnyResponse = UnaryResponse<DescMessage, DescMessage> | StreamResponse<DescMessage, DescMessage>;

/** One call's span and message counters. */
class FloorCall {
  sent = 0;
  received = 0;
  /** `rpc.message` events recorded so far. */
  private events = 0;
  private readonly recording: boolean;
  constructor(
    readonly span: Span,
    readonly context: Context,
    private readonly system: FloorSystem,
    private readonly streaming: boolean,
  ) {
    this.recording = span.isRecording();
  }

  /**
   * An `rpc.message` event, if the span records and has fewer than 128; a streamed message's
   * annotated fields go on it.
   */
  message(type: "SENT" | "RECEIVED", schema: DescMessage, message: unknown, streamed: boolean): void {
    const id = type === "SENT" ? ++this.sent : ++this.received;
    if (!this.recording || this.events >= MAX_MESSAGE_EVENTS) return;
    this.events++;
    const attrs: Attributes = {
      "rpc.message.type": type,
      "rpc.message.id": id,
      "rpc.message.uncompressed_size": toBinary(schema, message as never).byteLength,
    };
    const fields = streamed ? FIELD_ATTRIBUTES[schema.typeName] : undefined;
    this.span.addEvent("rpc.message", fields ? { ...fields(message as Record<string, unknown>), ...attrs } : attrs);
  }

  end(error?: unknown, server = false): void {
    if (!this.recording) {
      this.span.end();
      return;
    }
    const code = error === undefined ? 0 : error instanceof ConnectError ? error.code : server ? 13 : 2;
    const name = statusName(this.system, code);
    this.span.setAttribute("rpc.status_code", name);
    if (this.streaming) {
      this.span.setAttribute("connect_otel.messages.sent", this.sent);
      this.span.setAttribute("connect_otel.messages.received", this.received);
    }
    if (code !== 0) {
      this.span.setAttribute("error.type", name);
      this.span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : "" });
    }
    this.span.end();
  }
}

/**
 * The single request of a server-streaming call, read from its request stream, which carries it
 * as a stream of one; and the request to pass on, with a new stream of that one message.
 */
async function readSingleRequest(req: StreamRequest<DescMessage, DescMessage>): Promise<[unknown, AnyRequest]> {
  let single: unknown;
  for await (const m of req.message) single = m;
  return [single, { ...req, message: createAsyncIterable([single as never]) }];
}

/**
 * The single request of a unary or server-streaming call (undefined for request streams) and the
 * request to pass on; only a server-streaming call waits, for its stream of one.
 */
function singleRequest(req: AnyRequest): [unknown, AnyRequest] | Promise<[unknown, AnyRequest]> {
  if (!req.stream) return [req.message, req];
  return req.method.methodKind === "server_streaming" ? readSingleRequest(req) : [undefined, req];
}

/** The attributes every span of `method` starts with, plus the single request's annotated fields. */
function startAttributes(
  req: AnyRequest,
  single: unknown,
  system: FloorSystem,
  address: string,
  port: number,
): Attributes {
  const m = req.method;
  const attrs: Attributes = {
    "rpc.system.name": system,
    "rpc.method": `${m.parent.typeName}/${m.name}`,
    "server.address": address,
    "server.port": port,
  };
  const fields = single === undefined ? undefined : FIELD_ATTRIBUTES[m.input.typeName];
  if (fields) Object.assign(attrs, fields(single as Record<string, unknown>));
  return attrs;
}

/** Records each message of `messages` as it passes. */
async function* recorded<T>(
  messages: AsyncIterable<T>,
  call: FloorCall,
  type: "SENT" | "RECEIVED",
  schema: DescMessage,
) {
  for await (const m of messages) {
    call.message(type, schema, m, true);
    yield m;
  }
}

/**
 * The client half: a CLIENT span per call, the call's context injected into the request headers
 * with the global propagator, an event per message, the span ended with the call's status.
 * `baseUrl` gives `server.address` and `server.port`; `system` is the transport's protocol.
 */
export function floorClientInterceptor(tracer: Tracer, baseUrl: string, system: FloorSystem): Interceptor {
  const url = new URL(baseUrl);
  const address = url.hostname;
  const port = Number(url.port || (url.protocol === "https:" ? 443 : 80));
  return (next) => async (original: AnyRequest) => {
    const m = original.method;
    const found = singleRequest(original);
    const [single, req] = found instanceof Promise ? await found : found;
    const span = tracer.startSpan(`${m.parent.typeName}/${m.name}`, {
      kind: SpanKind.CLIENT,
      attributes: startAttributes(req, single, system, address, port),
    });
    const call = new FloorCall(span, trace.setSpan(context.active(), span), system, req.stream);
    propagation.inject(call.context, req.header, headerSetter);
    try {
      if (single !== undefined) call.message("SENT", m.input, single, false);
      if (!req.stream) {
        const res = (await next(req)) as UnaryResponse<DescMessage, DescMessage>;
        call.message("RECEIVED", m.output, res.message, false);
        call.end();
        return res;
      }
      const message = single === undefined ? recorded(req.message, call, "SENT", m.input) : req.message;
      const res = (await next({ ...req, message } as AnyRequest)) as AnyResponse;
      return {
        ...res,
        message: endingStream(res as StreamResponse<DescMessage, DescMessage>, call, m.output),
      } as AnyResponse;
    } catch (error) {
      call.end(error);
      throw error;
    }
  };
}

/** A client's response stream: events per message, and the span's end when the stream ends. */
async function* endingStream(res: StreamResponse<DescMessage, DescMessage>, call: FloorCall, schema: DescMessage) {
  try {
    yield* recorded(res.message, call, "RECEIVED", schema);
  } catch (error) {
    call.end(error);
    throw error;
  }
  call.end();
}

/**
 * The server half: a SERVER span per call, the child of the context the global propagator extracts
 * from the request headers, the handler run in its context (every step of a response stream too),
 * an event per message, the span ended with the handler's status. The RPC system is the request's
 * `content-type`'s: `application/grpc…` is gRPC, anything else the Connect protocol (gRPC-web is
 * not served here).
 */
export function floorServerInterceptor(tracer: Tracer): Interceptor {
  const origins = new Map<string, { address: string; port: number }>();
  const systemOf = (req: AnyRequest): FloorSystem =>
    req.header.get("content-type")?.startsWith("application/grpc") ? "grpc" : "connectrpc";
  return (next) => async (original: AnyRequest) => {
    const m = original.method;
    const found = singleRequest(original);
    const [single, req] = found instanceof Promise ? await found : found;
    const system = systemOf(req);
    let origin = origins.get(req.url);
    if (origin === undefined) {
      const u = new URL(req.url);
      origin = { address: u.hostname, port: Number(u.port || (u.protocol === "https:" ? 443 : 80)) };
      origins.set(req.url, origin);
    }
    const parent = propagation.extract(context.active(), req.header, headerGetter);
    const span = tracer.startSpan(
      `${m.parent.typeName}/${m.name}`,
      { kind: SpanKind.SERVER, attributes: startAttributes(req, single, system, origin.address, origin.port) },
      parent,
    );
    const call = new FloorCall(span, trace.setSpan(parent, span), system, req.stream);
    try {
      if (single !== undefined) call.message("RECEIVED", m.input, single, false);
      if (!req.stream) {
        const res = (await context.with(call.context, next, undefined, req)) as UnaryResponse<DescMessage, DescMessage>;
        call.message("SENT", m.output, res.message, false);
        call.end(undefined, true);
        return res;
      }
      const input = single === undefined ? recorded(req.message, call, "RECEIVED", m.input) : req.message;
      const res = (await context.with(call.context, next, undefined, {
        ...req,
        message: input,
      } as AnyRequest)) as StreamResponse<DescMessage, DescMessage>;
      return { ...res, message: handlerSteps(res.message, call, m.output) } as AnyResponse;
    } catch (error) {
      call.end(error, true);
      throw error;
    }
  };
}

/** A handler's response stream, each step run with the server span active, ending the span. */
function handlerSteps(messages: AsyncIterable<unknown>, call: FloorCall, schema: DescMessage): AsyncIterable<unknown> {
  const it = messages[Symbol.asyncIterator]();
  const stream: AsyncIterableIterator<unknown> = {
    [Symbol.asyncIterator]: () => stream,
    next: () =>
      context.with(call.context, it.next, it).then(
        (result) => {
          if (result.done === true) call.end(undefined, true);
          else call.message("SENT", schema, result.value, true);
          return result;
        },
        (error: unknown) => {
          call.end(error, true);
          throw error;
        },
      ),
    return: (value?: unknown) => (it.return ? it.return(value) : Promise.resolve({ done: true, value })),
  };
  return stream;
}

/**
 * The plain implementation (test/support/user-impl.ts) with the floor's server interceptor, and an
 * untraced connect client with its client interceptor, over `kind`; both record with `tracer`.
 */
export async function openFloorCalls(kind: PairTransport, tracer: Tracer): Promise<PairCalls> {
  const pair = await openUserPair(kind, createUserImpl(), {
    server: [floorServerInterceptor(tracer)],
    client: (baseUrl) => [floorClientInterceptor(tracer, baseUrl, kind === "h2c" ? "grpc" : "connectrpc")],
  });
  return { pair, calls: connectCalls(createClient(UserService, pair.transport)) };
}
