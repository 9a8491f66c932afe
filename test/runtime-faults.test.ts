import * as net from "node:net";
import type { Interceptor } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import { SpanKind, SpanStatusCode } from "@opentelemetry/api";
import type { ReadableSpan } from "@opentelemetry/sdk-trace";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createTracedUserServiceClient, traceUserService } from "../generated/user/v1/user_otel.js";
import { UserService } from "../generated/user/v1/user_pb.js";
import type { CallControl, CallOutcome } from "./support/call-outcomes.js";
import { observeCall } from "./support/call-outcomes.js";
import type { GrpcJsUserClient } from "./support/grpc-js-client.js";
import { createGrpcJsUserClient, statusOf } from "./support/grpc-js-client.js";
import type { Step } from "./support/scenario-runs.js";
import { runStep } from "./support/scenario-runs.js";
import type { HandlerView, Scenario } from "./support/scenario-service.js";
import { CALL_ID_HEADER, createScenarioService, scenarioHeaders, viewsOf } from "./support/scenario-service.js";
import { serverErrorCodes, statusName } from "./support/semconv.js";
import type { ServerProcess } from "./support/server-process.js";
import { startServerProcess } from "./support/server-process.js";
import type { TestServer, Wire } from "./support/servers.js";
import { startServer, wires } from "./support/servers.js";
import { aborted, HANG_GUARD_MS } from "./support/signals.js";
import { createSpanRecorder, spanOf } from "./support/span-recorder.js";
import { installTestTracing, isChildOf, waitFor } from "./support/tracing.js";
import { hideDeadline, serverOnlyDeadline, transportWith } from "./support/transports.js";
import type { MethodCase, UserClient } from "./support/user-calls.js";
import { methodCasesFor } from "./support/user-calls.js";

// Fault matrix: under every fault a call can meet, every span that was started ends exactly once,
// with the status of what happened. The recorder's span processor counts onStart, end() and onEnd
// per span id; `settle()` after each test polls (bounded) until no span is open and fails on a
// span that never ended or ended twice.

installTestTracing();
const recorder = createSpanRecorder();

type Kind = MethodCase["kind"];
const responseStreams: readonly Kind[] = ["server_streaming", "bidi_streaming"];
const requestStreams: readonly Kind[] = ["client_streaming", "bidi_streaming"];

/** Where a call of the matrix runs: a traced scenario server and what its handlers saw. */
interface Env {
  readonly wire: Wire;
  readonly server: TestServer;
  readonly views: HandlerView[];
  /** A traced client of the server, through `interceptors`. */
  client(interceptors?: Interceptor[]): UserClient;
}

interface FaultCase {
  readonly title: string;
  readonly kinds: readonly Kind[];
  /** Makes the faulty call; resolves with the code of the caller's error (0: no error). */
  run(env: Env, mc: MethodCase): Promise<Code | 0>;
  /** Code the client span must carry (0: OK), and the caller must get unless {@link caller} says. */
  readonly client: Code | 0;
  /** Code of the caller's error when it differs from the span's (0: no error). */
  readonly caller?: Code | 0;
  /**
   * Codes the server span may end with (one of them). `optional`: the server span may be missing,
   * as when the call was aborted before it began.
   */
  readonly server: readonly (Code | 0)[];
  readonly optional?: boolean;
}

/** The code of the error a call failed with, 0 if it succeeded; fails the test for a non-ConnectError. */
function callerCode(outcome: CallOutcome): Code | 0 {
  if (outcome.error === undefined) return 0;
  expect(outcome.error, "the caller got a ConnectError").toMatchObject({ isConnectError: true });
  return outcome.error.code as Code;
}

/** Runs a scenario call with `control` through `interceptors`; resolves with the caller's code. */
async function scenarioCall(
  env: Env,
  mc: MethodCase,
  scenario: Scenario,
  control: Omit<CallControl, "headers"> = {},
  interceptors?: Interceptor[],
): Promise<Code | 0> {
  const outcome = await observeCall(mc, env.client(interceptors), {
    headers: scenarioHeaders(scenario),
    holdRequests: scenario.kind === "hold" || scenario.kind === "sleep",
    ...control,
  });
  return callerCode(outcome);
}

/** Reads a response stream of the `hold` scenario until the first message, then breaks out of the loop. */
async function breakAfterFirst(env: Env, mc: MethodCase): Promise<Code | 0> {
  const hold = new AbortController();
  const headers = scenarioHeaders({ kind: "hold" });
  const client = env.client();
  let read = 0;
  try {
    const stream =
      mc.kind === "server_streaming"
        ? client.streamUsers({ pageSize: 3 }, { headers })
        : client.chat(
            (async function* () {
              yield { message: "a" };
              await aborted(hold.signal);
            })(),
            { headers },
          );
    for await (const _ of stream) {
      read++;
      break;
    }
  } finally {
    hold.abort();
  }
  expect(read).toBe(1);
  return 0;
}

/**
 * A client-streaming or bidi call whose request stream throws: before its first message, or
 * after the handler has read the first one.
 */
async function requestStreamThrows(env: Env, mc: MethodCase, after: "none" | "first"): Promise<Code | 0> {
  const headers = scenarioHeaders({ kind: "ok" });
  const client = env.client();
  async function* requests() {
    if (after === "first") {
      yield { name: "a", message: "a" };
      await waitFor(() => viewsOf(env.views, headers).some((v) => v.requests.length > 0));
    }
    throw new Error("request source failed");
  }
  try {
    if (mc.kind === "client_streaming") await client.createUsers(requests(), { headers });
    else for await (const _ of client.chat(requests(), { headers }));
  } catch (error) {
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as ConnectError).cause).toMatchObject({ message: "request source failed" });
    return (error as ConnectError).code;
  }
  return 0;
}

/**
 * The interop case `cancel_after_first_response` on connect's clients: a client-streaming or bidi
 * call that sends its first request and keeps its request stream open, to a handler that answers
 * each request and ends when the requests end (`ok`); the caller aborts once the first response
 * arrived (bidi) or once the handler read the first request (client streaming). connect-node's
 * HTTP/2 transports then end the request stream and reset it: the handler may see a normal end of
 * its requests and return before the reset reaches connect.
 */
async function cancelWhileHandlerWaits(env: Env, mc: MethodCase): Promise<Code | 0> {
  const headers = scenarioHeaders({ kind: "ok" });
  const controller = new AbortController();
  const readFirst =
    mc.kind === "client_streaming"
      ? waitFor(() => viewsOf(env.views, headers).some((v) => v.requests.length > 0), HANG_GUARD_MS).finally(() =>
          controller.abort(),
        )
      : undefined;
  const outcome = await observeCall(mc, env.client(), {
    headers,
    holdRequests: true,
    signal: controller.signal,
    onReceived: () => controller.abort(),
  });
  await readFirst;
  return callerCode(outcome);
}

/** The deadline of the `timeout_on_sleeping_server` cases, ms; their handlers sleep twice as long. */
const SLEEPING_DEADLINE_MS = 100;

const cases: readonly FaultCase[] = [
  {
    title: "handler throws a TypeError before the first message",
    kinds: ["unary", "server_streaming", "client_streaming", "bidi_streaming"],
    run: (env, mc) => scenarioCall(env, mc, { kind: "fail", code: "plain", when: "before" }),
    client: Code.Internal,
    server: [Code.Internal],
  },
  {
    title: "handler throws PERMISSION_DENIED after the first message",
    kinds: ["server_streaming", "client_streaming", "bidi_streaming"],
    run: (env, mc) => scenarioCall(env, mc, { kind: "fail", code: Code.PermissionDenied, when: "after-first" }),
    client: Code.PermissionDenied,
    server: [Code.PermissionDenied],
  },
  {
    title: "handler throws UNAVAILABLE after the first message",
    kinds: ["server_streaming", "client_streaming", "bidi_streaming"],
    run: (env, mc) => scenarioCall(env, mc, { kind: "fail", code: Code.Unavailable, when: "after-first" }),
    client: Code.Unavailable,
    server: [Code.Unavailable],
  },
  {
    title: "client aborts before the call",
    kinds: ["unary", "server_streaming", "client_streaming", "bidi_streaming"],
    run: (env, mc) => scenarioCall(env, mc, { kind: "hold" }, { signal: AbortSignal.abort() }),
    client: Code.Canceled,
    // connect-node's HTTP/2 transports still open the stream and reset it at once: a handler may
    // run, see an empty request stream and answer before the reset arrives; its span says CANCELLED
    server: [Code.Canceled],
    optional: true,
  },
  {
    title: "client cancels while the handler waits for more requests (interop cancel_after_first_response)",
    kinds: requestStreams,
    run: cancelWhileHandlerWaits,
    client: Code.Canceled,
    server: [Code.Canceled],
  },
  {
    title: "deadline passes while the handler sleeps (interop timeout_on_sleeping_server)",
    kinds: ["unary", "server_streaming", "client_streaming", "bidi_streaming"],
    run: (env, mc) =>
      scenarioCall(env, mc, { kind: "sleep", ms: 2 * SLEEPING_DEADLINE_MS }, { timeoutMs: SLEEPING_DEADLINE_MS }),
    client: Code.DeadlineExceeded,
    // the client's reset at its deadline may reach the server before the server's own deadline
    // passes: the sleeping handler is still at work then, and the span waits for the deadline
    server: [Code.DeadlineExceeded],
  },
  {
    title: "client aborts mid-call",
    kinds: ["unary", "server_streaming", "client_streaming", "bidi_streaming"],
    run: async (env, mc) => {
      const step: Step = { title: "abort mid-call", scenario: { kind: "hold" }, cancel: "mid-call" };
      return callerCode((await runStep(env, mc, step)).call);
    },
    client: Code.Canceled,
    server: [Code.Canceled],
  },
  {
    title: "client aborts after completion",
    kinds: ["unary", "server_streaming", "client_streaming", "bidi_streaming"],
    async run(env, mc) {
      const controller = new AbortController();
      const code = await scenarioCall(env, mc, { kind: "ok" }, { signal: controller.signal });
      controller.abort();
      return code;
    },
    client: 0,
    server: [0],
  },
  {
    title: "deadline (timeoutMs) known to both sides",
    kinds: ["unary", "server_streaming", "client_streaming", "bidi_streaming"],
    run: (env, mc) => scenarioCall(env, mc, { kind: "hold" }, { timeoutMs: 100 }),
    client: Code.DeadlineExceeded,
    // whichever side's timer fires first
    server: [Code.DeadlineExceeded, Code.Canceled],
  },
  {
    title: "deadline on the client only (the server never learns it)",
    kinds: ["unary", "server_streaming", "client_streaming", "bidi_streaming"],
    run: (env, mc) => scenarioCall(env, mc, { kind: "hold" }, { timeoutMs: 100 }, [hideDeadline]),
    client: Code.DeadlineExceeded,
    server: [Code.Canceled],
  },
  {
    title: "deadline passed in transit (the server gets a deadline of 0 and answers anyway)",
    kinds: ["unary", "server_streaming", "client_streaming", "bidi_streaming"],
    run: (env, mc) => scenarioCall(env, mc, { kind: "ok" }, {}, [serverOnlyDeadline(env.wire.protocol, 0)]),
    // connect answers a handler that ignores its deadline, and this client has none of its own
    client: 0,
    // HandlerContext.signal has aborted before the handler starts, so no abort event comes: the
    // span says the deadline passed, as when connect's deadline timer fires while a handler runs
    server: [Code.DeadlineExceeded],
  },
  {
    title: "deadline on the server only (the client has no timeout)",
    kinds: ["unary", "server_streaming", "client_streaming", "bidi_streaming"],
    run: (env, mc) => scenarioCall(env, mc, { kind: "hold" }, {}, [serverOnlyDeadline(env.wire.protocol, 100)]),
    client: Code.DeadlineExceeded,
    server: [Code.DeadlineExceeded],
  },
  {
    title: "consumer breaks out of the response stream",
    kinds: responseStreams,
    run: breakAfterFirst,
    client: Code.Canceled,
    caller: 0,
    server: [Code.Canceled],
  },
  {
    title: "request stream throws before its first message",
    kinds: requestStreams,
    run: (env, mc) => requestStreamThrows(env, mc, "none"),
    // connect's transport answers with INTERNAL, the source's error as cause
    client: Code.Internal,
    // the client resets the stream. Over HTTP/1.1 the server learns it as a client that went away;
    // over HTTP/2 connect-node reads the reset as the end of the request body and the handler may
    // answer before the reset arrives: the span still says CANCELLED
    server: [Code.Canceled],
  },
  {
    title: "request stream throws after its first message",
    kinds: requestStreams,
    run: (env, mc) => requestStreamThrows(env, mc, "first"),
    // connect's transport answers with INTERNAL, the source's error as cause
    client: Code.Internal,
    server: [Code.Canceled],
  },
];

/** Asserts a span's `rpc.status_code` and status for `code` on `side` (semconv rules). */
function expectStatus(wire: Wire, span: ReadableSpan, side: "client" | "server", code: Code | 0): void {
  expect(span.attributes["rpc.status_code"]).toBe(statusName(wire, code));
  const isError = code !== 0 && (side === "client" || serverErrorCodes.has(code));
  expect(span.status.code).toBe(isError ? SpanStatusCode.ERROR : SpanStatusCode.UNSET);
}

describe.each(wires)("$name", (wire) => {
  const views: HandlerView[] = [];
  let env: Env;
  beforeAll(async () => {
    const server = await startServer(wire, (router) => {
      router.service(
        UserService,
        traceUserService(createScenarioService(views), { tracerProvider: recorder.provider }),
      );
    });
    env = {
      wire,
      server,
      views,
      client: (interceptors = []) =>
        createTracedUserServiceClient(transportWith(wire, server.baseUrl, interceptors), {
          tracerProvider: recorder.provider,
          protocol: wire.protocol,
        }),
    };
  });
  afterAll(() => env.server.close());
  beforeEach(() => recorder.reset());
  afterEach(async () => {
    await recorder.settle();
    // handlers of this test are done (a late one of an aborted call included): forget them
    await waitFor(() => views.every((v) => v.finished.isOpen));
    views.length = 0;
  });

  describe.each(methodCasesFor(wire))("$method", (mc) => {
    it.each(cases.filter((c) => c.kinds.includes(mc.kind)))("$title", async (fault) => {
      expect(await fault.run(env, mc)).toBe(fault.caller ?? fault.client);
      const clientSpan = await spanOf(recorder, mc.spanName, SpanKind.CLIENT);
      expectStatus(wire, clientSpan, "client", fault.client);
      // the server span of this call is the client span's child (a late one of an earlier test is not)
      const ownServerSpans = () =>
        recorder.spans().filter((s) => s.kind === SpanKind.SERVER && isChildOf(s, clientSpan));
      if (fault.optional === true) await recorder.settle();
      else await waitFor(() => ownServerSpans().length > 0);
      for (const serverSpan of ownServerSpans()) {
        const status = serverSpan.attributes["rpc.status_code"];
        const code = fault.server.find((c) => status === statusName(wire, c));
        expect(code, `server span status ${String(status)}`).toBeDefined();
        expectStatus(wire, serverSpan, "server", code as Code | 0);
      }
      await recorder.settle();
      expect(ownServerSpans().length).toBeLessThanOrEqual(1);
      for (const span of recorder.spans()) expect(recorder.endCalls(span)).toBe(1);
    });
  });
});

describe.each(wires)("$name: the server process is killed mid-stream", (wire) => {
  let child: ServerProcess;
  beforeEach(async () => {
    recorder.reset();
    child = await startServerProcess(wire);
  });
  afterEach(async () => {
    await child.kill();
    await recorder.settle();
  });

  it.each(methodCasesFor(wire).filter((mc) => responseStreams.includes(mc.kind)))(
    "$method: the call fails, the client span ends once with the call's code",
    async (mc) => {
      const client = createTracedUserServiceClient(child.transport(), {
        tracerProvider: recorder.provider,
        protocol: wire.protocol,
      });
      const outcome = await observeCall(mc, client, {
        headers: scenarioHeaders({ kind: "hold" }),
        holdRequests: true,
        onReceived: () => void child.kill(),
      });
      expect(outcome.received).toHaveLength(1);
      expect(outcome.error?.isConnectError).toBe(true);
      const code = outcome.error?.code as Code;
      // what connect-node reports for the reset: CANCELED for an HTTP/2 stream closed with CANCEL,
      // ABORTED for "aborted" / "read ECONNRESET"
      expect([Code.Canceled, Code.Aborted, Code.Unavailable]).toContain(code);
      const clientSpan = await spanOf(recorder, mc.spanName, SpanKind.CLIENT);
      expectStatus(wire, clientSpan, "client", code);
      expect(clientSpan.attributes["connect_otel.messages.received"]).toBe(1);
      await recorder.settle();
      expect(recorder.endCalls(clientSpan)).toBe(1);
    },
  );
});

describe.each(wires)("$name: the transport cannot connect", (wire) => {
  let closedPort: number;
  beforeAll(async () => {
    // a port that was just free on loopback and has no listener now
    const probe = net.createServer();
    await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
    closedPort = (probe.address() as net.AddressInfo).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
  });
  beforeEach(() => recorder.reset());
  afterEach(() => recorder.settle());

  it.each(methodCasesFor(wire))("$method: UNAVAILABLE, the client span ends once", async (mc) => {
    const client = createTracedUserServiceClient(transportWith(wire, `http://127.0.0.1:${closedPort}`, []), {
      tracerProvider: recorder.provider,
      protocol: wire.protocol,
    });
    const outcome = await observeCall(mc, client, { headers: scenarioHeaders({ kind: "ok" }) });
    expect(outcome.error?.code).toBe(Code.Unavailable);
    const clientSpan = await spanOf(recorder, mc.spanName, SpanKind.CLIENT);
    expectStatus(wire, clientSpan, "client", Code.Unavailable);
    await recorder.settle();
    expect(recorder.endCalls(clientSpan)).toBe(1);
    expect(recorder.spans()).toHaveLength(1);
  });
});

describe("a @grpc/grpc-js client: the interop cases that cut a call off (gRPC over HTTP/2)", () => {
  // grpc/doc/interop-test-descriptions.md: `cancel_after_first_response` and
  // `timeout_on_sleeping_server` on FullDuplexCall, here UserService.Chat of the scenario service,
  // with the server in dup mode to check the old `rpc.grpc.status_code` as well. Each case runs a
  // few times: before the server span waited for the exchange, the reset often lost the race.
  const RUNS = 3;
  const CHAT = "user.v1.UserService/Chat";
  const wire = wires.find((w) => w.protocol === "grpc") as Wire;
  const views: HandlerView[] = [];
  let server: TestServer;
  let client: GrpcJsUserClient;
  beforeAll(async () => {
    server = await startServer(wire, (router) => {
      router.service(
        UserService,
        traceUserService(createScenarioService(views), {
          tracerProvider: recorder.provider,
          semconv: "dup",
          requestHeaders: [CALL_ID_HEADER],
        }),
      );
    });
    client = createGrpcJsUserClient(server.baseUrl);
  });
  afterAll(async () => {
    client.close();
    await server.close();
  });
  beforeEach(() => recorder.reset());
  afterEach(async () => {
    await recorder.settle();
    await waitFor(() => views.every((v) => v.finished.isOpen));
    views.length = 0;
  });

  /** The server spans of the call made with these request `headers` (by their call id). */
  const serverSpansOf = (headers: Headers) =>
    recorder
      .spans()
      .filter(
        (s) =>
          s.kind === SpanKind.SERVER &&
          String(s.attributes[`rpc.request.header.${CALL_ID_HEADER}`]) === headers.get(CALL_ID_HEADER),
      );

  /** Asserts the status attributes of a server span of the grpc wire in dup mode. */
  function expectServerSpan(span: ReadableSpan, code: Code, what: string): void {
    expect(span.name).toBe(CHAT);
    expect(span.attributes["rpc.status_code"], what).toBe(statusName(wire, code));
    expect(span.attributes["rpc.grpc.status_code"], what).toBe(code);
    expectStatus(wire, span, "server", code);
  }

  /**
   * A Chat call that completes: once it did, the server has read every frame that the client
   * sent before it on the same HTTP/2 connection, and started the handlers of those calls.
   */
  async function roundTrip(): Promise<void> {
    const call = client.chat(scenarioHeaders({ kind: "ok" }));
    const status = statusOf(call);
    call.write({ user: "ada", message: "ping" });
    call.end();
    call.resume();
    expect((await status).code).toBe(0);
  }

  it("cancel_after_first_response: the server span says CANCELLED", async () => {
    for (let run = 1; run <= RUNS; run++) {
      const headers = scenarioHeaders({ kind: "ok" });
      const call = client.chat(headers);
      const status = statusOf(call);
      call.once("data", () => call.cancel());
      call.write({ user: "ada", message: "hello" });
      expect((await status).code, `grpc-js status, run ${run}`).toBe(Code.Canceled);
      await waitFor(() => serverSpansOf(headers).length > 0);
      expectServerSpan(serverSpansOf(headers)[0] as ReadableSpan, Code.Canceled, `run ${run}`);
    }
  });

  it("timeout_on_sleeping_server, 1 ms deadline as in the interop case: a call that reached the server says DEADLINE_EXCEEDED", async () => {
    // With a 1 ms deadline the client may give up before the server has the call: then there is
    // no server span. The loop is bounded; at least one call must reach the server.
    let reached = 0;
    for (let run = 1; run <= 10 && reached < RUNS; run++) {
      const headers = scenarioHeaders({ kind: "sleep", ms: 50 });
      const call = client.chat(headers, new Date(Date.now() + 1));
      const status = statusOf(call);
      call.write({ user: "ada", message: "x".repeat(27182) });
      expect((await status).code, `grpc-js status, run ${run}`).toBe(Code.DeadlineExceeded);
      await roundTrip();
      await recorder.settle();
      const spans = serverSpansOf(headers);
      expect(spans.length).toBeLessThanOrEqual(1);
      if (spans.length === 0) continue;
      reached++;
      expectServerSpan(spans[0] as ReadableSpan, Code.DeadlineExceeded, `run ${run}`);
    }
    expect(reached, "calls that reached the server").toBeGreaterThan(0);
  });

  it("timeout_on_sleeping_server, 100 ms deadline: the server span says DEADLINE_EXCEEDED whoever's timer fires first", async () => {
    for (let run = 1; run <= RUNS; run++) {
      const headers = scenarioHeaders({ kind: "sleep", ms: 2 * SLEEPING_DEADLINE_MS });
      const call = client.chat(headers, new Date(Date.now() + SLEEPING_DEADLINE_MS));
      const status = statusOf(call);
      call.write({ user: "ada", message: "hello" });
      expect((await status).code, `grpc-js status, run ${run}`).toBe(Code.DeadlineExceeded);
      await waitFor(() => serverSpansOf(headers).length > 0);
      expectServerSpan(serverSpansOf(headers)[0] as ReadableSpan, Code.DeadlineExceeded, `run ${run}`);
    }
  });
});
