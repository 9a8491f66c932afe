import type { Context, Span, SpanContext, SpanOptions, Tracer, TracerProvider } from "@opentelemetry/api";
import { SpanKind, TraceFlags, trace } from "@opentelemetry/api";
import type { ReadableSpan } from "@opentelemetry/sdk-trace";
import { AlwaysOffSampler } from "@opentelemetry/sdk-trace";
import type { TracingOptions } from "connect-otel";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createTracedUserServiceClient, traceUserService } from "../generated/user/v1/user_otel.js";
import { ChatMessageSchema, UserResponseSchema, UserService } from "../generated/user/v1/user_pb.js";
import type { TestServer, Wire } from "./support/servers.js";
import { startServer, wires } from "./support/servers.js";
import { createSpanRecorder, spanOf } from "./support/span-recorder.js";
import { installTestTracing, waitFor } from "./support/tracing.js";
import type { Exchange, MethodCase } from "./support/user-calls.js";
import { collect, iterate, methodCasesFor, sizeOf } from "./support/user-calls.js";
import { createUserImpl } from "./support/user-impl.js";

// Per-message events: type, per-direction ids, serialized sizes, modes, cap, sampling.

installTestTracing();
const recorder = createSpanRecorder();

type ServerMode = "all" | "streaming" | "none" | "max2" | "legacy" | "dup";
const serverOptions: Record<ServerMode, TracingOptions> = {
  all: {},
  streaming: { messageEvents: "streaming" },
  none: { messageEvents: "none" },
  max2: { maxMessageEvents: 2 },
  legacy: { semconv: "legacy" },
  dup: { semconv: "dup" },
};

interface MessageEvent {
  readonly type: unknown;
  readonly id: unknown;
  readonly size: unknown;
}

/** The span's `rpc.message` events of one direction, in order. */
function eventsOf(span: ReadableSpan, type: "SENT" | "RECEIVED"): MessageEvent[] {
  return span.events
    .filter((e) => e.name === "rpc.message" && e.attributes?.["rpc.message.type"] === type)
    .map((e) => ({
      type: e.attributes?.["rpc.message.type"],
      id: e.attributes?.["rpc.message.id"],
      size: e.attributes?.["rpc.message.uncompressed_size"],
    }));
}

/** The events a span must have for `messages` of `schema` in one direction: ids from 1, exact sizes. */
function expected(type: "SENT" | "RECEIVED", schema: MethodCase["input"], messages: readonly unknown[]) {
  return messages.map((m, i) => ({ type, id: i + 1, size: sizeOf(schema, m) }));
}

function expectAllEvents(mc: MethodCase, exchange: Exchange, client: ReadableSpan, server: ReadableSpan): void {
  expect(eventsOf(client, "SENT")).toEqual(expected("SENT", mc.input, exchange.sent));
  expect(eventsOf(client, "RECEIVED")).toEqual(expected("RECEIVED", mc.output, exchange.received));
  expect(eventsOf(server, "RECEIVED")).toEqual(expected("RECEIVED", mc.input, exchange.sent));
  expect(eventsOf(server, "SENT")).toEqual(expected("SENT", mc.output, exchange.received));
  // nothing but message events on a successful call
  expect(client.events).toHaveLength(exchange.sent.length + exchange.received.length);
  expect(server.events).toHaveLength(exchange.sent.length + exchange.received.length);
}

describe.each(wires)("$name", (wire: Wire) => {
  const servers = new Map<ServerMode, TestServer>();
  const transportOf = (mode: ServerMode) => (servers.get(mode) as TestServer).transport();
  beforeAll(async () => {
    for (const [mode, options] of Object.entries(serverOptions) as [ServerMode, TracingOptions][]) {
      const server = await startServer(wire, (router) => {
        router.service(
          UserService,
          traceUserService(createUserImpl(), { tracerProvider: recorder.provider, ...options }),
        );
      });
      servers.set(mode, server);
    }
  });
  afterAll(async () => {
    for (const server of servers.values()) await server.close();
  });
  beforeEach(() => recorder.reset());
  afterEach(() => recorder.settle());

  describe.each(methodCasesFor(wire))("$method", (mc) => {
    it("records rpc.message events with per-direction ids and serialized sizes on both sides", async () => {
      const client = createTracedUserServiceClient(transportOf("all"), { tracerProvider: recorder.provider });
      const exchange = await mc.run(client);
      expect(exchange.sent).toHaveLength(mc.sentCount);
      expect(exchange.received).toHaveLength(mc.receivedCount);
      const clientSpan = await spanOf(recorder, mc.spanName, SpanKind.CLIENT);
      const serverSpan = await spanOf(recorder, mc.spanName, SpanKind.SERVER);
      expectAllEvents(mc, exchange, clientSpan, serverSpan);
    });

    it(`messageEvents "streaming": events ${mc.kind === "unary" ? "absent on unary" : "kept on streams"}`, async () => {
      const client = createTracedUserServiceClient(transportOf("streaming"), {
        tracerProvider: recorder.provider,
        messageEvents: "streaming",
      });
      const exchange = await mc.run(client);
      const clientSpan = await spanOf(recorder, mc.spanName, SpanKind.CLIENT);
      const serverSpan = await spanOf(recorder, mc.spanName, SpanKind.SERVER);
      if (mc.kind === "unary") {
        expect(clientSpan.events).toEqual([]);
        expect(serverSpan.events).toEqual([]);
      } else {
        expectAllEvents(mc, exchange, clientSpan, serverSpan);
      }
    });

    it(`messageEvents "none": no events${mc.kind === "unary" ? "" : ", message totals still counted"}`, async () => {
      const client = createTracedUserServiceClient(transportOf("none"), {
        tracerProvider: recorder.provider,
        messageEvents: "none",
      });
      await mc.run(client);
      const clientSpan = await spanOf(recorder, mc.spanName, SpanKind.CLIENT);
      const serverSpan = await spanOf(recorder, mc.spanName, SpanKind.SERVER);
      expect(clientSpan.events).toEqual([]);
      expect(serverSpan.events).toEqual([]);
      if (mc.kind !== "unary") {
        expect(clientSpan.attributes["connect_otel.messages.sent"]).toBe(mc.sentCount);
        expect(clientSpan.attributes["connect_otel.messages.received"]).toBe(mc.receivedCount);
        expect(serverSpan.attributes["connect_otel.messages.sent"]).toBe(mc.receivedCount);
        expect(serverSpan.attributes["connect_otel.messages.received"]).toBe(mc.sentCount);
      }
    });

    // Every mode has the same event: `rpc.message` with `rpc.message.*` is the shape of semconv
    // v1.26–v1.44 (the `message` event with `message.*` is older still, pre-v1.26).
    it.each<"legacy" | "dup">(["legacy", "dup"])(
      "%s: rpc.message events with rpc.message.* attributes",
      async (mode) => {
        const client = createTracedUserServiceClient(transportOf(mode), {
          tracerProvider: recorder.provider,
          semconv: mode,
        });
        const exchange = await mc.run(client);
        const clientSpan = await spanOf(recorder, mc.spanName, SpanKind.CLIENT);
        const serverSpan = await spanOf(recorder, mc.spanName, SpanKind.SERVER);
        expectAllEvents(mc, exchange, clientSpan, serverSpan);
        for (const span of [clientSpan, serverSpan]) {
          for (const e of span.events) {
            expect(Object.keys(e.attributes ?? {}).filter((k) => k.startsWith("message."))).toEqual([]);
          }
        }
      },
    );

    it("a sampled-out provider records nothing and the call still works", async () => {
      const off = createSpanRecorder({ sampler: new AlwaysOffSampler() });
      const server = await startServer(wire, (router) => {
        router.service(UserService, traceUserService(createUserImpl(), { tracerProvider: off.provider }));
      });
      try {
        const client = createTracedUserServiceClient(server.transport(), { tracerProvider: off.provider });
        const exchange = await mc.run(client);
        expect(exchange.sent).toHaveLength(mc.sentCount);
        expect(exchange.received).toHaveLength(mc.receivedCount);
        // the same answers as a recorded call
        const recorded = await mc.run(createTracedUserServiceClient(transportOf("all")));
        expect(exchange.received).toEqual(recorded.received);
        expect(off.spans()).toEqual([]);
        expect(off.openSpans()).toEqual([]);
      } finally {
        await server.close();
      }
    });
  });

  it.each(methodCasesFor(wire))(
    "$method: a non-recording span gets no events, attributes or status, ends once, still propagates",
    async (mc) => {
      const fake = createNonRecordingTracing();
      const server = await startServer(wire, (router) => {
        router.service(UserService, traceUserService(createUserImpl(), { tracerProvider: fake.provider }));
      });
      try {
        const client = createTracedUserServiceClient(server.transport(), { tracerProvider: fake.provider });
        const exchange = await mc.run(client);
        expect(exchange.received).toHaveLength(mc.receivedCount);
        await waitFor(() => fake.spans.length === 2 && fake.spans.every((s) => s.calls.end === 1));
        const [clientSpan, serverSpan] = fake.spans;
        for (const span of fake.spans) {
          expect(span.calls).toEqual({ end: 1 });
        }
        expect(clientSpan?.kind).toBe(SpanKind.CLIENT);
        expect(serverSpan?.kind).toBe(SpanKind.SERVER);
        // the unsampled context still travels: the server span's parent is the client span
        expect(serverSpan?.parent?.spanId).toBe(clientSpan?.context.spanId);
        expect(serverSpan?.parent?.traceFlags).toBe(TraceFlags.NONE);
      } finally {
        await server.close();
      }
    },
  );

  it("StreamUsers page_size 5: 5 RECEIVED on the client, 5 SENT on the server, totals on both", async () => {
    const client = createTracedUserServiceClient(transportOf("all"), { tracerProvider: recorder.provider });
    const users = await collect(client.streamUsers({ pageSize: 5 }));
    expect(users.map((u) => u.id)).toEqual([1, 2, 3, 4, 5]);
    const name = "user.v1.UserService/StreamUsers";
    const clientSpan = await spanOf(recorder, name, SpanKind.CLIENT);
    const serverSpan = await spanOf(recorder, name, SpanKind.SERVER);
    expect(eventsOf(clientSpan, "RECEIVED")).toEqual(expected("RECEIVED", UserResponseSchema, users));
    expect(eventsOf(serverSpan, "SENT")).toEqual(expected("SENT", UserResponseSchema, users));
    expect(eventsOf(clientSpan, "SENT")).toHaveLength(1);
    expect(eventsOf(serverSpan, "RECEIVED")).toHaveLength(1);
    expect(clientSpan.attributes["connect_otel.messages.sent"]).toBe(1);
    expect(clientSpan.attributes["connect_otel.messages.received"]).toBe(5);
    expect(serverSpan.attributes["connect_otel.messages.sent"]).toBe(5);
    expect(serverSpan.attributes["connect_otel.messages.received"]).toBe(1);
  });

  it("maxMessageEvents 2 caps the events of a server stream; totals count every message", async () => {
    const client = createTracedUserServiceClient(transportOf("max2"), {
      tracerProvider: recorder.provider,
      maxMessageEvents: 2,
    });
    const users = await collect(client.streamUsers({ pageSize: 5 }));
    expect(users).toHaveLength(5);
    const name = "user.v1.UserService/StreamUsers";
    const clientSpan = await spanOf(recorder, name, SpanKind.CLIENT);
    const serverSpan = await spanOf(recorder, name, SpanKind.SERVER);
    // the cap keeps the first two events: the request and the first response
    expect(eventsOf(clientSpan, "SENT").map((e) => e.id)).toEqual([1]);
    expect(eventsOf(clientSpan, "RECEIVED").map((e) => e.id)).toEqual([1]);
    expect(eventsOf(serverSpan, "RECEIVED").map((e) => e.id)).toEqual([1]);
    expect(eventsOf(serverSpan, "SENT").map((e) => e.id)).toEqual([1]);
    expect(clientSpan.attributes["connect_otel.messages.sent"]).toBe(1);
    expect(clientSpan.attributes["connect_otel.messages.received"]).toBe(5);
    expect(serverSpan.attributes["connect_otel.messages.sent"]).toBe(5);
    expect(serverSpan.attributes["connect_otel.messages.received"]).toBe(1);
  });

  it.runIf(wire.httpVersion === "2")("maxMessageEvents 2 on a 10-message Chat: 2 events, totals 10/10", async () => {
    const client = createTracedUserServiceClient(transportOf("max2"), {
      tracerProvider: recorder.provider,
      maxMessageEvents: 2,
    });
    const inits = Array.from({ length: 10 }, (_, i) => ({ user: "ada", message: `m${i}`, timestamp: BigInt(i) }));
    const replies = await collect(client.chat(iterate(inits)));
    expect(replies).toHaveLength(10);
    const name = "user.v1.UserService/Chat";
    for (const kind of [SpanKind.CLIENT, SpanKind.SERVER]) {
      const span = await spanOf(recorder, name, kind);
      expect(span.events.filter((e) => e.name === "rpc.message")).toHaveLength(2);
      expect(span.attributes["connect_otel.messages.sent"]).toBe(10);
      expect(span.attributes["connect_otel.messages.received"]).toBe(10);
    }
    // the first event on the client is the first message sent, with its exact size
    const clientSpan = await spanOf(recorder, name, SpanKind.CLIENT);
    expect(eventsOf(clientSpan, "SENT")[0]).toEqual({ type: "SENT", id: 1, size: sizeOf(ChatMessageSchema, inits[0]) });
  });

  it("maxMessageEvents 0 records no events", async () => {
    const client = createTracedUserServiceClient(transportOf("all"), {
      tracerProvider: recorder.provider,
      maxMessageEvents: 0,
    });
    await collect(client.streamUsers({ pageSize: 3 }));
    const clientSpan = await spanOf(recorder, "user.v1.UserService/StreamUsers", SpanKind.CLIENT);
    expect(clientSpan.events).toEqual([]);
    expect(clientSpan.attributes["connect_otel.messages.received"]).toBe(3);
  });
});

interface FakeSpan {
  readonly kind: SpanKind | undefined;
  readonly context: SpanContext;
  readonly parent: SpanContext | undefined;
  /** Calls of span methods other than spanContext() and isRecording(), by method name. */
  readonly calls: Record<string, number>;
}

/**
 * A tracer provider whose spans are not recording (as a sampled-out SDK span) but count every
 * method call, so a test sees work that the runtime should skip for them.
 */
function createNonRecordingTracing(): { provider: TracerProvider; spans: FakeSpan[] } {
  const spans: FakeSpan[] = [];
  let next = 1;
  const tracer = {
    startSpan(_name: string, options: SpanOptions | undefined, ctx: Context | undefined): Span {
      const parent = ctx ? trace.getSpanContext(ctx) : undefined;
      const context: SpanContext = {
        traceId: parent?.traceId ?? "1234567890abcdef1234567890abcdef",
        spanId: (next++).toString(16).padStart(16, "0"),
        traceFlags: TraceFlags.NONE,
      };
      const fake: FakeSpan = { kind: options?.kind, context, parent, calls: {} };
      spans.push(fake);
      const count = (method: string) => () => {
        fake.calls[method] = (fake.calls[method] ?? 0) + 1;
        return span;
      };
      const span = {
        spanContext: () => context,
        isRecording: () => false,
        setAttribute: count("setAttribute"),
        setAttributes: count("setAttributes"),
        addEvent: count("addEvent"),
        addLink: count("addLink"),
        addLinks: count("addLinks"),
        setStatus: count("setStatus"),
        updateName: count("updateName"),
        end: count("end"),
        recordException: count("recordException"),
      } as unknown as Span;
      return span;
    },
    startActiveSpan() {
      throw new Error("not used by the runtime");
    },
  } as unknown as Tracer;
  return { provider: { getTracer: () => tracer }, spans };
}
