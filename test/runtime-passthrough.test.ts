import type { ServiceImpl } from "@connectrpc/connect";
import { Code, createClient } from "@connectrpc/connect";
import type { TextMapPropagator, Tracer, TracerProvider } from "@opentelemetry/api";
import { SpanKind } from "@opentelemetry/api";
import type { SpanProcessor } from "@opentelemetry/sdk-trace";
import { TracerProvider as SdkTracerProvider } from "@opentelemetry/sdk-trace";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createTracedUserServiceClient, traceUserService } from "../generated/user/v1/user_otel.js";
import { UserService } from "../generated/user/v1/user_pb.js";
import type { TestServer, Wire } from "./support/servers.js";
import { startServer, wires } from "./support/servers.js";
import { createSpanRecorder, spanOf } from "./support/span-recorder.js";
import { installTestTracing } from "./support/tracing.js";
import type { Exchange, MethodCase, UserClient } from "./support/user-calls.js";
import { errorOf, iterate, methodCasesFor } from "./support/user-calls.js";
import { createProbedUserImpl, createUserImpl, ERROR_BASE, THROW_TYPE_ERROR } from "./support/user-impl.js";

// Tracing never changes the RPC: results, headers, trailers, errors and the request headers the
// server sees (but for the propagation fields) are those of connect without tracing.

installTestTracing();
const recorder = createSpanRecorder();

/** Headers that differ from response to response whatever the tracing. */
const volatile = new Set(["date", "content-length", "transfer-encoding", "keep-alive", "connection"]);

function stable(headers: Headers | undefined): [string, string][] {
  return [...(headers ?? new Headers()).entries()].filter(([key]) => !volatile.has(key)).sort();
}

/**
 * `createUserImpl()` with response headers and trailers on every method kind, which also echoes
 * the request header `x-req` and records the request headers it saw.
 */
function headerImpl(seen: Headers[]): ServiceImpl<typeof UserService> {
  const mark = (ctx: { requestHeader: Headers; responseHeader: Headers; responseTrailer: Headers }) => {
    seen.push(new Headers(ctx.requestHeader));
    ctx.responseHeader.set("x-user-header", "h");
    ctx.responseHeader.set("x-echo", ctx.requestHeader.get("x-req") ?? "none");
    ctx.responseTrailer.set("x-user-trailer", "t");
  };
  return createProbedUserImpl((_method, ctx) => mark(ctx));
}

interface Observed {
  readonly exchange: Exchange;
  readonly header: [string, string][];
  readonly trailer: [string, string][];
  readonly requestHeaders: Headers;
}

async function observe(mc: MethodCase, client: UserClient, seen: Headers[]): Promise<Observed> {
  let header: Headers | undefined;
  let trailer: Headers | undefined;
  seen.length = 0;
  const callHeaders = new Headers({ "x-req": "r1" });
  const exchange = await mc.run(client, {
    headers: callHeaders,
    onHeader: (h) => {
      header = h;
    },
    onTrailer: (t) => {
      trailer = t;
    },
  });
  // the caller's headers are not written to
  expect([...callHeaders.keys()]).toEqual(["x-req"]);
  expect(seen).toHaveLength(1);
  return { exchange, header: stable(header), trailer: stable(trailer), requestHeaders: seen[0] as Headers };
}

describe.each(wires)("$name", (wire: Wire) => {
  const tracedSeen: Headers[] = [];
  const plainSeen: Headers[] = [];
  let tracedServer: TestServer;
  let plainServer: TestServer;
  beforeAll(async () => {
    tracedServer = await startServer(wire, (router) => {
      router.service(UserService, traceUserService(headerImpl(tracedSeen), { tracerProvider: recorder.provider }));
    });
    plainServer = await startServer(wire, (router) => {
      router.service(UserService, headerImpl(plainSeen));
    });
  });
  afterAll(async () => {
    await tracedServer.close();
    await plainServer.close();
  });
  beforeEach(() => recorder.reset());
  afterEach(() => recorder.settle());

  const tracedClient = (options?: { tracerProvider?: TracerProvider; propagator?: TextMapPropagator }) =>
    createTracedUserServiceClient(tracedServer.transport(), { tracerProvider: recorder.provider, ...options });
  const plainClient = () => createClient(UserService, plainServer.transport());

  describe.each(methodCasesFor(wire))("$method", (mc) => {
    it("same messages, response headers and trailers as untraced connect", async () => {
      const traced = await observe(mc, tracedClient(), tracedSeen);
      const plain = await observe(mc, plainClient(), plainSeen);
      expect(traced.exchange.received).toEqual(plain.exchange.received);
      expect(plain.header).toContainEqual(["x-user-header", "h"]);
      expect(plain.header).toContainEqual(["x-echo", "r1"]);
      expect(plain.header.map(([k]) => k)).toContain("content-type");
      expect(traced.header).toEqual(plain.header);
      // gRPC-web and gRPC carry trailers; Connect unary folds them into headers (trailer- prefix)
      const allPlain = [...plain.header, ...plain.trailer];
      expect(allPlain.some(([k, v]) => k.endsWith("x-user-trailer") && v === "t")).toBe(true);
      expect(traced.trailer).toEqual(plain.trailer);
    });

    it("the server sees the caller's request headers plus traceparent, nothing else changed", async () => {
      const traced = await observe(mc, tracedClient(), tracedSeen);
      const plain = await observe(mc, plainClient(), plainSeen);
      const strip = (h: Headers) =>
        stable(h).filter(([k]) => k !== "traceparent" && k !== "host" && k !== ":authority" && k !== "user-agent");
      expect(traced.requestHeaders.get("x-req")).toBe("r1");
      expect(traced.requestHeaders.get("traceparent")).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
      expect(plain.requestHeaders.get("traceparent")).toBeNull();
      expect(strip(traced.requestHeaders)).toEqual(strip(plain.requestHeaders));
      // the traceparent names the client span
      const clientSpan = await spanOf(recorder, mc.spanName, SpanKind.CLIENT);
      expect(traced.requestHeaders.get("traceparent")).toContain(clientSpan.spanContext().spanId);
    });
  });

  describe.each([Code.NotFound, Code.InvalidArgument, Code.Unauthenticated, Code.Internal, Code.ResourceExhausted])(
    "FetchUser failing with code %i",
    (code) => {
      it("same error code, message, details and metadata as untraced connect", async () => {
        const traced = await errorOf(tracedClient().fetchUser({ userId: ERROR_BASE + code }));
        const plain = await errorOf(plainClient().fetchUser({ userId: ERROR_BASE + code }));
        expect(plain.code).toBe(code);
        expect(traced.code).toBe(plain.code);
        expect(traced.rawMessage).toBe(plain.rawMessage);
        expect(traced.message).toBe(plain.message);
        expect(traced.details).toEqual(plain.details);
        expect(stable(plain.metadata)).toContainEqual(["x-user-header", "h"]);
        expect(stable(traced.metadata)).toEqual(stable(plain.metadata));
      });
    },
  );

  it("a TypeError in the handler: same error as untraced connect", async () => {
    const traced = await errorOf(tracedClient().fetchUser({ userId: THROW_TYPE_ERROR }));
    const plain = await errorOf(plainClient().fetchUser({ userId: THROW_TYPE_ERROR }));
    expect(traced.code).toBe(plain.code);
    expect(traced.rawMessage).toBe(plain.rawMessage);
    expect(stable(traced.metadata)).toEqual(stable(plain.metadata));
  });

  it.runIf(wire.httpVersion === "1.1")(
    "bidi over HTTP/1.1 fails as untraced connect does, the client span ends",
    async () => {
      const chat = async (client: UserClient) => {
        return errorOf(
          (async () => {
            for await (const _ of client.chat(iterate([{ message: "a" }])));
          })(),
        );
      };
      const traced = await chat(tracedClient());
      const plain = await chat(plainClient());
      expect(traced.code).toBe(plain.code);
      expect(traced.rawMessage).toBe(plain.rawMessage);
      const clientSpan = await spanOf(recorder, "user.v1.UserService/Chat", SpanKind.CLIENT);
      expect(clientSpan.attributes["error.type"]).toBeDefined();
    },
  );

  describe("failing telemetry does not reach the RPC", () => {
    const throwing = (where: string) => () => {
      throw new Error(`telemetry failure in ${where}`);
    };

    it.each(methodCasesFor(wire))("$method: span processors that throw on start and end", async (mc) => {
      const processor: SpanProcessor = {
        onStart: throwing("onStart"),
        onEnd: throwing("onEnd"),
        forceFlush: () => Promise.resolve(),
        shutdown: () => Promise.resolve(),
      };
      const provider = new SdkTracerProvider({ spanProcessors: [processor] });
      const server = await startServer(wire, (router) => {
        router.service(UserService, traceUserService(createUserImpl(), { tracerProvider: provider }));
      });
      try {
        const client = createTracedUserServiceClient(server.transport(), { tracerProvider: provider });
        const exchange = await mc.run(client);
        expect(exchange.received).toHaveLength(mc.receivedCount);
        await expect(client.fetchUser({ userId: ERROR_BASE + Code.NotFound })).rejects.toMatchObject({
          code: Code.NotFound,
        });
      } finally {
        await server.close();
      }
    });

    it.each(methodCasesFor(wire))("$method: a tracer whose startSpan throws", async (mc) => {
      const tracer = { startSpan: throwing("startSpan"), startActiveSpan: throwing("startActiveSpan") };
      const provider: TracerProvider = { getTracer: () => tracer as unknown as Tracer };
      const server = await startServer(wire, (router) => {
        router.service(UserService, traceUserService(createUserImpl(), { tracerProvider: provider }));
      });
      try {
        const client = createTracedUserServiceClient(server.transport(), { tracerProvider: provider });
        const exchange = await mc.run(client);
        expect(exchange.received).toHaveLength(mc.receivedCount);
      } finally {
        await server.close();
      }
    });

    it.each(methodCasesFor(wire))("$method: a propagator that throws on inject and extract", async (mc) => {
      const propagator: TextMapPropagator = {
        inject: throwing("inject"),
        extract: throwing("extract"),
        fields: () => ["traceparent"],
      };
      const server = await startServer(wire, (router) => {
        router.service(
          UserService,
          traceUserService(createUserImpl(), { tracerProvider: recorder.provider, propagator }),
        );
      });
      try {
        const client = createTracedUserServiceClient(server.transport(), {
          tracerProvider: recorder.provider,
          propagator,
        });
        const exchange = await mc.run(client);
        expect(exchange.received).toHaveLength(mc.receivedCount);
        // both spans are still recorded and ended
        await spanOf(recorder, mc.spanName, SpanKind.CLIENT);
        await spanOf(recorder, mc.spanName, SpanKind.SERVER);
      } finally {
        await server.close();
      }
    });
  });
});
