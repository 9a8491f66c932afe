import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Attributes, AttributeValue } from "@opentelemetry/api";
import type { ReadableSpan } from "@opentelemetry/sdk-trace";
import type { SemconvMode, TracedClientOptions, TracedServiceOptions } from "connect-otel";
import { SENSITIVE_METADATA } from "connect-otel";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createTracedUserServiceClient, traceUserService } from "../generated/user/v1/user_otel.js";
import { UserService } from "../generated/user/v1/user_pb.js";
import type { TestServer, Wire } from "./support/servers.js";
import { startServer, wires } from "./support/servers.js";
import { callSpans, createSpanRecorder } from "./support/span-recorder.js";
import { installTestTracing } from "./support/tracing.js";
import type { MethodCase } from "./support/user-calls.js";
import { errorOf, methodCasesFor } from "./support/user-calls.js";
import { createUserImpl } from "./support/user-impl.js";

// Header and trailer allow-lists (`requestHeaders`, `responseHeaders`, `responseTrailers`, the
// deprecated `requestMetadata`/`responseMetadata`, `allowSensitiveMetadata`) and deadline attributes,
// on client and server spans of all four method kinds, over every wire, in the three semconv modes.
// Expected names follow semconv v1.45.0 (`rpc.request.header.<key>`, `rpc.response.header.<key>`,
// `rpc.response.trailer.<key>`) and v1.26–v1.37 (`rpc.<grpc|connect_rpc>.<request|response>.metadata.<key>`).

installTestTracing();
const recorder = createSpanRecorder();

/** A request header that makes every handler fail with NOT_FOUND and error metadata `x-err: e1`. */
const FAIL = "x-fail";
/** Values of headers that no allow-list names: they must appear nowhere in any span. */
const UNLISTED_REQUEST = "unlisted-request-value";
const UNLISTED_RESPONSE = "unlisted-response-value";

/** Allow-lists as users write them: mixed case; `x-missing`/`x-absent` are never sent. */
const allowLists = {
  requestHeaders: ["X-Tenant", "x-MULTI", "x-missing"],
  responseHeaders: ["X-Resp-H", "X-ERR", "x-absent"],
  responseTrailers: ["x-resp-t", "x-err"],
};

/** Request headers of a call: listed ones, a repeated one, an unlisted one, a credential. */
function requestHeaders(fail = false): Headers {
  const headers = new Headers({ "x-tenant": "acme", "x-unlisted": UNLISTED_REQUEST, authorization: "Bearer t0k3n" });
  headers.append("x-multi", "a");
  headers.append("x-multi", "b");
  if (fail) headers.set(FAIL, "1");
  return headers;
}

/**
 * A UserService whose handlers set response header `x-resp-h: h`, trailer `x-resp-t: t`, an
 * unlisted header and two `set-cookie` headers, and answer as `createUserImpl()`; with the
 * {@link FAIL} request header, each fails with NOT_FOUND and metadata `x-err: e1` after doing
 * its work (server streams after their messages, so the error travels in the trailers).
 */
function metadataImpl(): ServiceImpl<typeof UserService> {
  const base = createUserImpl();
  const prepare = (ctx: HandlerContext) => {
    ctx.responseHeader.set("x-resp-h", "h");
    ctx.responseHeader.set("x-resp-unlisted", UNLISTED_RESPONSE);
    ctx.responseHeader.append("set-cookie", "a=1");
    ctx.responseHeader.append("set-cookie", "b=2");
    ctx.responseTrailer.set("x-resp-t", "t");
  };
  const failIfAsked = (ctx: HandlerContext) => {
    if (ctx.requestHeader.has(FAIL)) throw new ConnectError("refused", Code.NotFound, { "x-err": "e1" });
  };
  return {
    async fetchUser(req, ctx) {
      prepare(ctx);
      failIfAsked(ctx);
      return base.fetchUser(req, ctx);
    },
    async *streamUsers(req, ctx) {
      prepare(ctx);
      yield* base.streamUsers(req, ctx);
      failIfAsked(ctx);
    },
    async createUsers(reqs, ctx) {
      prepare(ctx);
      const response = await base.createUsers(reqs, ctx);
      failIfAsked(ctx);
      return response;
    },
    async *chat(reqs, ctx) {
      prepare(ctx);
      yield* base.chat(reqs, ctx);
      failIfAsked(ctx);
    },
  };
}

/** Server options by server name: each wire gets one server per entry. */
const serverOptions = {
  plain: {},
  stable: allowLists,
  dup: { ...allowLists, semconv: "dup" },
  legacy: { ...allowLists, semconv: "legacy" },
  deprecated: { requestMetadata: ["x-tenant"], responseMetadata: ["x-resp-h", "x-resp-t"] },
  sensitive: {
    requestHeaders: ["authorization"],
    responseHeaders: ["set-cookie"],
    allowSensitiveMetadata: ["Authorization", "SET-COOKIE"],
  },
} satisfies Record<string, TracedServiceOptions<typeof UserService>>;
type ServerName = keyof typeof serverOptions;

const spansOf = (mc: MethodCase) => callSpans(recorder, mc.spanName);

/** The header, trailer and metadata attributes (any generation) of `attributes`, sorted by key. */
function metadataOf(attributes: Attributes): Record<string, AttributeValue | undefined> {
  const entries = Object.entries(attributes).filter(([key]) =>
    /^rpc\.(request\.header|response\.header|response\.trailer)\.|\.metadata\./.test(key),
  );
  return Object.fromEntries(entries.sort(([a], [b]) => a.localeCompare(b)));
}

/** Every attribute key and string value of a span: its own, its events' and its links'. */
function everythingRecorded(span: ReadableSpan): string[] {
  const all: string[] = [];
  const add = (attributes: Attributes | undefined) => {
    for (const [key, value] of Object.entries(attributes ?? {})) {
      all.push(key);
      for (const v of Array.isArray(value) ? value : [value]) all.push(String(v));
    }
  };
  add(span.attributes);
  for (const event of span.events) add(event.attributes);
  for (const link of span.links) add(link.attributes);
  return all;
}

const sorted = (attrs: Record<string, string[]>) =>
  Object.fromEntries(Object.entries(attrs).sort(([a], [b]) => a.localeCompare(b)));

/** `rpc.grpc.` or `rpc.connect_rpc.`: where the legacy conventions put the metadata of `wire`. */
function legacyPrefix(wire: Wire): string {
  return wire.protocol === "connect" ? "rpc.connect_rpc." : "rpc.grpc.";
}

/** The stable request attributes of a call with {@link requestHeaders}. */
const stableRequest = { "rpc.request.header.x-multi": ["a, b"], "rpc.request.header.x-tenant": ["acme"] };

/**
 * The header and trailer attributes of a call to the allow-listed servers in `mode`: on success,
 * the request headers, response header `x-resp-h` and trailer `x-resp-t`. On failure (`failed`),
 * also `x-err: e1` of the ConnectError's metadata: a client reads headers and trailers merged from
 * it, so it counts for both lists that name `x-err`; a server records it where connect sends it,
 * in the response headers of a Connect unary call and in the trailers otherwise.
 */
function expectedMetadata(
  mode: SemconvMode,
  wire: Wire,
  side: "client" | "server",
  unary: boolean,
  failed: boolean,
): Record<string, string[]> {
  const header: Record<string, string[]> = { "x-resp-h": ["h"] };
  const trailer: Record<string, string[]> = { "x-resp-t": ["t"] };
  if (failed && (side === "client" || (wire.protocol === "connect" && unary))) header["x-err"] = ["e1"];
  if (failed && (side === "client" || !(wire.protocol === "connect" && unary))) trailer["x-err"] = ["e1"];
  const result: Record<string, string[]> = {};
  if (mode !== "legacy") {
    Object.assign(result, stableRequest);
    for (const [k, v] of Object.entries(header)) result[`rpc.response.header.${k}`] = v;
    for (const [k, v] of Object.entries(trailer)) result[`rpc.response.trailer.${k}`] = v;
  }
  if (mode !== "stable") {
    const p = legacyPrefix(wire);
    result[`${p}request.metadata.x-multi`] = ["a, b"];
    result[`${p}request.metadata.x-tenant`] = ["acme"];
    // one family: header values, then trailer values
    for (const k of new Set([...Object.keys(header), ...Object.keys(trailer)])) {
      result[`${p}response.metadata.${k}`] = [...(header[k] ?? []), ...(trailer[k] ?? [])];
    }
  }
  return sorted(result);
}

describe.each(wires)("$name", (wire: Wire) => {
  const servers = new Map<ServerName, TestServer>();
  const serverOf = (name: ServerName) => servers.get(name) as TestServer;
  beforeAll(async () => {
    for (const [name, options] of Object.entries(serverOptions)) {
      const server = await startServer(wire, (router) => {
        router.service(
          UserService,
          traceUserService(metadataImpl(), { tracerProvider: recorder.provider, ...(options as TracedServiceOptions) }),
        );
      });
      servers.set(name as ServerName, server);
    }
  });
  afterAll(async () => {
    for (const server of servers.values()) await server.close();
  });
  beforeEach(() => recorder.reset());
  afterEach(() => recorder.settle());

  const clientOf = (name: ServerName, options: TracedClientOptions) =>
    createTracedUserServiceClient(serverOf(name).transport(), { tracerProvider: recorder.provider, ...options });

  describe.each(methodCasesFor(wire))("$method", (mc) => {
    it.each<SemconvMode>(["stable", "dup", "legacy"])(
      "%s: listed request headers, response headers and trailers as string arrays, lowercased keys, on both sides",
      async (mode) => {
        await mc.run(clientOf(mode, { ...allowLists, semconv: mode, protocol: wire.protocol }), {
          headers: requestHeaders(),
        });
        const { client, server } = await spansOf(mc);
        const unary = mc.method === "FetchUser";
        expect(metadataOf(client.attributes)).toEqual(expectedMetadata(mode, wire, "client", unary, false));
        expect(metadataOf(server.attributes)).toEqual(expectedMetadata(mode, wire, "server", unary, false));
        // request headers are there at span start
        const atStart = Object.fromEntries(
          Object.entries(expectedMetadata(mode, wire, "client", unary, false)).filter(([k]) => k.includes("request")),
        );
        expect(metadataOf(recorder.startAttributes(client))).toEqual(atStart);
        expect(metadataOf(recorder.startAttributes(server))).toEqual(atStart);
        for (const span of [client, server]) {
          const recorded = everythingRecorded(span);
          for (const secret of [UNLISTED_REQUEST, UNLISTED_RESPONSE, "x-unlisted", "x-resp-unlisted", "t0k3n", "a=1"]) {
            expect(recorded.filter((r) => r.includes(secret))).toEqual([]);
          }
        }
      },
    );

    it("without allow-lists no metadata is recorded", async () => {
      await mc.run(clientOf("plain", {}), { headers: requestHeaders() });
      const { client, server } = await spansOf(mc);
      expect(metadataOf(client.attributes)).toEqual({});
      expect(metadataOf(server.attributes)).toEqual({});
    });

    it.each<SemconvMode>(["stable", "dup", "legacy"])(
      "%s failure: the ConnectError's metadata, as headers and trailers where each side gets it",
      async (mode) => {
        const error = await errorOf(
          mc.run(clientOf(mode, { ...allowLists, semconv: mode, protocol: wire.protocol }), {
            headers: requestHeaders(true),
          }),
        );
        expect(error.code).toBe(Code.NotFound);
        expect(error.metadata.get("x-err")).toBe("e1");
        const { client, server } = await spansOf(mc);
        const unary = mc.method === "FetchUser";
        expect(metadataOf(server.attributes)).toEqual(expectedMetadata(mode, wire, "server", unary, true));
        expect(metadataOf(client.attributes)).toEqual(expectedMetadata(mode, wire, "client", unary, true));
      },
    );

    it.each<SemconvMode>(["dup", "legacy"])(
      "%s without the protocol option: the client adds the legacy request names once the response tells the protocol",
      async (mode) => {
        await mc.run(clientOf(mode, { ...allowLists, semconv: mode }), { headers: requestHeaders() });
        const { client } = await spansOf(mc);
        const unary = mc.method === "FetchUser";
        expect(metadataOf(client.attributes)).toEqual(expectedMetadata(mode, wire, "client", unary, false));
        const atStart = metadataOf(recorder.startAttributes(client));
        expect(atStart).toEqual(mode === "dup" ? stableRequest : {});
      },
    );

    it("deprecated requestMetadata and responseMetadata: request headers, and a response key as header and trailer", async () => {
      await mc.run(clientOf("deprecated", serverOptions.deprecated), { headers: requestHeaders() });
      const { client, server } = await spansOf(mc);
      const expected = {
        "rpc.request.header.x-tenant": ["acme"],
        "rpc.response.header.x-resp-h": ["h"],
        "rpc.response.trailer.x-resp-t": ["t"],
      };
      expect(metadataOf(client.attributes)).toEqual(expected);
      expect(metadataOf(server.attributes)).toEqual(expected);
    });

    it("credential headers are recorded when allowSensitiveMetadata lists them", async () => {
      await mc.run(
        clientOf("sensitive", {
          requestHeaders: ["Authorization"],
          responseHeaders: ["Set-Cookie"],
          allowSensitiveMetadata: ["authorization", "set-cookie"],
        }),
        { headers: requestHeaders() },
      );
      const { client, server } = await spansOf(mc);
      const expected = {
        "rpc.request.header.authorization": ["Bearer t0k3n"],
        "rpc.response.header.set-cookie": ["a=1", "b=2"],
      };
      expect(metadataOf(client.attributes)).toEqual(expected);
      expect(metadataOf(server.attributes)).toEqual(expected);
    });

    it("deadline: client timeout_ms is CallOptions.timeoutMs; server remaining_ms an integer in [0, timeout]", async () => {
      await mc.run(clientOf("plain", {}), { timeoutMs: 4321 });
      const { client, server } = await spansOf(mc);
      expect(recorder.startAttributes(client)["connect_otel.timeout_ms"]).toBe(4321);
      expect(client.attributes["connect_otel.timeout_ms"]).toBe(4321);
      expect(client.attributes).not.toHaveProperty(["connect_otel.deadline.remaining_ms"]);
      const remaining = server.attributes["connect_otel.deadline.remaining_ms"];
      expect(Number.isInteger(remaining)).toBe(true);
      expect(remaining).toBeGreaterThanOrEqual(0);
      expect(remaining).toBeLessThanOrEqual(4321);
      expect(recorder.startAttributes(server)["connect_otel.deadline.remaining_ms"]).toBe(remaining);
      expect(server.attributes).not.toHaveProperty(["connect_otel.timeout_ms"]);
    });

    it("no deadline: neither attribute", async () => {
      await mc.run(clientOf("plain", {}));
      const { client, server } = await spansOf(mc);
      for (const span of [client, server]) {
        expect(span.attributes).not.toHaveProperty(["connect_otel.timeout_ms"]);
        expect(span.attributes).not.toHaveProperty(["connect_otel.deadline.remaining_ms"]);
      }
    });
  });
});

describe("allow-list validation at creation", () => {
  const transport = {
    unary: () => Promise.reject(new Error("not called")),
    stream: () => Promise.reject(new Error("not called")),
  } as never;
  const factories: [string, (options: Record<string, unknown>) => unknown][] = [
    ["createTracedUserServiceClient", (options) => createTracedUserServiceClient(transport, options)],
    ["traceUserService", (options) => traceUserService(createUserImpl(), options)],
  ];
  const thrownBy = (fn: () => unknown): unknown => {
    try {
      fn();
    } catch (error) {
      return error;
    }
    return undefined;
  };
  const credentialSpellings = ["authorization", "Cookie", "SET-COOKIE", "Proxy-Authorization"];

  it("the credential headers are exactly these four", () => {
    expect([...SENSITIVE_METADATA].sort()).toEqual(["authorization", "cookie", "proxy-authorization", "set-cookie"]);
  });

  describe.each(factories)("%s", (_name, create) => {
    describe.each(["requestHeaders", "responseHeaders", "responseTrailers", "requestMetadata", "responseMetadata"])(
      "%s",
      (option) => {
        it.each(credentialSpellings)("%s: TypeError naming the key and allowSensitiveMetadata", (key) => {
          const error = thrownBy(() => create({ [option]: ["x-ok", key] }));
          expect(error).toBeInstanceOf(TypeError);
          const message = (error as TypeError).message;
          expect(message).toContain(`"${key.toLowerCase()}"`);
          expect(message).toContain("allowSensitiveMetadata");
          expect(message).toContain(`option ${option}`);
        });

        it.each(credentialSpellings)("%s: accepted when allowSensitiveMetadata lists it (any case)", (key) => {
          expect(() => create({ [option]: [key], allowSensitiveMetadata: [key.toUpperCase()] })).not.toThrow();
        });

        it("allowing one credential header does not allow another", () => {
          expect(
            thrownBy(() => create({ [option]: ["cookie"], allowSensitiveMetadata: ["authorization"] })),
          ).toBeInstanceOf(TypeError);
        });

        it.each<[string, unknown]>([
          ["a space", "x tenant"],
          ["empty", ""],
          ["a colon", "x:tenant"],
          ["a newline", "x-tenant\n"],
          ["non-ASCII", "x-tenänt"],
          ["a number", 42],
          ["null", null],
        ])("a key with %s: TypeError naming the option", (_what, key) => {
          const error = thrownBy(() => create({ [option]: [key] }));
          expect(error).toBeInstanceOf(TypeError);
          expect((error as TypeError).message).toContain(`option ${option}`);
        });

        it("a string instead of an array: TypeError naming the option", () => {
          const error = thrownBy(() => create({ [option]: "x-tenant" }));
          expect(error).toBeInstanceOf(TypeError);
          expect((error as TypeError).message).toContain(`option ${option}`);
        });

        it("valid token characters are accepted", () => {
          expect(() => create({ [option]: ["x-tenant", "X_Custom.Key~1", "grpc-status-details-bin"] })).not.toThrow();
        });
      },
    );

    it("allowSensitiveMetadata that is not an array of strings: TypeError naming the option", () => {
      for (const value of ["authorization", [1]]) {
        const error = thrownBy(() => create({ allowSensitiveMetadata: value }));
        expect(error).toBeInstanceOf(TypeError);
        expect((error as TypeError).message).toContain("allowSensitiveMetadata");
      }
    });
  });
});
