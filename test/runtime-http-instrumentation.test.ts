import * as http from "node:http";
import { createRequire } from "node:module";
import type { AddressInfo } from "node:net";
import type { ConnectRouter, ServiceImpl } from "@connectrpc/connect";
import { expressConnectMiddleware } from "@connectrpc/connect-express";
import type { BaggageEntry } from "@opentelemetry/api";
import { context, propagation, SpanKind } from "@opentelemetry/api";
import { HttpInstrumentation } from "@opentelemetry/instrumentation-http";
import type { ReadableSpan } from "@opentelemetry/sdk-trace";
import express from "express";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createTracedUserServiceClient, traceUserService } from "../generated/user/v1/user_otel.js";
import { UserService } from "../generated/user/v1/user_pb.js";
import type { TestServer, Wire } from "./support/servers.js";
import { startServer, wires } from "./support/servers.js";
import { createSpanRecorder, spanOf } from "./support/span-recorder.js";
import { installTestTracing, isChildOf } from "./support/tracing.js";
import { transportWith } from "./support/transports.js";
import type { MethodCase, UserClient } from "./support/user-calls.js";
import { methodCasesFor, withParent } from "./support/user-calls.js";
import { createProbedUserImpl } from "./support/user-impl.js";

// With `@opentelemetry/instrumentation-http` active — what `getNodeAutoInstrumentations()` users
// have — an HTTP/1.1 request gets an HTTP SERVER span that continues the caller's context before
// connect runs. The RPC SERVER span must be its child, not its sibling (both children of the
// caller's span); a public endpoint still starts a new trace, linked to the caller, without the
// caller's baggage. Over h2c (which the instrumentation does not trace) nothing changes. On
// connect-node's adapter over both HTTP versions and on Express (connect-express).

installTestTracing();
const recorder = createSpanRecorder();

// The instrumentation patches `http.Server.prototype.emit` when `node:http` is required after it
// exists: the require below, as `--require`/`--import` set-ups arrange before the application loads.
const instrumentation = new HttpInstrumentation();
instrumentation.setTracerProvider(recorder.provider);
createRequire(import.meta.url)("node:http");

const HTTP_SCOPE = "@opentelemetry/instrumentation-http";
const BAGGAGE_KEY = "tenant";

/** Baggage entries the handlers of the current test saw, one list per call. */
const seenBaggage: [string, BaggageEntry][][] = [];

/** createUserImpl() whose handlers note the baggage they see. */
function probedImpl(): ServiceImpl<typeof UserService> {
  return createProbedUserImpl(() => seenBaggage.push(propagation.getActiveBaggage()?.getAllEntries() ?? []));
}

const routesWith =
  (options: { publicEndpoint?: boolean }) =>
  (router: ConnectRouter): void => {
    router.service(UserService, traceUserService(probedImpl(), { tracerProvider: recorder.provider, ...options }));
  };

/** An Express app serving `routes` through connect-express, on HTTP/1.1 on loopback. */
async function startExpressServer(
  routes: (router: ConnectRouter) => void,
): Promise<{ baseUrl: string; close(): Promise<void> }> {
  const app = express();
  app.use(expressConnectMiddleware({ routes }));
  const server = http.createServer(app);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** Runs `fn` with the caller's baggage and an active parent span of the recorder. */
function asCaller<T>(fn: () => Promise<T>): Promise<T> {
  const baggage = propagation.createBaggage({ [BAGGAGE_KEY]: { value: "acme" } });
  return context.with(propagation.setBaggage(context.active(), baggage), () => withParent(recorder.tracer, fn));
}

const httpServerSpans = () =>
  recorder.spans().filter((s) => s.instrumentationScope.name === HTTP_SCOPE && s.kind === SpanKind.SERVER);

/** True if `span` descends from `ancestor` through spans the recorder has. */
function descendsFrom(span: ReadableSpan, ancestor: ReadableSpan): boolean {
  const byId = new Map(recorder.spans().map((s) => [s.spanContext().spanId, s]));
  for (let s: ReadableSpan | undefined = span; s !== undefined; s = byId.get(s.parentSpanContext?.spanId ?? "")) {
    if (isChildOf(s, ancestor)) return true;
  }
  return false;
}

interface Setup {
  readonly name: string;
  readonly wire: Wire;
  /** True where the HTTP instrumentation traces the request (HTTP/1.1). */
  readonly httpSpan: boolean;
  start(options: { publicEndpoint?: boolean }): Promise<{ baseUrl: string; close(): Promise<void> }>;
}

const setups: readonly Setup[] = [
  ...wires.map((wire) => ({
    name: `connect-node, ${wire.name}`,
    wire,
    httpSpan: wire.httpVersion === "1.1",
    start: (options: { publicEndpoint?: boolean }): Promise<TestServer> => startServer(wire, routesWith(options)),
  })),
  ...wires
    .filter((wire) => wire.httpVersion === "1.1")
    .map((wire) => ({
      name: `express, ${wire.name}`,
      wire,
      httpSpan: true,
      start: (options: { publicEndpoint?: boolean }) => startExpressServer(routesWith(options)),
    })),
];

function clientOf(wire: Wire, baseUrl: string): UserClient {
  return createTracedUserServiceClient(transportWith(wire, baseUrl, []), { tracerProvider: recorder.provider });
}

it("the HTTP instrumentation is active: node:http's Server.prototype.emit is wrapped", () => {
  expect((http.Server.prototype.emit as { __wrapped?: boolean }).__wrapped).toBe(true);
});

describe.each(setups)("$name", (setup) => {
  let traced: { baseUrl: string; close(): Promise<void> };
  let publicServer: { baseUrl: string; close(): Promise<void> };
  beforeAll(async () => {
    traced = await setup.start({});
    publicServer = await setup.start({ publicEndpoint: true });
  });
  afterAll(async () => {
    await traced.close();
    await publicServer.close();
  });
  beforeEach(() => {
    recorder.reset();
    seenBaggage.length = 0;
  });
  afterEach(() => recorder.settle());

  describe.each(methodCasesFor(setup.wire))("$method", (mc: MethodCase) => {
    it("the RPC server span is the child of the request's HTTP server span, or of the client span without one", async () => {
      await asCaller(() => mc.run(clientOf(setup.wire, traced.baseUrl)));
      const client = await spanOf(recorder, mc.spanName, SpanKind.CLIENT);
      const server = await spanOf(recorder, mc.spanName, SpanKind.SERVER);
      expect(server.spanContext().traceId).toBe(client.spanContext().traceId);
      if (setup.httpSpan) {
        const httpServer = httpServerSpans();
        expect(httpServer).toHaveLength(1);
        expect(isChildOf(server, httpServer[0] as ReadableSpan)).toBe(true);
        expect(descendsFrom(httpServer[0] as ReadableSpan, client)).toBe(true);
      } else {
        expect(httpServerSpans()).toEqual([]);
        expect(isChildOf(server, client)).toBe(true);
      }
      expect(seenBaggage).toEqual([[[BAGGAGE_KEY, expect.objectContaining({ value: "acme" })]]]);
    });

    it("publicEndpoint: a root span in a new trace, linked to the caller, without the caller's baggage", async () => {
      await asCaller(() => mc.run(clientOf(setup.wire, publicServer.baseUrl)));
      const client = await spanOf(recorder, mc.spanName, SpanKind.CLIENT);
      const server = await spanOf(recorder, mc.spanName, SpanKind.SERVER);
      expect(server.parentSpanContext).toBeUndefined();
      expect(server.spanContext().traceId).not.toBe(client.spanContext().traceId);
      expect(server.links).toHaveLength(1);
      expect(server.links[0]?.context.traceId).toBe(client.spanContext().traceId);
      expect(seenBaggage).toEqual([[]]);
    });
  });
});
