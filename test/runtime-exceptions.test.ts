import { Code, type ConnectError } from "@connectrpc/connect";
import { SpanKind } from "@opentelemetry/api";
import {
  InMemoryLogRecordExporter,
  LoggerProvider,
  type ReadableLogRecord,
  SimpleLogRecordProcessor,
} from "@opentelemetry/sdk-logs";
import type { ReadableSpan } from "@opentelemetry/sdk-trace";
import type { ExceptionMode } from "connect-otel";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createTracedUserServiceClient, traceUserService } from "../generated/user/v1/user_otel.js";
import { UserService } from "../generated/user/v1/user_pb.js";
import type { TestServer } from "./support/servers.js";
import { startServer, wires } from "./support/servers.js";
import { createSpanRecorder, spanOf } from "./support/span-recorder.js";
import { installTestTracing } from "./support/tracing.js";
import { errorOf, methodCasesFor } from "./support/user-calls.js";
import { createFailingUserImpl, createUserImpl, THROW_TYPE_ERROR } from "./support/user-impl.js";

// Where a failed call's exception goes (`exceptions`: span, log, both): the span's `exception`
// event, and the log-based events of semconv v1.45.0 docs/rpc/rpc-exceptions.md —
// `rpc.client.call.exception` (severity WARN, 13) and `rpc.server.call.exception` (ERROR, 17) with
// `exception.type`, `exception.message` and `exception.stacktrace`, in the call's span context —
// recorded with the SDK's logger provider and an in-memory exporter.

installTestTracing();
const recorder = createSpanRecorder();
const logExporter = new InMemoryLogRecordExporter();
const loggerProvider = new LoggerProvider({ processors: [new SimpleLogRecordProcessor({ exporter: logExporter })] });

const exceptionEvents = (span: ReadableSpan) => span.events.filter((e) => e.name === "exception");

function logsNamed(name: string): ReadableLogRecord[] {
  return logExporter.getFinishedLogRecords().filter((r) => r.eventName === name);
}

/** The log record carries the span's context, the severity the conventions give, and the exception. */
function expectExceptionLog(
  record: ReadableLogRecord | undefined,
  span: ReadableSpan,
  severity: [number, string],
  type: string,
  message: string,
): void {
  expect(record, "log record").toBeDefined();
  expect(record?.spanContext?.traceId).toBe(span.spanContext().traceId);
  expect(record?.spanContext?.spanId).toBe(span.spanContext().spanId);
  expect([record?.severityNumber, record?.severityText]).toEqual(severity);
  expect(record?.instrumentationScope.name).toBe("connect-otel");
  expect(Object.keys(record?.attributes ?? {}).sort()).toEqual([
    "exception.message",
    "exception.stacktrace",
    "exception.type",
  ]);
  expect(record?.attributes["exception.type"]).toBe(type);
  expect(record?.attributes["exception.message"]).toBe(message);
  expect(String(record?.attributes["exception.stacktrace"])).toMatch(new RegExp(`^${type}: `));
}

const WARN: [number, string] = [13, "WARN"];
const ERROR: [number, string] = [17, "ERROR"];

describe.each(wires)("$name", (wire) => {
  const servers = new Map<ExceptionMode, TestServer>();
  let notFound: TestServer;
  let typeError: TestServer;
  const options = (exceptions: ExceptionMode) => ({ tracerProvider: recorder.provider, loggerProvider, exceptions });
  beforeAll(async () => {
    for (const mode of ["span", "log", "both"] as const) {
      const server = await startServer(wire, (router) => {
        router.service(UserService, traceUserService(createFailingUserImpl(Code.Unavailable, "down"), options(mode)));
      });
      servers.set(mode, server);
    }
    notFound = await startServer(wire, (router) => {
      router.service(
        UserService,
        traceUserService(createFailingUserImpl(Code.NotFound, "no such user"), options("log")),
      );
    });
    typeError = await startServer(wire, (router) => {
      router.service(UserService, traceUserService(createUserImpl(), options("log")));
    });
  });
  afterAll(async () => {
    for (const server of [...servers.values(), notFound, typeError]) await server.close();
  });
  beforeEach(() => {
    recorder.reset();
    logExporter.reset();
  });
  afterEach(() => recorder.settle());

  describe.each(methodCasesFor(wire))("$method failing with UNAVAILABLE", (mc) => {
    const run = async (mode: ExceptionMode): Promise<ConnectError> => {
      const server = servers.get(mode) as TestServer;
      const error = await errorOf(mc.run(createTracedUserServiceClient(server.transport(), options(mode))));
      expect(error.code).toBe(Code.Unavailable);
      return error;
    };

    it("log: one WARN event for the client and one ERROR event for the server, no span exception events", async () => {
      const error = await run("log");
      const client = await spanOf(recorder, mc.spanName, SpanKind.CLIENT);
      const server = await spanOf(recorder, mc.spanName, SpanKind.SERVER);
      expect(logsNamed("rpc.client.call.exception")).toHaveLength(1);
      expect(logsNamed("rpc.server.call.exception")).toHaveLength(1);
      expectExceptionLog(logsNamed("rpc.client.call.exception")[0], client, WARN, "ConnectError", error.message);
      expectExceptionLog(logsNamed("rpc.server.call.exception")[0], server, ERROR, "ConnectError", error.message);
      expect(exceptionEvents(client)).toEqual([]);
      expect(exceptionEvents(server)).toEqual([]);
      // the span still says what happened
      expect(client.attributes["error.type"]).toBeDefined();
      expect(server.attributes["error.type"]).toBeDefined();
    });

    it("both: the log events and an exception event on each span, with the same attributes", async () => {
      await run("both");
      const client = await spanOf(recorder, mc.spanName, SpanKind.CLIENT);
      const server = await spanOf(recorder, mc.spanName, SpanKind.SERVER);
      expect(logExporter.getFinishedLogRecords()).toHaveLength(2);
      expect(exceptionEvents(client)[0]?.attributes).toEqual(logsNamed("rpc.client.call.exception")[0]?.attributes);
      expect(exceptionEvents(server)[0]?.attributes).toEqual(logsNamed("rpc.server.call.exception")[0]?.attributes);
    });

    it("span (default): exception events on the spans and no log records", async () => {
      await run("span");
      expect(exceptionEvents(await spanOf(recorder, mc.spanName, SpanKind.CLIENT))).toHaveLength(1);
      expect(exceptionEvents(await spanOf(recorder, mc.spanName, SpanKind.SERVER))).toHaveLength(1);
      expect(logExporter.getFinishedLogRecords()).toEqual([]);
    });
  });

  it("NOT_FOUND: a client event only, since the code is no server error (grpc.md, connect-rpc.md)", async () => {
    const client = createTracedUserServiceClient(notFound.transport(), options("log"));
    const error = await errorOf(client.fetchUser({ userId: 1 }));
    expect(error.code).toBe(Code.NotFound);
    const span = await spanOf(recorder, "user.v1.UserService/FetchUser", SpanKind.CLIENT);
    expect(logsNamed("rpc.server.call.exception")).toEqual([]);
    expectExceptionLog(logsNamed("rpc.client.call.exception")[0], span, WARN, "ConnectError", error.message);
  });

  it("a TypeError in a handler: the server event has its type and message, the client's the ConnectError", async () => {
    const client = createTracedUserServiceClient(typeError.transport(), options("log"));
    const error = await errorOf(client.fetchUser({ userId: THROW_TYPE_ERROR }));
    expect(error.code).toBe(Code.Internal);
    const server = await spanOf(recorder, "user.v1.UserService/FetchUser", SpanKind.SERVER);
    expectExceptionLog(logsNamed("rpc.server.call.exception")[0], server, ERROR, "TypeError", "plain failure");
    const clientSpan = await spanOf(recorder, "user.v1.UserService/FetchUser", SpanKind.CLIENT);
    expectExceptionLog(logsNamed("rpc.client.call.exception")[0], clientSpan, WARN, "ConnectError", error.message);
  });
});
