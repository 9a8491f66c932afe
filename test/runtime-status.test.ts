import { Code, ConnectError, createClient } from "@connectrpc/connect";
import type { Attributes } from "@opentelemetry/api";
import { SpanKind, SpanStatusCode } from "@opentelemetry/api";
import type { ReadableSpan } from "@opentelemetry/sdk-trace";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createTracedUserServiceClient, traceUserService } from "../generated/user/v1/user_otel.js";
import { UserService } from "../generated/user/v1/user_pb.js";
import { serverErrorCodes, statusName } from "./support/semconv.js";
import type { TestServer } from "./support/servers.js";
import { startServer, wires } from "./support/servers.js";
import { createSpanRecorder, spanOf } from "./support/span-recorder.js";
import { installTestTracing } from "./support/tracing.js";
import type { MethodCase, UserClient } from "./support/user-calls.js";
import { collect, errorOf, iterate, methodCasesFor } from "./support/user-calls.js";
import { createFailingUserImpl, createUserImpl, ERROR_BASE, THROW_TYPE_ERROR } from "./support/user-impl.js";

// Status codes on both sides: span status, error.type, rpc.status_code, exception events.

installTestTracing();
const recorder = createSpanRecorder();
const FETCH_USER = "user.v1.UserService/FetchUser";
const codes = Array.from({ length: 16 }, (_, i) => i + 1) as Code[];

function exceptionEvents(span: ReadableSpan) {
  return span.events.filter((e) => e.name === "exception");
}

/**
 * The exception attributes of a ConnectError (semconv docs/exceptions/exceptions-spans.md):
 * `exception.type` its type, not the numeric `code` the API's `recordException` would take;
 * `exception.message` its message; `exception.stacktrace` its stack.
 */
function expectConnectErrorException(attrs: Attributes | undefined, error: ConnectError): void {
  expect(attrs?.["exception.type"], "the error's type, never its numeric code").toBe("ConnectError");
  expect(attrs?.["exception.message"]).toBe(error.message);
  expect(String(attrs?.["exception.stacktrace"])).toMatch(/^ConnectError: /);
}

/** Runs one method case's call and returns its error. */
function failingCall(mc: MethodCase, client: UserClient): Promise<ConnectError> {
  return errorOf(mc.run(client));
}

describe.each(wires)("$name", (wire) => {
  let server: TestServer;
  let emptyTraced: TestServer;
  let emptyUntraced: TestServer;
  beforeAll(async () => {
    server = await startServer(wire, (router) => {
      router.service(UserService, traceUserService(createUserImpl(), { tracerProvider: recorder.provider }));
    });
    emptyTraced = await startServer(wire, (router) => {
      router.service(UserService, traceUserService({}, { tracerProvider: recorder.provider }));
    });
    emptyUntraced = await startServer(wire, (router) => {
      router.service(UserService, {});
    });
  });
  afterAll(async () => {
    await server.close();
    await emptyTraced.close();
    await emptyUntraced.close();
  });
  beforeEach(() => recorder.reset());
  afterEach(() => recorder.settle());

  const traced = () => createTracedUserServiceClient(server.transport(), { tracerProvider: recorder.provider });

  describe.each(codes)("FetchUser failing with code %i", (code) => {
    const name = statusName(wire, code);

    it(`client span: ERROR, error.type and rpc.status_code ${name}, raw message, exception`, async () => {
      const error = await errorOf(traced().fetchUser({ userId: ERROR_BASE + code }));
      expect(error.code).toBe(code);
      expect(error.rawMessage).toBe(`failure ${code}`);
      const span = await spanOf(recorder, FETCH_USER, SpanKind.CLIENT);
      expect(span.status).toEqual({ code: SpanStatusCode.ERROR, message: `failure ${code}` });
      expect(span.attributes["error.type"]).toBe(name);
      expect(span.attributes["rpc.status_code"]).toBe(name);
      const exceptions = exceptionEvents(span);
      expect(exceptions).toHaveLength(1);
      expectConnectErrorException(exceptions[0]?.attributes, error);
    });

    const isServerError = serverErrorCodes.has(code);
    it(`server span: ${isServerError ? "ERROR" : "UNSET, no error.type"}, rpc.status_code ${name}`, async () => {
      await errorOf(traced().fetchUser({ userId: ERROR_BASE + code }));
      const span = await spanOf(recorder, FETCH_USER, SpanKind.SERVER);
      expect(span.attributes["rpc.status_code"]).toBe(name);
      if (isServerError) {
        expect(span.status).toEqual({ code: SpanStatusCode.ERROR, message: `failure ${code}` });
        expect(span.attributes["error.type"]).toBe(name);
        expect(exceptionEvents(span)).toHaveLength(1);
        const attrs = exceptionEvents(span)[0]?.attributes;
        expect(attrs?.["exception.type"], "the error's type, never its numeric code").toBe("ConnectError");
        expect(attrs?.["exception.message"]).toBe(new ConnectError(`failure ${code}`, code).message);
      } else {
        expect(span.status.code).toBe(SpanStatusCode.UNSET);
        expect(span.attributes).not.toHaveProperty(["error.type"]);
      }
    });
  });

  it("a TypeError in the handler is INTERNAL on both sides; the client sees ConnectError Internal", async () => {
    const error = await errorOf(traced().fetchUser({ userId: THROW_TYPE_ERROR }));
    expect(error.code).toBe(Code.Internal);
    const untraced = await startServer(wire, (router) => router.service(UserService, createUserImpl()));
    try {
      const plain = await errorOf(createClient(UserService, untraced.transport()).fetchUser({ userId: 999 }));
      expect(error.rawMessage).toBe(plain.rawMessage);
    } finally {
      await untraced.close();
    }
    const internal = statusName(wire, Code.Internal);
    for (const kind of [SpanKind.CLIENT, SpanKind.SERVER]) {
      const span = await spanOf(recorder, FETCH_USER, kind);
      expect(span.status.code).toBe(SpanStatusCode.ERROR);
      expect(span.attributes["rpc.status_code"]).toBe(internal);
      expect(span.attributes["error.type"]).toBe(internal);
      expect(exceptionEvents(span)).toHaveLength(1);
    }
    const serverSpan = await spanOf(recorder, FETCH_USER, SpanKind.SERVER);
    expect(serverSpan.status.message).toBe("plain failure");
    const thrown = exceptionEvents(serverSpan)[0]?.attributes;
    expect(thrown?.["exception.type"]).toBe("TypeError");
    expect(thrown?.["exception.message"]).toBe("plain failure");
    expect(String(thrown?.["exception.stacktrace"])).toMatch(/^TypeError: plain failure\n\s+at /);
    expectConnectErrorException(
      exceptionEvents(await spanOf(recorder, FETCH_USER, SpanKind.CLIENT))[0]?.attributes,
      error,
    );
  });

  describe.each(methodCasesFor(wire))("$method not implemented", (mc) => {
    it("answers UNIMPLEMENTED as an untraced router does, with an UNIMPLEMENTED server span", async () => {
      const tracedError = await failingCall(
        mc,
        createTracedUserServiceClient(emptyTraced.transport(), { tracerProvider: recorder.provider }),
      );
      const plainError = await failingCall(mc, createClient(UserService, emptyUntraced.transport()));
      expect(plainError.code).toBe(Code.Unimplemented);
      expect(plainError.rawMessage).toBe(`user.v1.UserService.${mc.method} is not implemented`);
      expect(tracedError.code).toBe(plainError.code);
      expect(tracedError.rawMessage).toBe(plainError.rawMessage);
      const unimplemented = statusName(wire, Code.Unimplemented);
      for (const kind of [SpanKind.CLIENT, SpanKind.SERVER]) {
        const span = await spanOf(recorder, mc.spanName, kind);
        expect(span.status).toEqual({ code: SpanStatusCode.ERROR, message: plainError.rawMessage });
        expect(span.attributes["rpc.status_code"]).toBe(unimplemented);
        expect(span.attributes["error.type"]).toBe(unimplemented);
      }
    });
  });

  it("a stream that fails after one message ends both spans INTERNAL", async () => {
    const received: unknown[] = [];
    const error = await errorOf(
      (async () => {
        for await (const user of traced().streamUsers({ pageSize: -1 })) received.push(user);
      })(),
    );
    expect(received).toHaveLength(1);
    expect(error.code).toBe(Code.Internal);
    const internal = statusName(wire, Code.Internal);
    for (const kind of [SpanKind.CLIENT, SpanKind.SERVER]) {
      const span = await spanOf(recorder, "user.v1.UserService/StreamUsers", kind);
      expect(span.status).toEqual({ code: SpanStatusCode.ERROR, message: "stream broke" });
      expect(span.attributes["rpc.status_code"]).toBe(internal);
      expect(span.attributes["error.type"]).toBe(internal);
      expect(span.attributes["connect_otel.messages.received"]).toBe(1);
      expect(span.attributes["connect_otel.messages.sent"]).toBe(1);
    }
  });

  describe.each([
    [Code.PermissionDenied, false],
    [Code.DataLoss, true],
  ] as const)("every method kind failing with code %i", (code, isServerError) => {
    let failing: TestServer;
    beforeAll(async () => {
      failing = await startServer(wire, (router) => {
        router.service(
          UserService,
          traceUserService(createFailingUserImpl(code, "kind failed"), { tracerProvider: recorder.provider }),
        );
      });
    });
    afterAll(() => failing.close());

    it.each(methodCasesFor(wire))("$method: client ERROR, server by the server rule", async (mc) => {
      const client = createTracedUserServiceClient(failing.transport(), { tracerProvider: recorder.provider });
      let error: ConnectError;
      if (mc.kind === "bidi_streaming") {
        // keep the request stream open until the server has failed
        error = await errorOf(collect(client.chat(iterate([{ message: "a" }, { message: "b" }]))));
      } else {
        error = await failingCall(mc, client);
      }
      expect(error.code).toBe(code);
      expect(error.rawMessage).toBe("kind failed");
      const name = statusName(wire, code);
      const clientSpan = await spanOf(recorder, mc.spanName, SpanKind.CLIENT);
      expect(clientSpan.status).toEqual({ code: SpanStatusCode.ERROR, message: "kind failed" });
      expect(clientSpan.attributes["error.type"]).toBe(name);
      const serverSpan = await spanOf(recorder, mc.spanName, SpanKind.SERVER);
      expect(serverSpan.attributes["rpc.status_code"]).toBe(name);
      if (isServerError) {
        expect(serverSpan.status).toEqual({ code: SpanStatusCode.ERROR, message: "kind failed" });
        expect(serverSpan.attributes["error.type"]).toBe(name);
      } else {
        expect(serverSpan.status.code).toBe(SpanStatusCode.UNSET);
        expect(serverSpan.attributes).not.toHaveProperty(["error.type"]);
      }
    });
  });
});
