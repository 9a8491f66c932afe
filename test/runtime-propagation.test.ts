import * as http from "node:http";
import { createClient } from "@connectrpc/connect";
import { SpanKind } from "@opentelemetry/api";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createTracedUserServiceClient, traceUserService } from "../generated/user/v1/user_otel.js";
import { UserService } from "../generated/user/v1/user_pb.js";
import type { TestServer } from "./support/servers.js";
import { startServer, wires } from "./support/servers.js";
import { createSpanRecorder, spanOf } from "./support/span-recorder.js";
import { installTestTracing, isChildOf } from "./support/tracing.js";
import { methodCasesFor } from "./support/user-calls.js";
import { createUserImpl } from "./support/user-impl.js";

// Incoming trace context: a valid traceparent is continued; a malformed one never fails the call
// and leaves the server span a root.

installTestTracing();
const recorder = createSpanRecorder();
const FETCH_USER = "user.v1.UserService/FetchUser";

const TRACE_ID = "0af7651916cd43dd8448eb211c80319c";
const SPAN_ID = "b7ad6b7169203331";
const valid = `00-${TRACE_ID}-${SPAN_ID}-01`;
const otherValid = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/** Malformed `traceparent` values (W3C Trace Context §3.2) and what is wrong with them. */
const malformed: readonly [string, string | string[]][] = [
  ["garbage", "garbage"],
  ["empty", ""],
  ["version ff", `ff-${TRACE_ID}-${SPAN_ID}-01`],
  ["version 00 with extra fields", `00-${TRACE_ID}-${SPAN_ID}-01-extra`],
  ["all-zero trace id", `00-00000000000000000000000000000000-${SPAN_ID}-01`],
  ["all-zero span id", `00-${TRACE_ID}-0000000000000000-01`],
  ["uppercase hex", `00-${TRACE_ID.toUpperCase()}-${SPAN_ID}-01`],
  ["short trace id", `00-${TRACE_ID.slice(2)}-${SPAN_ID}-01`],
  ["duplicated", [valid, otherValid]],
];

function headersWith(traceparent: string | string[]): Headers {
  const headers = new Headers();
  for (const value of Array.isArray(traceparent) ? traceparent : [traceparent]) headers.append("traceparent", value);
  return headers;
}

describe.each(wires)("$name", (wire) => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer(wire, (router) => {
      router.service(UserService, traceUserService(createUserImpl(), { tracerProvider: recorder.provider }));
    });
  });
  afterAll(() => server.close());
  beforeEach(() => recorder.reset());
  afterEach(() => recorder.settle());

  describe.each(methodCasesFor(wire))("$method", (mc) => {
    it("a valid incoming traceparent is continued (control)", async () => {
      await mc.run(createClient(UserService, server.transport()), { headers: headersWith(valid) });
      const serverSpan = await spanOf(recorder, mc.spanName, SpanKind.SERVER);
      expect(serverSpan.spanContext().traceId).toBe(TRACE_ID);
      expect(serverSpan.parentSpanContext?.spanId).toBe(SPAN_ID);
      expect(serverSpan.parentSpanContext?.isRemote).toBe(true);
    });

    it.each(malformed)("%s: the call succeeds and the server span is a root", async (_what, traceparent) => {
      const exchange = await mc.run(createClient(UserService, server.transport()), {
        headers: headersWith(traceparent),
      });
      expect(exchange.received).toHaveLength(mc.receivedCount);
      const serverSpan = await spanOf(recorder, mc.spanName, SpanKind.SERVER);
      expect(serverSpan.parentSpanContext).toBeUndefined();
      expect(serverSpan.spanContext().traceId).not.toBe(TRACE_ID);
      expect(serverSpan.spanContext().traceId).not.toMatch(/^0+$/);
    });

    it("a traced client replaces a traceparent given in the call headers", async () => {
      const client = createTracedUserServiceClient(server.transport(), { tracerProvider: recorder.provider });
      await mc.run(client, { headers: headersWith(valid) });
      const clientSpan = await spanOf(recorder, mc.spanName, SpanKind.CLIENT);
      const serverSpan = await spanOf(recorder, mc.spanName, SpanKind.SERVER);
      expect(isChildOf(serverSpan, clientSpan)).toBe(true);
      expect(serverSpan.spanContext().traceId).not.toBe(TRACE_ID);
    });
  });
});

describe("raw HTTP/1.1 request with two traceparent headers", () => {
  const wire = wires.find((w) => w.protocol === "connect" && w.httpVersion === "1.1");
  let server: TestServer;
  beforeAll(async () => {
    if (wire === undefined) throw new Error("no connect over http/1.1 wire");
    server = await startServer(wire, (router) => {
      router.service(UserService, traceUserService(createUserImpl(), { tracerProvider: recorder.provider }));
    });
  });
  afterAll(() => server.close());
  beforeEach(() => recorder.reset());
  afterEach(() => recorder.settle());

  /** POSTs a Connect JSON FetchUser with raw header lines; resolves with status and body. */
  function rawFetchUser(traceparents: readonly string[]): Promise<{ status: number; body: string }> {
    const url = new URL(`${server.baseUrl}/user.v1.UserService/FetchUser`);
    const body = JSON.stringify({ userId: 3 });
    const rawHeaders = ["host", url.host, "content-type", "application/json"];
    rawHeaders.push("content-length", String(Buffer.byteLength(body)));
    for (const value of traceparents) rawHeaders.push("traceparent", value);
    return new Promise((resolve, reject) => {
      const req = http.request(
        { host: url.hostname, port: url.port, path: url.pathname, method: "POST", headers: rawHeaders },
        (res) => {
          let text = "";
          res.setEncoding("utf8");
          res.on("data", (chunk: string) => {
            text += chunk;
          });
          res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
          res.on("error", reject);
        },
      );
      req.on("error", reject);
      req.end(body);
    });
  }

  it("one valid header is continued (control)", async () => {
    const res = await rawFetchUser([valid]);
    expect(res.status).toBe(200);
    const serverSpan = await spanOf(recorder, FETCH_USER, SpanKind.SERVER);
    expect(serverSpan.spanContext().traceId).toBe(TRACE_ID);
  });

  it("two valid but different headers: the call succeeds, the server span is a root", async () => {
    const res = await rawFetchUser([valid, otherValid]);
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toMatchObject({ id: 3, name: "user-3" });
    const serverSpan = await spanOf(recorder, FETCH_USER, SpanKind.SERVER);
    expect(serverSpan.parentSpanContext).toBeUndefined();
    expect([TRACE_ID, "4bf92f3577b34da6a3ce929d0e0e4736"]).not.toContain(serverSpan.spanContext().traceId);
  });

  it("the same valid header twice: the call succeeds, the server span is a root", async () => {
    const res = await rawFetchUser([valid, valid]);
    expect(res.status).toBe(200);
    const serverSpan = await spanOf(recorder, FETCH_USER, SpanKind.SERVER);
    expect(serverSpan.parentSpanContext).toBeUndefined();
  });
});
