import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { createClient } from "@connectrpc/connect";
import type { BaggageEntry, SpanContext } from "@opentelemetry/api";
import { context, propagation, SpanKind, trace } from "@opentelemetry/api";
import type { ReadableSpan } from "@opentelemetry/sdk-trace";
import type { TracedServiceOptions } from "connect-otel";
import { TRACE_RESPONSE_HEADER } from "connect-otel";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createTracedHealthClient, traceHealth } from "../generated/grpc/health/v1/health_otel.js";
import { Health, HealthCheckResponse_ServingStatus } from "../generated/grpc/health/v1/health_pb.js";
import { createTracedUserServiceClient, traceUserService } from "../generated/user/v1/user_otel.js";
import { UserService } from "../generated/user/v1/user_pb.js";
import { startPaymentPeer } from "./support/payment-server.js";
import type { TestServer, Wire } from "./support/servers.js";
import { startServer, wires } from "./support/servers.js";
import { callSpans, createSpanRecorder, spanOf } from "./support/span-recorder.js";
import { installTestTracing, isChildOf, waitFor } from "./support/tracing.js";
import type { MethodCase } from "./support/user-calls.js";
import { methodCasesFor, withParent } from "./support/user-calls.js";
import { createProbedUserImpl, createUserImpl } from "./support/user-impl.js";

// Server-only options over real sockets: publicEndpoint makes the server span a new root linked to
// the caller's span and drops the caller's baggage; traceResponse names the server span in a
// `traceresponse` response header.

installTestTracing();
const recorder = createSpanRecorder();
const GET_BALANCE = "payment.v1.PaymentService/GetBalance";
/** Request header that makes the predicate server treat a call as internal (not public). */
const INTERNAL = "x-internal";
/** Request header that makes a handler call PaymentService.GetBalance before it answers. */
const NESTED = "x-nested";
/** The baggage the caller sends: `baggage: tenant=acme`. */
const BAGGAGE_KEY = "tenant";
const BAGGAGE_VALUE = "acme";

/** What a handler saw when it started. */
interface Seen {
  readonly spanContext: SpanContext | undefined;
  readonly baggage: [string, BaggageEntry][] | undefined;
}

/** What the handlers of the current test saw, one entry per call. */
const seen: Seen[] = [];

/**
 * A UserService whose four handlers first record the active span context and baggage in `seen`
 * and, for a request with the {@link NESTED} header, make a traced GetBalance call; then answer as
 * `createUserImpl()`.
 */
function probedImpl(nested: () => Promise<void>): ServiceImpl<typeof UserService> {
  const probe = async (ctx: HandlerContext) => {
    seen.push({
      spanContext: trace.getActiveSpan()?.spanContext(),
      baggage: propagation.getActiveBaggage()?.getAllEntries(),
    });
    if (ctx.requestHeader.has(NESTED)) await nested();
  };
  return createProbedUserImpl((_method, ctx) => probe(ctx));
}

/** grpc.health.v1.Health, untraced by the default filter, that notes what its handlers see in `seen`. */
const healthImpl: ServiceImpl<typeof Health> = {
  async check() {
    seen.push({
      spanContext: trace.getActiveSpan()?.spanContext(),
      baggage: propagation.getActiveBaggage()?.getAllEntries(),
    });
    return { status: HealthCheckResponse_ServingStatus.SERVING };
  },
  async *watch() {
    yield { status: HealthCheckResponse_ServingStatus.SERVING };
  },
};

/** Runs `fn` with the caller's baggage ({@link BAGGAGE_KEY}) and an active test parent span. */
function withBaggageAndParent<T>(fn: () => Promise<T>): Promise<T> {
  const baggage = propagation.createBaggage({ [BAGGAGE_KEY]: { value: BAGGAGE_VALUE } });
  return context.with(propagation.setBaggage(context.active(), baggage), () => withParent(recorder.tracer, fn));
}

/** The server options of each server a wire gets, by name. */
const serverOptions = {
  plain: {},
  public: { publicEndpoint: true },
  predicate: { publicEndpoint: (ctx: HandlerContext) => !ctx.requestHeader.has(INTERNAL) },
  throwing: {
    publicEndpoint: () => {
      throw new Error("predicate failed");
    },
  },
  traceResponse: { traceResponse: true },
  publicTraceResponse: { publicEndpoint: true, traceResponse: true },
  traceResponseOff: { traceResponse: false },
} satisfies Record<string, TracedServiceOptions<typeof UserService>>;
type ServerName = keyof typeof serverOptions;

/** Client and server span of the call of `mc`. */
const spansOf = (mc: MethodCase) => callSpans(recorder, mc.spanName);

/** Asserts that `server` is a new root span with exactly one link, to `client`'s span context. */
function expectLinkedRoot(server: ReadableSpan, client: ReadableSpan): void {
  const callerContext = client.spanContext();
  expect(server.parentSpanContext).toBeUndefined();
  expect(server.spanContext().traceId).not.toBe(callerContext.traceId);
  expect(server.spanContext().traceId).toMatch(/^[0-9a-f]{32}$/);
  expect(server.links).toHaveLength(1);
  const link = server.links[0];
  expect(link?.context.traceId).toBe(callerContext.traceId);
  expect(link?.context.spanId).toBe(callerContext.spanId);
  expect(link?.context.traceFlags).toBe(callerContext.traceFlags);
  expect(link?.context.isRemote).toBe(true);
}

/** Asserts that the one handler call of the test saw `server` active and no baggage. */
function expectHandlerSawRoot(server: ReadableSpan): void {
  expect(seen).toHaveLength(1);
  expect(seen[0]?.spanContext?.spanId).toBe(server.spanContext().spanId);
  expect(seen[0]?.spanContext?.traceId).toBe(server.spanContext().traceId);
  expect(seen[0]?.baggage).toBeUndefined();
}

/** Asserts that the one handler call of the test saw `server` active and the caller's baggage. */
function expectHandlerSawChild(server: ReadableSpan): void {
  expect(seen).toHaveLength(1);
  expect(seen[0]?.spanContext?.spanId).toBe(server.spanContext().spanId);
  expect(seen[0]?.baggage).toEqual([[BAGGAGE_KEY, { value: BAGGAGE_VALUE }]]);
}

/** The `traceresponse` value naming `server` (W3C Trace Context Level 2); asserts it was sampled. */
function expectedTraceResponse(server: ReadableSpan): string {
  const sc = server.spanContext();
  expect(sc.traceFlags).toBe(1);
  return `00-${sc.traceId}-${sc.spanId}-01`;
}

describe.each(wires)("$name", (wire: Wire) => {
  const servers = new Map<ServerName, TestServer>();
  const serverOf = (name: ServerName) => servers.get(name) as TestServer;
  let payments: TestServer;
  beforeAll(async () => {
    const peer = await startPaymentPeer(wire, recorder.provider);
    payments = peer.server;
    const payment = peer.client;
    const nested = async () => {
      const balance = await payment.getBalance({ userId: 4 });
      expect(balance.amount).toBe(40);
    };
    for (const [name, options] of Object.entries(serverOptions)) {
      const server = await startServer(wire, (router) => {
        router.service(
          UserService,
          traceUserService(probedImpl(nested), { tracerProvider: recorder.provider, ...options }),
        );
        router.service(Health, traceHealth(healthImpl, { tracerProvider: recorder.provider, ...options }));
      });
      servers.set(name as ServerName, server);
    }
  });
  afterAll(async () => {
    for (const server of servers.values()) await server.close();
    await payments.close();
  });
  beforeEach(() => {
    recorder.reset();
    seen.length = 0;
  });
  afterEach(() => recorder.settle());

  const tracedClient = (name: ServerName) =>
    createTracedUserServiceClient(serverOf(name).transport(), { tracerProvider: recorder.provider });

  describe("an untraced call (Health/Check, left out by the default filter)", () => {
    const check = (name: ServerName) =>
      withBaggageAndParent(async () => {
        const health = createTracedHealthClient(serverOf(name).transport(), { tracerProvider: recorder.provider });
        await health.check({ service: "" });
        return trace.getActiveSpan()?.spanContext() as SpanContext;
      });

    it("without publicEndpoint runs in the caller's context, baggage included", async () => {
      const parent = await check("plain");
      expect(recorder.spans().map((s) => s.name)).toEqual(["test parent"]);
      expect(seen).toHaveLength(1);
      expect(seen[0]?.spanContext?.traceId).toBe(parent.traceId);
      expect(seen[0]?.spanContext?.spanId).toBe(parent.spanId);
      expect(seen[0]?.baggage).toEqual([[BAGGAGE_KEY, { value: BAGGAGE_VALUE }]]);
    });

    it.each<ServerName>(["public", "predicate"])(
      "on a public endpoint (%s) runs without the caller's trace context and baggage",
      async (name) => {
        await check(name);
        expect(recorder.spans().map((s) => s.name)).toEqual(["test parent"]);
        expect(seen).toEqual([{ spanContext: undefined, baggage: undefined }]);
      },
    );
  });

  it("publicEndpoint: the caller cannot choose the sampling decision (traceparent flags 00)", async () => {
    const unsampled = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00";
    const call = (name: ServerName) =>
      createClient(UserService, serverOf(name).transport()).fetchUser(
        { userId: 1 },
        { headers: { traceparent: unsampled } },
      );
    await call("plain");
    expect(recorder.spans()).toEqual([]); // the parent-based sampler follows the caller's decision
    await call("public");
    const server = await spanOf(recorder, "user.v1.UserService/FetchUser", SpanKind.SERVER);
    expect(server.parentSpanContext).toBeUndefined();
    expect(server.spanContext().traceId).not.toBe("0af7651916cd43dd8448eb211c80319c");
    expect(server.links.map((l) => [l.context.traceId, l.context.spanId, l.context.traceFlags])).toEqual([
      ["0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331", 0],
    ]);
  });

  describe.each(methodCasesFor(wire))("$method", (mc) => {
    it("without publicEndpoint the server span is the client span's child and sees the baggage", async () => {
      await withBaggageAndParent(() => mc.run(tracedClient("plain")));
      const { client, server } = await spansOf(mc);
      expect(isChildOf(server, client)).toBe(true);
      expect(server.links).toEqual([]);
      expectHandlerSawChild(server);
    });

    it("publicEndpoint true: a root span in a new trace, linked to the client span, without baggage", async () => {
      await withBaggageAndParent(() => mc.run(tracedClient("public")));
      const { client, server } = await spansOf(mc);
      expectLinkedRoot(server, client);
      expectHandlerSawRoot(server);
    });

    it("publicEndpoint predicate: public without the x-internal header", async () => {
      await withBaggageAndParent(() => mc.run(tracedClient("predicate")));
      const { client, server } = await spansOf(mc);
      expectLinkedRoot(server, client);
      expectHandlerSawRoot(server);
    });

    it("publicEndpoint predicate: a child with the x-internal header, baggage visible", async () => {
      await withBaggageAndParent(() => mc.run(tracedClient("predicate"), { headers: { [INTERNAL]: "1" } }));
      const { client, server } = await spansOf(mc);
      expect(isChildOf(server, client)).toBe(true);
      expect(server.links).toEqual([]);
      expectHandlerSawChild(server);
    });

    it("a publicEndpoint predicate that throws counts as public", async () => {
      await withBaggageAndParent(() => mc.run(tracedClient("throwing"), { headers: { [INTERNAL]: "1" } }));
      const { client, server } = await spansOf(mc);
      expectLinkedRoot(server, client);
      expectHandlerSawRoot(server);
    });

    it("publicEndpoint: no link for a request without traceparent", async () => {
      const exchange = await mc.run(createClient(UserService, serverOf("public").transport()));
      expect(exchange.received).toHaveLength(mc.receivedCount);
      const server = await spanOf(recorder, mc.spanName, SpanKind.SERVER);
      expect(server.parentSpanContext).toBeUndefined();
      expect(server.links).toEqual([]);
    });

    it("publicEndpoint: a nested outgoing call in the handler belongs to the new trace", async () => {
      const callerTrace = await withBaggageAndParent(async () => {
        await mc.run(tracedClient("public"), { headers: { [NESTED]: "1" } });
        return trace.getActiveSpan()?.spanContext().traceId;
      });
      const { client, server } = await spansOf(mc);
      expect(client.spanContext().traceId).toBe(callerTrace);
      expectLinkedRoot(server, client);
      await waitFor(() => recorder.spans().filter((s) => s.name === GET_BALANCE).length === 2);
      const nestedClient = await spanOf(recorder, GET_BALANCE, SpanKind.CLIENT);
      const nestedServer = await spanOf(recorder, GET_BALANCE, SpanKind.SERVER);
      expect(isChildOf(nestedClient, server)).toBe(true);
      expect(isChildOf(nestedServer, nestedClient)).toBe(true);
      expect(nestedServer.spanContext().traceId).toBe(server.spanContext().traceId);
      expect(nestedServer.spanContext().traceId).not.toBe(callerTrace);
    });

    it("traceResponse: the traceresponse header names the server span (untraced caller)", async () => {
      const headers: Headers[] = [];
      await mc.run(createClient(UserService, serverOf("traceResponse").transport()), {
        onHeader: (h) => headers.push(h),
      });
      const server = await spanOf(recorder, mc.spanName, SpanKind.SERVER);
      expect(headers).toHaveLength(1);
      expect(headers[0]?.get(TRACE_RESPONSE_HEADER)).toBe(expectedTraceResponse(server));
    });

    it("traceResponse: with a traced caller, the header names the server span, the client span's child", async () => {
      const headers: Headers[] = [];
      await withParent(recorder.tracer, () =>
        mc.run(tracedClient("traceResponse"), { onHeader: (h) => headers.push(h) }),
      );
      const { client, server } = await spansOf(mc);
      expect(isChildOf(server, client)).toBe(true);
      expect(headers[0]?.get("traceresponse")).toBe(expectedTraceResponse(server));
    });

    it("traceResponse on a public endpoint names the new root trace, not the caller's", async () => {
      const headers: Headers[] = [];
      await withBaggageAndParent(() =>
        mc.run(tracedClient("publicTraceResponse"), { onHeader: (h) => headers.push(h) }),
      );
      const { client, server } = await spansOf(mc);
      expectLinkedRoot(server, client);
      const value = headers[0]?.get("traceresponse");
      expect(value).toBe(expectedTraceResponse(server));
      expect(value).not.toContain(client.spanContext().traceId);
    });

    it.each<ServerName>(["plain", "traceResponseOff"])("no traceresponse header from the %s server", async (name) => {
      const headers: Headers[] = [];
      await mc.run(tracedClient(name), { onHeader: (h) => headers.push(h) });
      await spansOf(mc);
      expect(headers).toHaveLength(1);
      expect(headers[0]?.has("traceresponse")).toBe(false);
      expect(headers[0]?.has("content-type")).toBe(true); // the callback did get the response headers
    });
  });
});

describe("invalid server options throw a TypeError naming the option", () => {
  it.each<[string, unknown]>([
    ["publicEndpoint", "yes"],
    ["publicEndpoint", 1],
    ["publicEndpoint", null],
    ["publicEndpoint", {}],
    ["traceResponse", "true"],
    ["traceResponse", 1],
    ["traceResponse", null],
    ["traceResponse", () => true],
  ])("%s: %o", (option, value) => {
    let error: unknown;
    try {
      traceUserService(createUserImpl(), { [option]: value } as TracedServiceOptions);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(TypeError);
    expect((error as TypeError).message).toContain(`option ${option}`);
  });

  it.each<[string, unknown]>([
    ["publicEndpoint", true],
    ["publicEndpoint", false],
    ["publicEndpoint", () => false],
    ["traceResponse", true],
    ["traceResponse", false],
  ])("accepts %s: %o", (option, value) => {
    expect(() => traceUserService(createUserImpl(), { [option]: value } as TracedServiceOptions)).not.toThrow();
  });
});
