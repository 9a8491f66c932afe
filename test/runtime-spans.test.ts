import type { TextMapPropagator } from "@opentelemetry/api";
import { SpanKind, trace } from "@opentelemetry/api";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createTracedUserServiceClient, traceUserService } from "../generated/user/v1/user_otel.js";
import { UserService } from "../generated/user/v1/user_pb.js";
import type { TestServer } from "./support/servers.js";
import { startServer, wires } from "./support/servers.js";
import { createSpanRecorder, spanOf } from "./support/span-recorder.js";
import { installTestTracing, isChildOf, waitFor } from "./support/tracing.js";
import { methodCasesFor, withParent } from "./support/user-calls.js";
import { createUserImpl } from "./support/user-impl.js";

// Span names, kinds and the parent chain test parent -> CLIENT -> SERVER, over real sockets.

const tracing = installTestTracing();
const recorder = createSpanRecorder();

/** A propagator that injects nothing and extracts nothing: the server cannot learn the parent. */
const silentPropagator: TextMapPropagator = {
  inject() {},
  extract: (ctx) => ctx,
  fields: () => [],
};

describe.each(wires)("$name", (wire) => {
  let server: TestServer;
  let globalServer: TestServer;
  beforeAll(async () => {
    server = await startServer(wire, (router) => {
      router.service(UserService, traceUserService(createUserImpl(), { tracerProvider: recorder.provider }));
    });
    globalServer = await startServer(wire, (router) => {
      router.service(UserService, traceUserService(createUserImpl()));
    });
  });
  afterAll(async () => {
    await server.close();
    await globalServer.close();
  });
  beforeEach(() => {
    recorder.reset();
    tracing.reset();
  });
  afterEach(() => recorder.settle());

  describe.each(methodCasesFor(wire))("$method", (mc) => {
    it("client span is the child of the active span, server span the child of the client span", async () => {
      const client = createTracedUserServiceClient(server.transport(), { tracerProvider: recorder.provider });
      const parentContext = await withParent(recorder.tracer, async (parent) => {
        await mc.run(client);
        return parent.spanContext();
      });
      const clientSpan = await spanOf(recorder, mc.spanName, SpanKind.CLIENT);
      const serverSpan = await spanOf(recorder, mc.spanName, SpanKind.SERVER);
      expect(clientSpan.name).toBe(mc.spanName);
      expect(isChildOf(clientSpan, parentContext)).toBe(true);
      expect(isChildOf(serverSpan, clientSpan)).toBe(true);
      expect(serverSpan.spanContext().traceId).toBe(parentContext.traceId);
      expect(clientSpan.instrumentationScope.name).toBe("connect-otel");
      expect(serverSpan.instrumentationScope.name).toBe("connect-otel");
      // exactly the three spans: the parent, one client span, one server span
      expect(recorder.spans()).toHaveLength(3);
    });

    it("without a parent, the client span is a root and the server span still its child", async () => {
      const client = createTracedUserServiceClient(server.transport(), { tracerProvider: recorder.provider });
      await mc.run(client);
      const clientSpan = await spanOf(recorder, mc.spanName, SpanKind.CLIENT);
      const serverSpan = await spanOf(recorder, mc.spanName, SpanKind.SERVER);
      expect(clientSpan.parentSpanContext).toBeUndefined();
      expect(isChildOf(serverSpan, clientSpan)).toBe(true);
    });

    it("a propagator that injects nothing leaves the server span a root: the link comes over the wire", async () => {
      const client = createTracedUserServiceClient(server.transport(), {
        tracerProvider: recorder.provider,
        propagator: silentPropagator,
      });
      await withParent(recorder.tracer, () => mc.run(client));
      const clientSpan = await spanOf(recorder, mc.spanName, SpanKind.CLIENT);
      const serverSpan = await spanOf(recorder, mc.spanName, SpanKind.SERVER);
      expect(clientSpan.parentSpanContext).toBeDefined();
      expect(serverSpan.parentSpanContext).toBeUndefined();
      expect(serverSpan.spanContext().traceId).not.toBe(clientSpan.spanContext().traceId);
    });

    it("a server propagator that extracts nothing leaves the server span a root", async () => {
      const isolated = await startServer(wire, (router) => {
        router.service(
          UserService,
          traceUserService(createUserImpl(), { tracerProvider: recorder.provider, propagator: silentPropagator }),
        );
      });
      try {
        const client = createTracedUserServiceClient(isolated.transport(), { tracerProvider: recorder.provider });
        await mc.run(client);
        const serverSpan = await spanOf(recorder, mc.spanName, SpanKind.SERVER);
        expect(serverSpan.parentSpanContext).toBeUndefined();
      } finally {
        await isolated.close();
      }
    });

    it("without options, both sides use the global tracer provider and propagator", async () => {
      const client = createTracedUserServiceClient(globalServer.transport());
      const tracer = trace.getTracer("runtime-tests");
      await withParent(tracer, () => mc.run(client));
      const spans = tracing.spans();
      const parent = spans.find((s) => s.name === "test parent");
      const clientSpans = spans.filter((s) => s.name === mc.spanName && s.kind === SpanKind.CLIENT);
      expect(clientSpans).toHaveLength(1);
      const clientSpan = clientSpans[0];
      if (parent === undefined || clientSpan === undefined) throw new Error("missing spans");
      expect(isChildOf(clientSpan, parent)).toBe(true);
      const findServer = () => tracing.spans().find((s) => s.name === mc.spanName && s.kind === SpanKind.SERVER);
      await waitFor(() => findServer() !== undefined);
      const serverSpan = findServer();
      if (serverSpan === undefined) throw new Error("no server span on the global provider");
      expect(isChildOf(serverSpan, clientSpan)).toBe(true);
      // nothing went to the recorder's provider
      expect(recorder.spans()).toHaveLength(0);
    });
  });
});
