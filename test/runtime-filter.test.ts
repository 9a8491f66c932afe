import type { ServiceImpl, Transport } from "@connectrpc/connect";
import type { Span, SpanContext } from "@opentelemetry/api";
import { SpanKind, trace } from "@opentelemetry/api";
import type { ReadableSpan } from "@opentelemetry/sdk-trace";
import type { CallFilter, CallInfo, TracedClientOptions } from "connect-otel";
import { defaultCallFilter } from "connect-otel";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  createTracedInventoryServiceClient,
  createTracedProbeServiceClient,
  traceInventoryService,
  traceProbeService,
} from "../generated/annotated/v1/inventory_otel.js";
import { InventoryService, ProbeService } from "../generated/annotated/v1/inventory_pb.js";
import { createTracedHealthClient, traceHealth } from "../generated/grpc/health/v1/health_otel.js";
import { Health, HealthCheckResponse_ServingStatus } from "../generated/grpc/health/v1/health_pb.js";
import { createTracedUserServiceClient, traceUserService } from "../generated/user/v1/user_otel.js";
import { UserService } from "../generated/user/v1/user_pb.js";
import type { TestServer, Wire } from "./support/servers.js";
import { startServer, wires } from "./support/servers.js";
import { createSpanRecorder, spanOf } from "./support/span-recorder.js";
import { installTestTracing, isChildOf } from "./support/tracing.js";
import { collect, methodCasesFor, withParent } from "./support/user-calls.js";
import { createProbedUserImpl } from "./support/user-impl.js";

// The `filter` option over real sockets: which calls get spans on each side, what the filter is
// given, and that an untraced call still carries the trace context to the handler.

installTestTracing();
const recorder = createSpanRecorder();
const HEALTH_CHECK = "grpc.health.v1.Health/Check";
const HEALTH_WATCH = "grpc.health.v1.Health/Watch";
const INVENTORY_CHECK = "annotated.v1.InventoryService/Check";
const PROBE_CHECK = "annotated.v1.ProbeService/Check";
const SERVING = HealthCheckResponse_ServingStatus.SERVING;

/** Span context active in each handler call of the current test, by method. */
const seen: { method: string; spanContext: SpanContext | undefined }[] = [];
function note(method: string): void {
  seen.push({ method, spanContext: trace.getActiveSpan()?.spanContext() });
}

/** A filter's argument as it was when the filter ran (the headers object may change later). */
interface SeenCall {
  readonly keys: string[];
  readonly method: string;
  readonly side: string;
  readonly tenant: string | null;
  readonly traceparent: string | null;
}
function snapshot(call: CallInfo): SeenCall {
  return {
    keys: Object.keys(call).sort(),
    method: call.method,
    side: call.side,
    tenant: call.requestHeader.get("x-tenant"),
    traceparent: call.requestHeader.get("traceparent"),
  };
}

/** What the server filters of the current test were called with. */
const serverFilterCalls: SeenCall[] = [];

/** Leaves ProbeService.Check untraced, traces the InventoryService method of the same bare name. */
const skipProbe: CallFilter = (call) => call.method !== PROBE_CHECK;

/** Server filters by server name: each wire gets one server per entry, with all three services. */
const serverFilters = {
  default: undefined,
  skipProbe: (call: CallInfo) => {
    serverFilterCalls.push(snapshot(call));
    return skipProbe(call);
  },
  keepDefault: (call: CallInfo) => defaultCallFilter(call) && skipProbe(call),
  throwing: () => {
    throw new Error("filter failed");
  },
  none: () => false,
} satisfies Record<string, CallFilter | undefined>;
type ServerName = keyof typeof serverFilters;

const healthImpl: ServiceImpl<typeof Health> = {
  async check() {
    note(HEALTH_CHECK);
    return { status: SERVING };
  },
  async *watch() {
    note(HEALTH_WATCH);
    yield { status: SERVING };
  },
};

/** A UserService that notes the active span context at the start of every handler. */
function notingUserImpl(): ServiceImpl<typeof UserService> {
  return createProbedUserImpl((method) => note(method));
}

/** Spans of `name` of the current test, of any kind. */
function spansNamed(name: string): ReadableSpan[] {
  return recorder.spans().filter((s) => s.name === name);
}

/**
 * Asserts that the handler of `method` ran once with `expected` active: extracted from the request
 * (remote) for an untraced server call, the server span (local) for a traced one.
 */
function expectHandlerSaw(method: string, expected: SpanContext, remote = true): void {
  const calls = seen.filter((s) => s.method === method);
  expect(calls).toHaveLength(1);
  expect(calls[0]?.spanContext?.traceId).toBe(expected.traceId);
  expect(calls[0]?.spanContext?.spanId).toBe(expected.spanId);
  expect(calls[0]?.spanContext?.isRemote === true).toBe(remote);
}

/** Asserts a traced call of `method`: client and server span, server the client's child. */
async function expectTraced(method: string, target: string): Promise<void> {
  const client = await spanOf(recorder, method, SpanKind.CLIENT);
  const server = await spanOf(recorder, method, SpanKind.SERVER);
  expect(isChildOf(server, client)).toBe(true);
  expect(client.attributes["rpc.method"]).toBe(method);
  expect(server.attributes["rpc.method"]).toBe(method);
  expect(client.attributes["app.check.target"]).toBe(target);
  expect(server.attributes["app.check.target"]).toBe(target);
}

describe.each(wires)("$name", (wire: Wire) => {
  const servers = new Map<ServerName, TestServer>();
  const serverOf = (name: ServerName) => servers.get(name) as TestServer;
  beforeAll(async () => {
    for (const [name, filter] of Object.entries(serverFilters)) {
      const options = { tracerProvider: recorder.provider, ...(filter ? { filter } : {}) };
      const server = await startServer(wire, (router) => {
        router.service(Health, traceHealth(healthImpl, options));
        router.service(
          InventoryService,
          traceInventoryService(
            {
              async check(req) {
                note(INVENTORY_CHECK);
                return { reachable: req.target === "db" };
              },
            },
            options,
          ),
        );
        router.service(
          ProbeService,
          traceProbeService(
            {
              async check(req) {
                note(PROBE_CHECK);
                return { reachable: req.target === "db" };
              },
            },
            options,
          ),
        );
        router.service(UserService, traceUserService(notingUserImpl(), options));
      });
      servers.set(name as ServerName, server);
    }
  });
  afterAll(async () => {
    for (const server of servers.values()) await server.close();
  });
  beforeEach(() => {
    recorder.reset();
    seen.length = 0;
    serverFilterCalls.length = 0;
  });
  afterEach(() => recorder.settle());

  /** Traced clients of the three services of server `name`, with `filter` (default filter without). */
  function clientsOf(name: ServerName, filter?: CallFilter) {
    const transport = serverOf(name).transport();
    const options: TracedClientOptions = { tracerProvider: recorder.provider, ...(filter ? { filter } : {}) };
    return {
      health: createTracedHealthClient(transport, options),
      inventory: createTracedInventoryServiceClient(transport, options),
      probe: createTracedProbeServiceClient(transport, options),
    };
  }

  /** Calls Health.Check and Health.Watch (one message) inside a test parent span; returns the parent. */
  async function callHealth(health: ReturnType<typeof clientsOf>["health"]): Promise<Span> {
    return withParent(recorder.tracer, async (parent) => {
      const checked = await health.check({ service: "" });
      expect(checked.status).toBe(SERVING);
      const watched = await collect(health.watch({ service: "" }));
      expect(watched.map((m) => m.status)).toEqual([SERVING]);
      return parent;
    });
  }

  /** Calls InventoryService.Check and ProbeService.Check inside a test parent span; returns the parent. */
  async function callChecks(clients: ReturnType<typeof clientsOf>): Promise<Span> {
    return withParent(recorder.tracer, async (parent) => {
      expect((await clients.inventory.check({ target: "db" })).reachable).toBe(true);
      expect((await clients.probe.check({ target: "cache" })).reachable).toBe(false);
      return parent;
    });
  }

  it("default filter: health Check and Watch get no span on either side, yet the trace propagates", async () => {
    const parent = await callHealth(clientsOf("default").health);
    expect(recorder.spans().map((s) => s.name)).toEqual(["test parent"]);
    expectHandlerSaw(HEALTH_CHECK, parent.spanContext());
    expectHandlerSaw(HEALTH_WATCH, parent.spanContext());
  });

  it("default filter: InventoryService.Check and ProbeService.Check are both traced", async () => {
    await callChecks(clientsOf("default"));
    await expectTraced(INVENTORY_CHECK, "db");
    await expectTraced(PROBE_CHECK, "cache");
  });

  it("filter skipping ProbeService/Check on both sides: Probe untraced, Inventory traced", async () => {
    const parent = await callChecks(clientsOf("skipProbe", skipProbe));
    await expectTraced(INVENTORY_CHECK, "db");
    expect(spansNamed(PROBE_CHECK)).toEqual([]);
    expectHandlerSaw(PROBE_CHECK, parent.spanContext());
  });

  it("filter on the client only: an untraced Probe client call propagates the parent to a traced server", async () => {
    const parent = await callChecks(clientsOf("default", skipProbe));
    await expectTraced(INVENTORY_CHECK, "db");
    const server = await spanOf(recorder, PROBE_CHECK, SpanKind.SERVER);
    expect(spansNamed(PROBE_CHECK)).toEqual([server]);
    expect(isChildOf(server, parent.spanContext())).toBe(true);
    expect(server.attributes["app.check.target"]).toBe("cache");
  });

  it("filter on the server only: the Probe handler runs in the traced client span's context", async () => {
    await callChecks(clientsOf("skipProbe"));
    await expectTraced(INVENTORY_CHECK, "db");
    const client = await spanOf(recorder, PROBE_CHECK, SpanKind.CLIENT);
    expect(spansNamed(PROBE_CHECK)).toEqual([client]);
    expectHandlerSaw(PROBE_CHECK, client.spanContext());
  });

  it("the filter gets {method, side, requestHeader}: call options' headers on the client, received ones on the server", async () => {
    const clientFilterCalls: SeenCall[] = [];
    const clients = clientsOf("skipProbe", (call) => {
      clientFilterCalls.push(snapshot(call));
      return skipProbe(call);
    });
    await withParent(recorder.tracer, async () => {
      await clients.inventory.check({ target: "db" }, { headers: { "X-Tenant": "acme" } });
      await clients.probe.check({ target: "db" }, { headers: { "x-tenant": "probe" } });
      await clients.health.check({ service: "" }, { headers: { "x-tenant": "health" } });
      await collect(clients.health.watch({ service: "" }));
    });
    const described = (calls: SeenCall[]) =>
      calls.map(({ traceparent, ...rest }) => ({ ...rest, hasTraceparent: traceparent !== null }));
    const keys = ["method", "requestHeader", "side"];
    expect(described(clientFilterCalls)).toEqual([
      { keys, method: INVENTORY_CHECK, side: "client", tenant: "acme", hasTraceparent: false },
      { keys, method: PROBE_CHECK, side: "client", tenant: "probe", hasTraceparent: false },
      { keys, method: HEALTH_CHECK, side: "client", tenant: "health", hasTraceparent: false },
      { keys, method: HEALTH_WATCH, side: "client", tenant: null, hasTraceparent: false },
    ]);
    expect(described(serverFilterCalls)).toEqual([
      { keys, method: INVENTORY_CHECK, side: "server", tenant: "acme", hasTraceparent: true },
      { keys, method: PROBE_CHECK, side: "server", tenant: "probe", hasTraceparent: true },
      { keys, method: HEALTH_CHECK, side: "server", tenant: "health", hasTraceparent: true },
      { keys, method: HEALTH_WATCH, side: "server", tenant: null, hasTraceparent: true },
    ]);
    // the server filter saw the traceparent the traced client span sent
    const inventoryClient = await spanOf(recorder, INVENTORY_CHECK, SpanKind.CLIENT);
    const { traceId, spanId } = inventoryClient.spanContext();
    expect(serverFilterCalls[0]?.traceparent).toBe(`00-${traceId}-${spanId}-01`);
    // the custom filters replaced the default: health is traced on both sides
    for (const name of [HEALTH_CHECK, HEALTH_WATCH]) {
      const client = await spanOf(recorder, name, SpanKind.CLIENT);
      expect(isChildOf(await spanOf(recorder, name, SpanKind.SERVER), client)).toBe(true);
    }
  });

  it("a filter that throws traces the call, on client and server", async () => {
    const throwing: CallFilter = () => {
      throw new Error("filter failed");
    };
    await callHealth(clientsOf("throwing", throwing).health);
    await callChecks(clientsOf("throwing", throwing));
    for (const name of [HEALTH_CHECK, HEALTH_WATCH]) {
      const client = await spanOf(recorder, name, SpanKind.CLIENT);
      expect(isChildOf(await spanOf(recorder, name, SpanKind.SERVER), client)).toBe(true);
    }
    await expectTraced(INVENTORY_CHECK, "db");
    await expectTraced(PROBE_CHECK, "cache");
  });

  it("a custom filter replaces the default: health is traced on both sides", async () => {
    const parent = await callHealth(clientsOf("skipProbe", skipProbe).health);
    for (const name of [HEALTH_CHECK, HEALTH_WATCH]) {
      const client = await spanOf(recorder, name, SpanKind.CLIENT);
      const server = await spanOf(recorder, name, SpanKind.SERVER);
      expect(isChildOf(client, parent.spanContext())).toBe(true);
      expect(isChildOf(server, client)).toBe(true);
      expectHandlerSaw(name, server.spanContext(), false);
    }
  });

  it("a custom filter that calls defaultCallFilter keeps health untraced", async () => {
    const keepDefault: CallFilter = (call) => defaultCallFilter(call) && skipProbe(call);
    const clients = clientsOf("keepDefault", keepDefault);
    const healthParent = await callHealth(clients.health);
    const checksParent = await callChecks(clients);
    for (const name of [HEALTH_CHECK, HEALTH_WATCH, PROBE_CHECK]) expect(spansNamed(name)).toEqual([]);
    expectHandlerSaw(HEALTH_CHECK, healthParent.spanContext());
    expectHandlerSaw(HEALTH_WATCH, healthParent.spanContext());
    expectHandlerSaw(PROBE_CHECK, checksParent.spanContext());
    await expectTraced(INVENTORY_CHECK, "db");
  });

  describe.each(methodCasesFor(wire))("untraced $method (filter false on both sides)", (mc) => {
    it("no span, the call answers, and the handler runs in the caller's context", async () => {
      const client = createTracedUserServiceClient(serverOf("none").transport(), {
        tracerProvider: recorder.provider,
        filter: () => false,
      });
      const parent = await withParent(recorder.tracer, async (parent) => {
        const exchange = await mc.run(client);
        expect(exchange.received).toHaveLength(mc.receivedCount);
        return parent;
      });
      expect(recorder.spans().map((s) => s.name)).toEqual(["test parent"]);
      expectHandlerSaw(mc.method, parent.spanContext());
    });
  });
});

describe("a filter that is not a function throws a TypeError naming the option", () => {
  const factories: [string, (filter: unknown) => unknown][] = [
    ["createTracedHealthClient", (filter) => createTracedHealthClient(fakeTransport(), { filter } as never)],
    ["traceHealth", (filter) => traceHealth(healthImpl, { filter } as never)],
    [
      "createTracedProbeServiceClient",
      (filter) => createTracedProbeServiceClient(fakeTransport(), { filter } as never),
    ],
    ["traceProbeService", (filter) => traceProbeService({}, { filter } as never)],
  ];
  describe.each(factories)("%s", (_name, create) => {
    it.each([
      ["a string", "all"],
      ["true", true],
      ["an object", {}],
      ["a number", 0],
    ])("%s", (_what, filter) => {
      let error: unknown;
      try {
        create(filter);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(TypeError);
      expect((error as TypeError).message).toContain("option filter");
    });

    it("accepts a function", () => {
      expect(() => create(() => true)).not.toThrow();
    });
  });
});

/** A transport that is never called: creation alone must throw or not. */
function fakeTransport(): Transport {
  return {
    unary: () => Promise.reject(new Error("not called")),
    stream: () => Promise.reject(new Error("not called")),
  };
}
