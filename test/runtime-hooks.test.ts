import * as http2 from "node:http2";
import { create, toBinary } from "@bufbuild/protobuf";
import type { CallOptions, ServiceImpl } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import { encodeEnvelope } from "@connectrpc/connect/protocol";
import type { Span } from "@opentelemetry/api";
import { context, SpanKind, SpanStatusCode, TraceFlags, trace } from "@opentelemetry/api";
import type { ReadableSpan } from "@opentelemetry/sdk-trace";
import { AlwaysOffSampler, AlwaysOnSampler, ParentBasedSampler } from "@opentelemetry/sdk-trace";
import type { ServiceHooks } from "connect-otel";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createTracedUserServiceClient, traceUserService } from "../generated/user/v1/user_otel.js";
import {
  ChatMessageSchema,
  CreateUserRequestSchema,
  FetchUserRequestSchema,
  StreamUsersRequestSchema,
  UserResponseSchema,
  UserService,
} from "../generated/user/v1/user_pb.js";
import { grpcStatusNames, statusName } from "./support/semconv.js";
import type { TestServer, Wire } from "./support/servers.js";
import { startServer, wires } from "./support/servers.js";
import { aborted, createLatch, HANG_GUARD_MS, within } from "./support/signals.js";
import type { SpanRecorder } from "./support/span-recorder.js";
import { callSpans, createSpanRecorder, spanOf } from "./support/span-recorder.js";
import { installTestTracing } from "./support/tracing.js";
import type { Exchange, MethodCase, UserClient } from "./support/user-calls.js";
import { collect, errorOf, iterate, methodCasesFor } from "./support/user-calls.js";
import { createUserImpl, ERROR_BASE, THROW_TYPE_ERROR } from "./support/user-impl.js";

// Typed hooks (TracingOptions.hooks) on traced clients and services, for every method kind, over
// real sockets: which hook runs, with which span, message and direction, in which order and how
// often; what onError gets; that a throwing hook changes nothing but an exception event; that
// hooks stay silent for spans that do not record; and how the option is validated.

installTestTracing();
const recorder = createSpanRecorder();
/** Samples nothing: spans never record. */
const offRecorder = createSpanRecorder({ sampler: new AlwaysOffSampler() });
/** Samples roots, follows the parent's sampled flag otherwise (the SDK's default sampler). */
const parentRecorder = createSpanRecorder({ sampler: new ParentBasedSampler({ root: new AlwaysOnSampler() }) });

const FETCH_USER = "user.v1.UserService/FetchUser";

type Side = "client" | "server";
type HookName = "onRequest" | "onResponse" | "onMessage" | "onError";

/** One hook call, as the hooks below note it. */
interface HookCall {
  readonly side: Side;
  readonly method: string;
  readonly hook: HookName;
  readonly spanId: string;
  readonly recording: boolean;
  /** The message (onRequest, onResponse, onMessage) or the error (onError). */
  readonly arg: unknown;
  readonly direction?: string;
}

/** Every hook call of the current test, both sides, in call order. */
let calls: HookCall[] = [];
/** When true, every hook throws `<side> <hook> failed` after noting its call. */
let hooksThrow = false;
/** When set, every hook throws what this returns after noting its call (wins over {@link hooksThrow}). */
let hookThrows: ((side: Side, hook: HookName) => unknown) | undefined;

const hookError = (side: Side, hook: HookName) => `${side} ${hook} failed`;

/** Hooks for every method and hook kind of user.v1.UserService that note their calls in {@link calls}. */
function notingHooks(side: Side): ServiceHooks<typeof UserService> {
  const note = (method: string, hook: HookName, span: Span, arg: unknown, direction?: string) => {
    calls.push({
      side,
      method,
      hook,
      spanId: span.spanContext().spanId,
      recording: span.isRecording(),
      arg,
      ...(direction === undefined ? {} : { direction }),
    });
    if (hookThrows !== undefined) throw hookThrows(side, hook);
    if (hooksThrow) throw new Error(hookError(side, hook));
  };
  const forMethod = (method: string) => ({
    onRequest: (span: Span, request: unknown) => note(method, "onRequest", span, request),
    onResponse: (span: Span, response: unknown) => note(method, "onResponse", span, response),
    onMessage: (span: Span, message: unknown, direction: string) => note(method, "onMessage", span, message, direction),
    onError: (span: Span, error: ConnectError) => note(method, "onError", span, error),
  });
  return {
    fetchUser: forMethod("fetchUser"),
    streamUsers: forMethod("streamUsers"),
    createUsers: forMethod("createUsers"),
    chat: forMethod("chat"),
  } as ServiceHooks<typeof UserService>;
}

/** FetchUser holds this user id until the client goes away, opening {@link held} when it starts. */
const HOLD_USER = 4242;
let held = createLatch();
/** A CreateUsers name and a Chat message the handlers answer with NOT_FOUND. */
const MISSING = "missing";
/** FetchUser throws a `TimeoutError` DOMException for this user id, as a timed-out `fetch` does. */
const UPSTREAM_TIMEOUT = 4343;

/** `createUserImpl()` plus failures on demand for every method kind, and a FetchUser that holds. */
function createHookedUserImpl(): ServiceImpl<typeof UserService> {
  const base = createUserImpl();
  return {
    ...base,
    async fetchUser(req, ctx) {
      if (req.userId === UPSTREAM_TIMEOUT) throw new DOMException("upstream timed out", "TimeoutError");
      if (req.userId !== HOLD_USER) return base.fetchUser(req, ctx);
      held.open();
      await aborted(ctx.signal);
      throw ctx.signal.reason;
    },
    async createUsers(reqs) {
      let count = 0;
      for await (const req of reqs) {
        if (req.name === MISSING) throw new ConnectError("no such team", Code.NotFound);
        count++;
      }
      return { count };
    },
    async *chat(reqs) {
      for await (const m of reqs) {
        if (m.message === MISSING) throw new ConnectError("no such room", Code.NotFound);
        yield { user: "server", message: `echo ${m.message}`, timestamp: m.timestamp };
      }
    },
  };
}

/** The calls of one side, without the side, span and recording flag: what the hook got. */
function seenBy(side: Side): { method: string; hook: HookName; arg: unknown; direction?: string }[] {
  return calls
    .filter((c) => c.side === side)
    .map(({ method, hook, arg, direction }) => ({ method, hook, arg, ...(direction ? { direction } : {}) }));
}

const localName = (mc: MethodCase) => mc.method.charAt(0).toLowerCase() + mc.method.slice(1);

/**
 * The hook calls one side must see for `mc`'s standard call, in order (the same on both sides):
 * the single request to onRequest, the single response to onResponse, streamed messages to
 * onMessage. A bidi call's two directions interleave as the network has it: see {@link byDirection}.
 */
function expectedCalls(mc: MethodCase, exchange: Exchange) {
  const method = localName(mc);
  const req = (arg: unknown) => ({ method, hook: "onRequest" as const, arg });
  const res = (arg: unknown) => ({ method, hook: "onResponse" as const, arg });
  const msg = (direction: string) => (arg: unknown) => ({ method, hook: "onMessage" as const, arg, direction });
  switch (mc.kind) {
    case "unary":
      return [req(exchange.sent[0]), res(exchange.received[0])];
    case "server_streaming":
      return [req(exchange.sent[0]), ...exchange.received.map(msg("response"))];
    case "client_streaming":
      return [...exchange.sent.map(msg("request")), res(exchange.received[0])];
    case "bidi_streaming":
      return [...exchange.sent.map(msg("request")), ...exchange.received.map(msg("response"))];
  }
}

/** Bidi calls: the request-direction calls first, then the response-direction calls, each in order. */
function byDirection<T extends { direction?: string }>(list: readonly T[]): T[] {
  return [...list.filter((c) => c.direction === "request"), ...list.filter((c) => c.direction !== "request")];
}

/** Messages of the `exception` events of a span, in order. */
function exceptionMessages(span: ReadableSpan): unknown[] {
  return span.events.filter((e) => e.name === "exception").map((e) => e.attributes?.["exception.message"]);
}

/** A failing call of one method kind, and the hook calls it makes on each side. */
interface FailureCase {
  readonly method: MethodCase["method"];
  readonly kind: MethodCase["kind"];
  readonly code: Code;
  readonly rawMessage: string;
  run(client: UserClient): Promise<unknown>;
  /** What both sides' hooks see, in order, given the error (the same ConnectError on the client). */
  readonly expected: (error: unknown) => { method: string; hook: HookName; arg: unknown; direction?: string }[];
}

const failureCases: readonly FailureCase[] = [
  {
    method: "FetchUser",
    kind: "unary",
    code: Code.NotFound,
    rawMessage: `failure ${Code.NotFound}`,
    run: (client) => client.fetchUser({ userId: ERROR_BASE + Code.NotFound }),
    expected: (error) => [
      {
        method: "fetchUser",
        hook: "onRequest",
        arg: create(FetchUserRequestSchema, { userId: ERROR_BASE + Code.NotFound }),
      },
      { method: "fetchUser", hook: "onError", arg: error },
    ],
  },
  {
    method: "StreamUsers",
    kind: "server_streaming",
    code: Code.Internal,
    rawMessage: "stream broke",
    run: (client) => collect(client.streamUsers({ pageSize: -1 })),
    expected: (error) => [
      { method: "streamUsers", hook: "onRequest", arg: create(StreamUsersRequestSchema, { pageSize: -1 }) },
      {
        method: "streamUsers",
        hook: "onMessage",
        arg: create(UserResponseSchema, { id: 1, name: "user-1" }),
        direction: "response",
      },
      { method: "streamUsers", hook: "onError", arg: error },
    ],
  },
  {
    method: "CreateUsers",
    kind: "client_streaming",
    code: Code.NotFound,
    rawMessage: "no such team",
    run: (client) => client.createUsers(iterate([{ name: MISSING }])),
    expected: (error) => [
      {
        method: "createUsers",
        hook: "onMessage",
        arg: create(CreateUserRequestSchema, { name: MISSING }),
        direction: "request",
      },
      { method: "createUsers", hook: "onError", arg: error },
    ],
  },
  {
    method: "Chat",
    kind: "bidi_streaming",
    code: Code.NotFound,
    rawMessage: "no such room",
    run: (client) => collect(client.chat(iterate([{ message: MISSING }]))),
    expected: (error) => [
      { method: "chat", hook: "onMessage", arg: create(ChatMessageSchema, { message: MISSING }), direction: "request" },
      { method: "chat", hook: "onError", arg: error },
    ],
  },
];

const failureCasesFor = (wire: Wire) =>
  wire.httpVersion === "2" ? failureCases : failureCases.filter((fc) => fc.kind !== "bidi_streaming");

/** Matches an error with this code and raw message: the server's error, which the test never holds. */
function connectErrorLike(code: Code, rawMessage: string) {
  return expect.objectContaining({ code, rawMessage });
}

describe.each(wires)("$name", (wire) => {
  /** Traced with noting hooks, on the test recorder. */
  let hooked: TestServer;
  /** Traced without hooks, on the test recorder: what a call answers when no hook runs. */
  let bare: TestServer;
  /** Traced with noting hooks on the sampled-out provider. */
  let off: TestServer;
  /** Traced with noting hooks on the parent-based provider. */
  let parentBased: TestServer;
  const serve = (provider: SpanRecorder["provider"], withHooks: boolean) =>
    startServer(wire, (router) => {
      router.service(
        UserService,
        traceUserService(createHookedUserImpl(), {
          tracerProvider: provider,
          ...(withHooks ? { hooks: notingHooks("server") } : {}),
        }),
      );
    });
  beforeAll(async () => {
    hooked = await serve(recorder.provider, true);
    bare = await serve(recorder.provider, false);
    off = await serve(offRecorder.provider, true);
    parentBased = await serve(parentRecorder.provider, true);
  });
  afterAll(async () => {
    for (const server of [hooked, bare, off, parentBased]) await server.close();
  });
  beforeEach(() => {
    for (const r of [recorder, offRecorder, parentRecorder]) r.reset();
    calls = [];
    hooksThrow = false;
    hookThrows = undefined;
    held = createLatch();
  });
  afterEach(async () => {
    for (const r of [recorder, offRecorder, parentRecorder]) await r.settle();
  });

  const hookedClient = (to: TestServer = hooked, provider = recorder.provider) =>
    createTracedUserServiceClient(to.transport(), { tracerProvider: provider, hooks: notingHooks("client") });
  const bareClient = () => createTracedUserServiceClient(bare.transport(), { tracerProvider: recorder.provider });

  const spansOf = (name: string): Promise<Record<Side, ReadableSpan>> => callSpans(recorder, name);

  /** Every call of `side` was made with that side's span of the call, while it recorded. */
  function expectSpanOfCall(side: Side, span: ReadableSpan): void {
    const ofSide = calls.filter((c) => c.side === side);
    expect(ofSide.length).toBeGreaterThan(0);
    for (const c of ofSide) {
      expect(c.spanId).toBe(span.spanContext().spanId);
      expect(c.recording).toBe(true);
    }
  }

  describe.each(methodCasesFor(wire))("$method", (mc) => {
    it("each hook gets the call's span, each message and its direction, in order, once per message", async () => {
      const exchange = await mc.run(hookedClient());
      const spans = await spansOf(mc.spanName);
      await recorder.settle();
      const expected = expectedCalls(mc, exchange);
      for (const side of ["client", "server"] as const) {
        const seen = seenBy(side);
        expect(mc.kind === "bidi_streaming" ? byDirection(seen) : seen).toEqual(expected);
        expectSpanOfCall(side, spans[side]);
      }
    });

    it("hooks that all throw: same answers as without hooks, an exception event per hook call", async () => {
      const withoutHooks = await mc.run(bareClient());
      recorder.reset();
      hooksThrow = true;
      const withHooks = await mc.run(hookedClient());
      expect(withHooks.received).toEqual(withoutHooks.received);
      const spans = await spansOf(mc.spanName);
      await recorder.settle();
      expect(calls).toHaveLength(2 * (mc.sentCount + mc.receivedCount));
      for (const side of ["client", "server"] as const) {
        const span = spans[side];
        expect(exceptionMessages(span)).toEqual(
          calls.filter((c) => c.side === side).map((c) => hookError(side, c.hook)),
        );
        // the span itself is that of a successful call
        expect(span.status.code).toBe(SpanStatusCode.UNSET);
        expect(span.attributes["rpc.status_code"]).toBe(statusName(wire, 0));
        expect(span.attributes).not.toHaveProperty(["error.type"]);
      }
    });

    it("a sampled-out provider (AlwaysOff): no hook runs, on either side", async () => {
      const exchange = await mc.run(hookedClient(off, offRecorder.provider));
      expect(exchange.received).toHaveLength(mc.receivedCount);
      expect(calls).toEqual([]);
      expect(offRecorder.spans()).toEqual([]);
    });

    it("parent-based sampling: hooks run under no parent (control), none under a sampled-out parent", async () => {
      const client = hookedClient(parentBased, parentRecorder.provider);
      await mc.run(client);
      expect(calls.filter((c) => c.side === "client").length).toBeGreaterThan(0);
      await spanOf(parentRecorder, mc.spanName, SpanKind.SERVER);
      expect(calls.filter((c) => c.side === "server").length).toBeGreaterThan(0);
      await parentRecorder.settle();
      parentRecorder.reset();
      calls = [];
      const unsampled = trace.setSpanContext(context.active(), {
        traceId: "5f5fa2b0b3b6d8b7b1c8e3a4d2f10c9e",
        spanId: "1d2c3b4a59687766",
        traceFlags: TraceFlags.NONE,
      });
      const exchange = await context.with(unsampled, () => mc.run(client));
      expect(exchange.received).toHaveLength(mc.receivedCount);
      expect(calls).toEqual([]);
      expect(parentRecorder.spans()).toEqual([]);
    });
  });

  describe.each(failureCasesFor(wire))("$method fails", (fc) => {
    const spanName = `user.v1.UserService/${fc.method}`;

    it("onError gets the ConnectError with the call's code, after the message hooks, on both sides", async () => {
      const error = await errorOf(fc.run(hookedClient()));
      expect(error.code).toBe(fc.code);
      expect(error.rawMessage).toBe(fc.rawMessage);
      const spans = await spansOf(spanName);
      await recorder.settle();
      // the client's onError gets the very error the caller gets
      expect(seenBy("client")).toEqual(fc.expected(error));
      expect(calls.find((c) => c.side === "client" && c.hook === "onError")?.arg).toBe(error);
      // the server's onError gets the error the handler threw
      const serverSeen = seenBy("server");
      expect(serverSeen).toEqual(fc.expected(connectErrorLike(fc.code, fc.rawMessage)));
      expect(serverSeen.at(-1)?.arg).toBeInstanceOf(ConnectError);
      expectSpanOfCall("client", spans.client);
      expectSpanOfCall("server", spans.server);
    });

    it("hooks that all throw: the same error as without hooks, exception events of the hooks", async () => {
      const withoutHooks = await errorOf(fc.run(bareClient()));
      const bareSpans = await spansOf(spanName);
      await recorder.settle();
      recorder.reset();
      hooksThrow = true;
      const withHooks = await errorOf(fc.run(hookedClient()));
      expect({ code: withHooks.code, message: withHooks.rawMessage }).toEqual({
        code: withoutHooks.code,
        message: withoutHooks.rawMessage,
      });
      expect(withHooks.cause).toEqual(withoutHooks.cause);
      const spans = await spansOf(spanName);
      await recorder.settle();
      for (const side of ["client", "server"] as const) {
        const hookMessages = calls.filter((c) => c.side === side).map((c) => hookError(side, c.hook));
        expect(hookMessages.at(-1)).toBe(hookError(side, "onError"));
        // the hooks' exceptions, then the call's own (recorded when the span ends, if it is an error)
        expect(exceptionMessages(spans[side])).toEqual([...hookMessages, ...exceptionMessages(bareSpans[side])]);
        expect(spans[side].status).toEqual(bareSpans[side].status);
        expect(spans[side].attributes["rpc.status_code"]).toBe(statusName(wire, fc.code));
      }
    });

    it("a sampled-out provider (AlwaysOff): no onError, on either side", async () => {
      const error = await errorOf(fc.run(hookedClient(off, offRecorder.provider)));
      expect(error.code).toBe(fc.code);
      expect(calls).toEqual([]);
    });
  });

  it("a hook's exception event has exactly the thrown value's type, message and stack, never a code as type", async () => {
    // span.recordException would take exception.type from a ConnectError's code ("7", "5")
    const thrown: { side: Side; value: unknown }[] = [];
    const thrownBy = (side: Side) => thrown.filter((t) => t.side === side).map((t) => t.value);
    hookThrows = (side, hook) => {
      const value =
        hook === "onRequest"
          ? new ConnectError(`${side} hook refused`, Code.PermissionDenied)
          : hook === "onResponse"
            ? new TypeError(`${side} hook broke`)
            : `${side} ${hook} threw a string`;
      thrown.push({ side, value });
      return value;
    };
    const expected = (value: unknown) =>
      value instanceof Error
        ? {
            "exception.type": value instanceof ConnectError ? "ConnectError" : "TypeError",
            "exception.message": value.message,
            "exception.stacktrace": value.stack,
          }
        : { "exception.type": "string", "exception.message": value };
    const exceptionAttributes = (span: ReadableSpan) =>
      span.events.filter((e) => e.name === "exception").map((e) => e.attributes);

    await hookedClient().fetchUser({ userId: 7 });
    let spans = await spansOf(FETCH_USER);
    await recorder.settle();
    for (const side of ["client", "server"] as const) {
      const own = thrownBy(side);
      expect(own.map((v) => (v instanceof Error ? v.name : typeof v))).toEqual(["ConnectError", "TypeError"]);
      expect(exceptionAttributes(spans[side])).toEqual(own.map(expected));
      expect(exceptionAttributes(spans[side])[0]).toMatchObject({
        "exception.message": `[permission_denied] ${side} hook refused`,
      });
    }

    recorder.reset();
    thrown.length = 0;
    const error = await errorOf(hookedClient().fetchUser({ userId: ERROR_BASE + Code.NotFound }));
    expect(error.code).toBe(Code.NotFound);
    spans = await spansOf(FETCH_USER);
    await recorder.settle();
    for (const side of ["client", "server"] as const) {
      const own = thrownBy(side);
      expect(own.at(-1)).toBe(`${side} onError threw a string`);
      // the hooks' exceptions, then the call's own NOT_FOUND on the client (not a server error)
      const events = exceptionAttributes(spans[side]);
      expect(events.slice(0, own.length)).toEqual(own.map(expected));
      expect(events.slice(own.length).map((a) => a?.["exception.type"])).toEqual(
        side === "client" ? ["ConnectError"] : [],
      );
    }
  });

  it("a handler that throws a plain Error: the server's onError gets INTERNAL with the error as cause", async () => {
    const error = await errorOf(hookedClient().fetchUser({ userId: THROW_TYPE_ERROR }));
    expect(error.code).toBe(Code.Internal);
    await spansOf(FETCH_USER);
    await recorder.settle();
    const onError = (side: Side) => calls.filter((c) => c.side === side && c.hook === "onError");
    expect(onError("client").map((c) => c.arg)).toEqual([error]);
    const [serverCall] = onError("server");
    expect(onError("server")).toHaveLength(1);
    const serverError = serverCall?.arg as ConnectError;
    expect(serverError).toBeInstanceOf(ConnectError);
    expect(serverError.code).toBe(Code.Internal);
    expect(serverError.cause).toBeInstanceOf(TypeError);
    expect((serverError.cause as Error).message).toBe("plain failure");
  });

  it("a handler that throws a TimeoutError: the server's onError gets INTERNAL, as connect answers", async () => {
    // ConnectError.from would make it CANCELLED; connect sends INTERNAL and the span records INTERNAL
    const error = await errorOf(hookedClient().fetchUser({ userId: UPSTREAM_TIMEOUT }));
    expect(error.code).toBe(Code.Internal);
    const spans = await spansOf(FETCH_USER);
    await recorder.settle();
    expect(spans.server.attributes["rpc.status_code"]).toBe(statusName(wire, Code.Internal));
    const serverError = calls.find((c) => c.side === "server" && c.hook === "onError")?.arg as ConnectError;
    expect(serverError).toBeInstanceOf(ConnectError);
    expect(serverError.code).toBe(Code.Internal);
    expect(serverError.rawMessage).toBe("upstream timed out");
    expect(serverError.cause).toBeInstanceOf(DOMException);
    expect((serverError.cause as DOMException).name).toBe("TimeoutError");
  });

  it.runIf(wire.httpVersion === "2")(
    "a client that resets its HTTP/2 stream with INTERNAL_ERROR: the server's onError gets CANCELLED, as its span",
    async () => {
      // connect's clients reset with CANCEL; other clients (or proxies) may send any code, which
      // connect-node turns into the abort reason (INTERNAL here): the span records CANCELLED
      const session = http2.connect(hooked.baseUrl);
      try {
        const stream = session.request({
          ":method": "POST",
          ":path": `/${FETCH_USER}`,
          "content-type": "application/grpc+proto",
          te: "trailers",
        });
        stream.on("error", () => {});
        const request = create(FetchUserRequestSchema, { userId: HOLD_USER });
        stream.end(encodeEnvelope(0, toBinary(FetchUserRequestSchema, request)));
        await within(held.opened, HANG_GUARD_MS, "handler start");
        stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
        const span = await spanOf(recorder, FETCH_USER, SpanKind.SERVER);
        // a gRPC request, whatever the wire: gRPC status names
        expect(span.attributes["rpc.status_code"]).toBe(grpcStatusNames[Code.Canceled]);
        const seen = seenBy("server");
        expect(seen.map((c) => c.hook)).toEqual(["onRequest", "onError"]);
        expect(seen[0]?.arg).toEqual(request);
        const error = seen[1]?.arg as ConnectError;
        expect(error).toBeInstanceOf(ConnectError);
        expect(error.code).toBe(Code.Canceled);
        // the transport's reason stays reachable
        expect(error.cause).toBeInstanceOf(ConnectError);
        expect((error.cause as ConnectError).code).toBe(Code.Internal);
        expectSpanOfCall("server", span);
      } finally {
        session.destroy();
      }
    },
  );

  it("a client that cancels a unary call: onError with CANCELLED on the client and on the server", async () => {
    const controller = new AbortController();
    const options: CallOptions = { signal: controller.signal };
    const pending = errorOf(hookedClient().fetchUser({ userId: HOLD_USER }, options));
    await within(held.opened, HANG_GUARD_MS, "handler start");
    controller.abort();
    const error = await pending;
    expect(error.code).toBe(Code.Canceled);
    const spans = await spansOf(FETCH_USER);
    await recorder.settle();
    const request = create(FetchUserRequestSchema, { userId: HOLD_USER });
    expect(seenBy("client")).toEqual([
      { method: "fetchUser", hook: "onRequest", arg: request },
      { method: "fetchUser", hook: "onError", arg: error },
    ]);
    const serverSeen = seenBy("server");
    expect(serverSeen).toEqual([
      { method: "fetchUser", hook: "onRequest", arg: request },
      { method: "fetchUser", hook: "onError", arg: expect.any(ConnectError) },
    ]);
    // the code the server span ends with, whatever reason the transport gave for the abort
    expect(serverSeen[1]?.arg).toMatchObject({ code: Code.Canceled });
    expect(spans.server.attributes["rpc.status_code"]).toBe(statusName(wire, Code.Canceled));
    expectSpanOfCall("client", spans.client);
    expectSpanOfCall("server", spans.server);
  });

  it("a consumer that stops reading a response stream: onError with CANCELLED on the client", async () => {
    const client = hookedClient();
    for await (const _ of client.streamUsers({ pageSize: 3 })) break;
    const span = await spanOf(recorder, "user.v1.UserService/StreamUsers", SpanKind.CLIENT);
    const clientSeen = seenBy("client");
    expect(clientSeen.map((c) => c.hook)).toEqual(["onRequest", "onMessage", "onError"]);
    expect(clientSeen[2]?.arg).toBeInstanceOf(ConnectError);
    expect(clientSeen[2]?.arg).toMatchObject({ code: Code.Canceled });
    expectSpanOfCall("client", span);
  });
});

describe("hooks option validation", () => {
  // a client only uses its transport when it calls: creation is checked without one
  const factories = {
    client: (hooks: unknown) =>
      createTracedUserServiceClient({} as never, {
        hooks: hooks as ServiceHooks<typeof UserService>,
        tracerProvider: recorder.provider,
      }),
    service: (hooks: unknown) =>
      traceUserService(createUserImpl(), {
        hooks: hooks as ServiceHooks<typeof UserService>,
        tracerProvider: recorder.provider,
      }),
  };
  const invalid: readonly [string, unknown, RegExp][] = [
    ["a method the service lacks", { fetchUsers: { onRequest() {} } }, /hooks names fetchUsers.*user\.v1\.UserService/],
    ["a hook that is not a function", { fetchUser: { onRequest: "log" } }, /hooks\.fetchUser\.onRequest/],
    ["a hook name that does not exist", { chat: { onMesage() {} } }, /hooks\.chat\.onMesage/],
    ["method hooks that are not an object", { fetchUser: 42 }, /option hooks\.fetchUser must be an object/],
    ["method hooks that are null", { streamUsers: null }, /option hooks\.streamUsers must be an object/],
    ["hooks that are not an object", "fetchUser", /option hooks must be an object/],
  ];
  describe.each(Object.entries(factories))("%s", (_name, make) => {
    it.each(invalid)("%s: TypeError naming it", (_what, hooks, message) => {
      expect(() => make(hooks)).toThrow(TypeError);
      expect(() => make(hooks)).toThrow(message);
    });

    it("absent hooks and absent entries are fine", () => {
      expect(() => make({ fetchUser: undefined, chat: { onMessage: undefined } })).not.toThrow();
      expect(() => make({})).not.toThrow();
      expect(() => make(undefined)).not.toThrow();
    });
  });
});
