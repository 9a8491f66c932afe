import type { Attributes } from "@opentelemetry/api";
import { SpanKind, SpanStatusCode } from "@opentelemetry/api";
import type { ReadableSpan } from "@opentelemetry/sdk-trace";
import type { SemconvMode } from "connect-otel";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { createTracedUserServiceClient, traceUserService } from "../generated/user/v1/user_otel.js";
import { UserService } from "../generated/user/v1/user_pb.js";
import {
  conventionKeysOf,
  expectedConventionAttributes,
  legacyKeys,
  legacySystem,
  stableOnlyKeys,
  statusName,
  systemName,
} from "./support/semconv.js";
import type { TestServer, Wire } from "./support/servers.js";
import { startServer, wires } from "./support/servers.js";
import { callSpans, createSpanRecorder, spanOf } from "./support/span-recorder.js";
import { installTestTracing } from "./support/tracing.js";
import type { MethodCase } from "./support/user-calls.js";
import { methodCasesFor } from "./support/user-calls.js";
import { createUserImpl, ERROR_BASE } from "./support/user-impl.js";

// Span attributes in the three semconv modes (stable v1.45.0, legacy v1.26–v1.37, dup), at span start and at span end, on both sides.

installTestTracing();
const recorder = createSpanRecorder();
const FETCH_USER = "user.v1.UserService/FetchUser";

function portOf(server: TestServer): number {
  return Number(new URL(server.baseUrl).port);
}

function startTracedServer(wire: Wire, semconv?: SemconvMode): Promise<TestServer> {
  return startServer(wire, (router) => {
    router.service(
      UserService,
      traceUserService(createUserImpl(), { tracerProvider: recorder.provider, ...(semconv ? { semconv } : {}) }),
    );
  });
}

const spansOf = (mc: MethodCase) => callSpans(recorder, mc.spanName);

function expectNone(attributes: Attributes, keys: readonly string[]): void {
  for (const key of keys) expect(attributes, `unexpected attribute ${key}`).not.toHaveProperty([key]);
}

describe.each(wires)("$name", (wire) => {
  const servers = new Map<SemconvMode, TestServer>();
  const serverOf = (mode: SemconvMode) => servers.get(mode) as TestServer;
  beforeAll(async () => {
    servers.set("stable", await startTracedServer(wire));
    servers.set("dup", await startTracedServer(wire, "dup"));
    servers.set("legacy", await startTracedServer(wire, "legacy"));
  });
  afterAll(async () => {
    for (const server of servers.values()) await server.close();
  });
  beforeEach(() => recorder.reset());
  afterEach(async () => {
    vi.unstubAllEnvs();
    await recorder.settle();
  });

  describe.each<SemconvMode>(["stable", "legacy", "dup"])("%s: each span carries exactly the mode's table", (mode) => {
    const target = () => ({ address: "127.0.0.1", port: portOf(serverOf(mode)) });

    it.each(methodCasesFor(wire))("$method succeeding, on both sides", async (mc) => {
      const client = createTracedUserServiceClient(serverOf(mode).transport(), {
        tracerProvider: recorder.provider,
        semconv: mode,
      });
      await mc.run(client);
      const { client: c, server: s } = await spansOf(mc);
      expect(conventionKeysOf(c.attributes)).toEqual(
        expectedConventionAttributes(mode, wire, "client", mc.spanName, 0, undefined),
      );
      expect(conventionKeysOf(s.attributes)).toEqual(
        expectedConventionAttributes(mode, wire, "server", mc.spanName, 0, target()),
      );
    });

    it.each([5, 14])("FetchUser failing with code %i, on both sides, with baseUrl on the client", async (code) => {
      const server = serverOf(mode);
      const client = createTracedUserServiceClient(server.transport(), {
        tracerProvider: recorder.provider,
        semconv: mode,
        baseUrl: server.baseUrl,
      });
      await expect(client.fetchUser({ userId: ERROR_BASE + code })).rejects.toThrow(`failure ${code}`);
      for (const [kind, side] of [
        [SpanKind.CLIENT, "client"],
        [SpanKind.SERVER, "server"],
      ] as const) {
        const span = await spanOf(recorder, FETCH_USER, kind);
        expect(conventionKeysOf(span.attributes), side).toEqual(
          expectedConventionAttributes(mode, wire, side, FETCH_USER, code, target()),
        );
      }
    });
  });

  describe.each(methodCasesFor(wire))("$method", (mc) => {
    it("stable (default): system, method and status on both sides, no legacy attributes", async () => {
      const server = serverOf("stable");
      const client = createTracedUserServiceClient(server.transport(), { tracerProvider: recorder.provider });
      await mc.run(client);
      const spans = await spansOf(mc);
      for (const span of [spans.client, spans.server]) {
        expect(span.attributes["rpc.system.name"]).toBe(systemName(wire));
        expect(span.attributes["rpc.method"]).toBe(mc.spanName);
        expect(span.attributes["rpc.status_code"]).toBe(statusName(wire, 0));
        expect(span.attributes).not.toHaveProperty(["error.type"]);
        expect(span.status.code).toBe(SpanStatusCode.UNSET);
        expectNone(span.attributes, legacyKeys);
      }
      expect(spans.server.attributes["server.address"]).toBe("127.0.0.1");
      expect(spans.server.attributes["server.port"]).toBe(portOf(server));
      // a transport does not reveal its target: without the baseUrl option the client has none
      expect(spans.client.attributes).not.toHaveProperty(["server.address"]);
      expect(spans.client.attributes).not.toHaveProperty(["server.port"]);
    });

    it("stable: without the protocol option the client learns rpc.system.name from the response", async () => {
      const client = createTracedUserServiceClient(serverOf("stable").transport(), {
        tracerProvider: recorder.provider,
      });
      await mc.run(client);
      const spans = await spansOf(mc);
      const atStart = recorder.startAttributes(spans.client);
      expect(atStart).not.toHaveProperty(["rpc.system.name"]);
      expect(atStart["rpc.method"]).toBe(mc.spanName);
      expect(spans.client.attributes["rpc.system.name"]).toBe(systemName(wire));
    });

    it("stable: baseUrl and protocol options put server.address, server.port, rpc.system.name at start", async () => {
      const server = serverOf("stable");
      const client = createTracedUserServiceClient(server.transport(), {
        tracerProvider: recorder.provider,
        baseUrl: server.baseUrl,
        protocol: wire.protocol,
      });
      await mc.run(client);
      const spans = await spansOf(mc);
      const atStart = recorder.startAttributes(spans.client);
      expect(atStart["rpc.system.name"]).toBe(systemName(wire));
      expect(atStart["rpc.method"]).toBe(mc.spanName);
      expect(atStart["server.address"]).toBe("127.0.0.1");
      expect(atStart["server.port"]).toBe(portOf(server));
      expect(typeof atStart["server.port"]).toBe("number");
      expect(spans.client.attributes["server.address"]).toBe("127.0.0.1");
      expect(spans.client.attributes["server.port"]).toBe(portOf(server));
    });

    it("stable: the server span has system, method and server address at start", async () => {
      const server = serverOf("stable");
      const client = createTracedUserServiceClient(server.transport(), { tracerProvider: recorder.provider });
      await mc.run(client);
      const serverSpan = (await spansOf(mc)).server;
      const atStart = recorder.startAttributes(serverSpan);
      expect(atStart["rpc.system.name"]).toBe(systemName(wire));
      expect(atStart["rpc.method"]).toBe(mc.spanName);
      expect(atStart["server.address"]).toBe("127.0.0.1");
      expect(atStart["server.port"]).toBe(portOf(server));
      expect(atStart).not.toHaveProperty(["rpc.status_code"]);
    });

    it("dup (option): stable and legacy attributes, rpc.method fully qualified", async () => {
      const client = createTracedUserServiceClient(serverOf("dup").transport(), {
        tracerProvider: recorder.provider,
        semconv: "dup",
      });
      await mc.run(client);
      const spans = await spansOf(mc);
      for (const span of [spans.client, spans.server]) expectDup(wire, mc, span);
    });

    it("dup (OTEL_SEMCONV_STABILITY_OPT_IN=rpc/dup, read when the wrappers are created)", async () => {
      vi.stubEnv("OTEL_SEMCONV_STABILITY_OPT_IN", "http, rpc/dup");
      const server = await startTracedServer(wire);
      try {
        const client = createTracedUserServiceClient(server.transport(), { tracerProvider: recorder.provider });
        // the environment is read at creation: changing it afterwards changes nothing
        vi.stubEnv("OTEL_SEMCONV_STABILITY_OPT_IN", "");
        await mc.run(client);
        const spans = await spansOf(mc);
        for (const span of [spans.client, spans.server]) expectDup(wire, mc, span);
      } finally {
        await server.close();
      }
    });

    it("legacy (option): rpc.system, rpc.service, bare rpc.method, numeric gRPC status; no stable attributes", async () => {
      const client = createTracedUserServiceClient(serverOf("legacy").transport(), {
        tracerProvider: recorder.provider,
        semconv: "legacy",
      });
      await mc.run(client);
      const spans = await spansOf(mc);
      for (const span of [spans.client, spans.server]) {
        expect(span.attributes["rpc.system"]).toBe(legacySystem(wire));
        expect(span.attributes["rpc.service"]).toBe("user.v1.UserService");
        expect(span.attributes["rpc.method"]).toBe(mc.method);
        expectLegacySuccessStatus(wire, span);
        expectNone(span.attributes, stableOnlyKeys);
      }
    });
  });

  describe("status attributes of a failed call (FetchUser NOT_FOUND)", () => {
    const notFound = { userId: ERROR_BASE + 5 };

    it("legacy: rpc.grpc.status_code 5 for gRPC, rpc.connect_rpc.error_code not_found for Connect", async () => {
      const client = createTracedUserServiceClient(serverOf("legacy").transport(), {
        tracerProvider: recorder.provider,
        semconv: "legacy",
      });
      await expect(client.fetchUser(notFound)).rejects.toThrow("failure 5");
      for (const kind of [SpanKind.CLIENT, SpanKind.SERVER]) {
        const span = await spanOf(recorder, FETCH_USER, kind);
        expectLegacyStatus(wire, span, 5);
        expectNone(span.attributes, stableOnlyKeys);
      }
    });

    it("dup: legacy status attribute next to rpc.status_code", async () => {
      const client = createTracedUserServiceClient(serverOf("dup").transport(), {
        tracerProvider: recorder.provider,
        semconv: "dup",
      });
      await expect(client.fetchUser(notFound)).rejects.toThrow("failure 5");
      for (const kind of [SpanKind.CLIENT, SpanKind.SERVER]) {
        const span = await spanOf(recorder, FETCH_USER, kind);
        expectLegacyStatus(wire, span, 5);
        expect(span.attributes["rpc.status_code"]).toBe(statusName(wire, 5));
      }
    });

    it("stable: no legacy status attribute", async () => {
      const client = createTracedUserServiceClient(serverOf("stable").transport(), {
        tracerProvider: recorder.provider,
      });
      await expect(client.fetchUser(notFound)).rejects.toThrow("failure 5");
      for (const kind of [SpanKind.CLIENT, SpanKind.SERVER]) {
        const span = await spanOf(recorder, FETCH_USER, kind);
        expectNone(span.attributes, legacyKeys);
        expect(span.attributes["rpc.status_code"]).toBe(statusName(wire, 5));
      }
    });
  });

  describe("OTEL_SEMCONV_STABILITY_OPT_IN and the semconv option", () => {
    it.each([
      ["current", "stable"],
      ["both", "dup"],
    ] as const)("the deprecated option value %s selects %s", async (alias, mode) => {
      const client = createTracedUserServiceClient(serverOf(mode).transport(), {
        tracerProvider: recorder.provider,
        semconv: alias,
      });
      await client.fetchUser({ userId: 1 });
      const span = await spanOf(recorder, FETCH_USER, SpanKind.CLIENT);
      expect(span.attributes["rpc.status_code"]).toBe(statusName(wire, 0));
      if (mode === "dup") expect(span.attributes["rpc.system"]).toBe(legacySystem(wire));
      else expectNone(span.attributes, legacyKeys);
    });

    it("rpc selects the stable conventions", async () => {
      vi.stubEnv("OTEL_SEMCONV_STABILITY_OPT_IN", "rpc");
      const client = createTracedUserServiceClient(serverOf("stable").transport(), {
        tracerProvider: recorder.provider,
      });
      await client.fetchUser({ userId: 1 });
      const span = await spanOf(recorder, FETCH_USER, SpanKind.CLIENT);
      expect(span.attributes["rpc.system.name"]).toBe(systemName(wire));
      expectNone(span.attributes, legacyKeys);
    });

    it("an explicit semconv option wins over the environment", async () => {
      vi.stubEnv("OTEL_SEMCONV_STABILITY_OPT_IN", "rpc/dup");
      const client = createTracedUserServiceClient(serverOf("stable").transport(), {
        tracerProvider: recorder.provider,
        semconv: "stable",
      });
      await client.fetchUser({ userId: 1 });
      const span = await spanOf(recorder, FETCH_USER, SpanKind.CLIENT);
      expectNone(span.attributes, legacyKeys);
    });

    it("rpc/dup set after creation does not change existing wrappers", async () => {
      const client = createTracedUserServiceClient(serverOf("stable").transport(), {
        tracerProvider: recorder.provider,
      });
      vi.stubEnv("OTEL_SEMCONV_STABILITY_OPT_IN", "rpc/dup");
      await client.fetchUser({ userId: 1 });
      const span = await spanOf(recorder, FETCH_USER, SpanKind.CLIENT);
      expectNone(span.attributes, legacyKeys);
    });
  });
});

function expectDup(wire: Wire, mc: MethodCase, span: ReadableSpan): void {
  expect(span.attributes["rpc.system.name"]).toBe(systemName(wire));
  expect(span.attributes["rpc.system"]).toBe(legacySystem(wire));
  expect(span.attributes["rpc.service"]).toBe("user.v1.UserService");
  expect(span.attributes["rpc.method"]).toBe(mc.spanName);
  expect(span.attributes["rpc.status_code"]).toBe(statusName(wire, 0));
  expectLegacySuccessStatus(wire, span);
}

/** Legacy status of a successful call: `rpc.grpc.status_code` 0 for gRPC; nothing for Connect. */
function expectLegacySuccessStatus(wire: Wire, span: ReadableSpan): void {
  if (wire.protocol === "connect") {
    expect(span.attributes).not.toHaveProperty(["rpc.grpc.status_code"]);
    expect(span.attributes).not.toHaveProperty(["rpc.connect_rpc.error_code"]);
  } else {
    expect(span.attributes["rpc.grpc.status_code"]).toBe(0);
    expect(span.attributes).not.toHaveProperty(["rpc.connect_rpc.error_code"]);
  }
}

/** Legacy status of a failed call with `code`. */
function expectLegacyStatus(wire: Wire, span: ReadableSpan, code: number): void {
  if (wire.protocol === "connect") {
    expect(span.attributes["rpc.connect_rpc.error_code"]).toBe(statusName(wire, code));
    expect(span.attributes).not.toHaveProperty(["rpc.grpc.status_code"]);
  } else {
    expect(span.attributes["rpc.grpc.status_code"]).toBe(code);
    expect(span.attributes).not.toHaveProperty(["rpc.connect_rpc.error_code"]);
  }
}

describe("server.address and server.port from the baseUrl option", () => {
  const wire = wires[0] as Wire;
  let server: TestServer;
  beforeAll(async () => {
    server = await startTracedServer(wire);
  });
  afterAll(() => server.close());
  beforeEach(() => recorder.reset());
  afterEach(() => recorder.settle());

  it.each([
    ["https://api.example.com", "api.example.com", 443],
    ["http://users.internal", "users.internal", 80],
    ["http://[::1]:9000/prefix", "::1", 9000],
    [new URL("https://10.0.0.7:8443"), "10.0.0.7", 8443],
  ] as const)("%s: %s and port %i", async (baseUrl, address, port) => {
    // the option describes the target; the transport here still goes to the loopback server
    const client = createTracedUserServiceClient(server.transport(), { tracerProvider: recorder.provider, baseUrl });
    await client.fetchUser({ userId: 1 });
    const span = await spanOf(recorder, FETCH_USER, SpanKind.CLIENT);
    expect(recorder.startAttributes(span)["server.address"]).toBe(address);
    expect(recorder.startAttributes(span)["server.port"]).toBe(port);
  });
});

describe("gRPC-web server spans name the RPC system (connect calls the protocol grpc-web)", () => {
  const wire = wires.find((w) => w.protocol === "grpc-web") as Wire;
  const servers: TestServer[] = [];
  beforeEach(() => recorder.reset());
  afterEach(() => recorder.settle());
  afterAll(async () => {
    for (const server of servers) await server.close();
  });

  it("stable: rpc.system.name grpc at the start of the server span", async () => {
    const server = await startTracedServer(wire);
    servers.push(server);
    const client = createTracedUserServiceClient(server.transport(), { tracerProvider: recorder.provider });
    await client.fetchUser({ userId: 1 });
    const span = await spanOf(recorder, FETCH_USER, SpanKind.SERVER);
    expect(recorder.startAttributes(span)["rpc.system.name"]).toBe("grpc");
  });

  it("legacy: rpc.system grpc on the server span", async () => {
    const server = await startTracedServer(wire, "legacy");
    servers.push(server);
    const client = createTracedUserServiceClient(server.transport(), { tracerProvider: recorder.provider });
    await client.fetchUser({ userId: 1 });
    const span = await spanOf(recorder, FETCH_USER, SpanKind.SERVER);
    expect(span.attributes["rpc.system"]).toBe("grpc");
  });
});
