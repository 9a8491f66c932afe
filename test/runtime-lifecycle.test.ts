import type { CallOptions, ServiceImpl } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import { SpanKind, SpanStatusCode } from "@opentelemetry/api";
import type { ReadableSpan } from "@opentelemetry/sdk-trace";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createTracedUserServiceClient, traceUserService } from "../generated/user/v1/user_otel.js";
import { UserService } from "../generated/user/v1/user_pb.js";
import { statusName } from "./support/semconv.js";
import type { TestServer, Wire } from "./support/servers.js";
import { startServer, wires } from "./support/servers.js";
import type { Latch } from "./support/signals.js";
import { aborted, createLatch, delay, HANG_GUARD_MS, within } from "./support/signals.js";
import { createSpanRecorder, durationMs, spanOf } from "./support/span-recorder.js";
import { installTestTracing } from "./support/tracing.js";
import { hideDeadline, transportWith } from "./support/transports.js";
import type { MethodCase, UserClient } from "./support/user-calls.js";
import { methodCasesFor } from "./support/user-calls.js";
import { createUserImpl } from "./support/user-impl.js";

// Every span ends exactly once: completion, client abort (before, during, after the call), deadline,
// a consumer that stops reading, a request stream that throws. The recorder counts end() calls per
// span and fails the test (afterEach settle) for a span ended twice or never.

installTestTracing();
const recorder = createSpanRecorder();

/** Milestones of the current test's call, opened by the slow handlers. */
let milestones = { handlerStarted: createLatch(), firstRequest: createLatch() };

/**
 * A UserService that never finishes on its own: every method runs until its `HandlerContext.signal`
 * aborts (client cancel or deadline), as a well-behaved slow handler does. StreamUsers yields a
 * user every 5 ms; CreateUsers and Chat read their requests first.
 */
const slowImpl: ServiceImpl<typeof UserService> = {
  async fetchUser(_req, ctx) {
    milestones.handlerStarted.open();
    await aborted(ctx.signal);
    throw ctx.signal.reason;
  },
  async *streamUsers(_req, ctx) {
    milestones.handlerStarted.open();
    for (let i = 1; ; i++) {
      yield { id: i };
      await delay(5, ctx.signal);
    }
  },
  async createUsers(reqs, ctx) {
    milestones.handlerStarted.open();
    for await (const _ of reqs) milestones.firstRequest.open();
    await aborted(ctx.signal);
    throw ctx.signal.reason;
  },
  async *chat(reqs, ctx) {
    milestones.handlerStarted.open();
    for await (const m of reqs) {
      milestones.firstRequest.open();
      yield { message: `echo ${m.message}` };
    }
    await aborted(ctx.signal);
    throw ctx.signal.reason;
  },
};

/** Yields `first`, then holds the request stream open until `signal` aborts. */
async function* oneThenHold<T>(first: T, signal: AbortSignal): AsyncGenerator<T> {
  yield first;
  await aborted(signal);
}

/**
 * Starts a call of `mc`'s method kind against the slow service and returns a promise of its
 * outcome, reading (for response streams) until the first message has arrived and then on.
 * `onProgress` runs once the call is under way: the handler runs and (for streams) a message went
 * through. Resolves with the error the call ended with, or undefined.
 */
async function slowCall(
  mc: MethodCase,
  client: UserClient,
  options: CallOptions,
  holdSignal: AbortSignal,
  onProgress: () => void,
): Promise<unknown> {
  try {
    switch (mc.kind) {
      case "unary": {
        const pending = client.fetchUser({ userId: 1 }, options);
        void milestones.handlerStarted.opened.then(onProgress);
        await pending;
        break;
      }
      case "server_streaming":
        for await (const _ of client.streamUsers({ pageSize: 1 }, options)) onProgress();
        break;
      case "client_streaming": {
        const pending = client.createUsers(oneThenHold({ name: "a" }, holdSignal), options);
        void milestones.firstRequest.opened.then(onProgress);
        await pending;
        break;
      }
      case "bidi_streaming":
        for await (const _ of client.chat(oneThenHold({ message: "a" }, holdSignal), options)) onProgress();
        break;
    }
  } catch (error) {
    return error;
  }
  return undefined;
}

function expectCode(error: unknown, code: Code): void {
  expect(error).toBeInstanceOf(ConnectError);
  expect((error as ConnectError).code).toBe(code);
}

function expectClientStatus(wire: Wire, span: ReadableSpan, code: Code): void {
  expect(span.status.code).toBe(SpanStatusCode.ERROR);
  expect(span.attributes["rpc.status_code"]).toBe(statusName(wire, code));
  expect(span.attributes["error.type"]).toBe(statusName(wire, code));
}

describe.each(wires)("$name", (wire) => {
  let slow: TestServer;
  let normal: TestServer;
  beforeAll(async () => {
    slow = await startServer(wire, (router) => {
      router.service(UserService, traceUserService(slowImpl, { tracerProvider: recorder.provider }));
    });
    normal = await startServer(wire, (router) => {
      router.service(UserService, traceUserService(createUserImpl(), { tracerProvider: recorder.provider }));
    });
  });
  afterAll(async () => {
    await slow.close();
    await normal.close();
  });
  beforeEach(() => {
    recorder.reset();
    milestones = { handlerStarted: createLatch(), firstRequest: createLatch() };
  });
  afterEach(() => recorder.settle());

  // the protocol option names the status codes in the wire's spelling also when no response came
  const clientOf = (server: TestServer) =>
    createTracedUserServiceClient(server.transport(), { tracerProvider: recorder.provider, protocol: wire.protocol });

  describe.each(methodCasesFor(wire))("$method", (mc) => {
    it("normal completion: one client and one server span, each ended once", async () => {
      await mc.run(clientOf(normal));
      const clientSpan = await spanOf(recorder, mc.spanName, SpanKind.CLIENT);
      const serverSpan = await spanOf(recorder, mc.spanName, SpanKind.SERVER);
      await recorder.settle();
      expect(recorder.endCalls(clientSpan)).toBe(1);
      expect(recorder.endCalls(serverSpan)).toBe(1);
      expect(recorder.spans()).toHaveLength(2);
    });

    it("aborted before the call: CANCELLED client span, ended once", async () => {
      const controller = new AbortController();
      controller.abort();
      const error = await slowCall(mc, clientOf(slow), { signal: controller.signal }, controller.signal, () => {});
      expectCode(error, Code.Canceled);
      const clientSpan = await spanOf(recorder, mc.spanName, SpanKind.CLIENT);
      expectClientStatus(wire, clientSpan, Code.Canceled);
      // connect-node's HTTP/2 transports still open the stream for an aborted signal, and reset it
      // at once: a server span may start a moment later, and then must end as CANCELLED
      await delay(50);
      await recorder.settle();
      expect(recorder.endCalls(clientSpan)).toBe(1);
      for (const serverSpan of recorder.spans().filter((s) => s.kind === SpanKind.SERVER)) {
        expect(serverSpan.attributes["rpc.status_code"]).toBe(statusName(wire, Code.Canceled));
        expect(recorder.endCalls(serverSpan)).toBe(1);
      }
    });

    it("aborted mid-call: CANCELLED client span; the server span ends too", async () => {
      const controller = new AbortController();
      const error = await slowCall(mc, clientOf(slow), { signal: controller.signal }, controller.signal, () =>
        controller.abort(),
      );
      expectCode(error, Code.Canceled);
      const clientSpan = await spanOf(recorder, mc.spanName, SpanKind.CLIENT);
      expectClientStatus(wire, clientSpan, Code.Canceled);
      // the server learns of the cancel from HandlerContext.signal: a client that went away is
      // CANCELLED, whatever the transport's reason (an HTTP/1.1 hang-up reads as ECONNRESET)
      const serverSpan = await spanOf(recorder, mc.spanName, SpanKind.SERVER);
      expect(serverSpan.attributes["rpc.status_code"]).toBe(statusName(wire, Code.Canceled));
      expect(serverSpan.status.code).toBe(SpanStatusCode.UNSET);
      await recorder.settle();
      expect(recorder.endCalls(clientSpan)).toBe(1);
      expect(recorder.endCalls(serverSpan)).toBe(1);
    });

    it("aborted after completion: spans stay OK and ended once", async () => {
      const controller = new AbortController();
      await mc.run(clientOf(normal), { signal: controller.signal });
      controller.abort();
      await new Promise((resolve) => setTimeout(resolve, 10));
      for (const kind of [SpanKind.CLIENT, SpanKind.SERVER]) {
        const span = await spanOf(recorder, mc.spanName, kind);
        expect(span.status.code).toBe(SpanStatusCode.UNSET);
        expect(span.attributes["rpc.status_code"]).toBe(statusName(wire, 0));
        expect(recorder.endCalls(span)).toBe(1);
      }
    });

    it("deadline (timeoutMs): DEADLINE_EXCEEDED client span lasting about the timeout; server span ends", async () => {
      const timeoutMs = 150;
      const hold = new AbortController();
      const started = performance.now();
      let observedMs: number;
      try {
        const error = await slowCall(mc, clientOf(slow), { timeoutMs }, hold.signal, () => {});
        observedMs = performance.now() - started;
        expectCode(error, Code.DeadlineExceeded);
      } finally {
        hold.abort();
      }
      const clientSpan = await spanOf(recorder, mc.spanName, SpanKind.CLIENT);
      expectClientStatus(wire, clientSpan, Code.DeadlineExceeded);
      // behaviour, not performance: the span covers the wait for the deadline and has ended by the
      // time the caller got the error, however late a busy machine fires the timer (1 ms of slack:
      // span clock and timer clock round differently)
      expect(durationMs(clientSpan)).toBeGreaterThanOrEqual(timeoutMs - 1);
      expect(durationMs(clientSpan)).toBeLessThanOrEqual(observedMs + 1);
      // the server's own deadline or the client's reset, whichever comes first; never a server fault
      const serverSpan = await spanOf(recorder, mc.spanName, SpanKind.SERVER);
      expect([statusName(wire, Code.DeadlineExceeded), statusName(wire, Code.Canceled)]).toContain(
        serverSpan.attributes["rpc.status_code"],
      );
      expect(serverSpan.attributes["error.type"]).not.toBe(statusName(wire, Code.Internal));
      await recorder.settle();
      expect(recorder.endCalls(clientSpan)).toBe(1);
      expect(recorder.endCalls(serverSpan)).toBe(1);
    });
  });

  it.each(methodCasesFor(wire))(
    "$method: a client deadline the server does not know of ends the server span CANCELLED, not as a server error",
    async (mc) => {
      // without the timeout header only the client's reset (HTTP/2 RST_STREAM, HTTP/1.1 close)
      // tells the server: a client that went away
      const client = createTracedUserServiceClient(transportWith(wire, slow.baseUrl, [hideDeadline]), {
        tracerProvider: recorder.provider,
        protocol: wire.protocol,
      });
      const hold = new AbortController();
      try {
        const error = await slowCall(mc, client, { timeoutMs: 100 }, hold.signal, () => {});
        expectCode(error, Code.DeadlineExceeded);
      } finally {
        hold.abort();
      }
      expectClientStatus(wire, await spanOf(recorder, mc.spanName, SpanKind.CLIENT), Code.DeadlineExceeded);
      const serverSpan = await spanOf(recorder, mc.spanName, SpanKind.SERVER);
      expect(serverSpan.attributes["rpc.status_code"]).toBe(statusName(wire, Code.Canceled));
      expect(serverSpan.status.code).toBe(SpanStatusCode.UNSET);
      expect(serverSpan.attributes).not.toHaveProperty(["error.type"]);
    },
  );

  describe.each(methodCasesFor(wire).filter((mc) => mc.kind === "server_streaming" || mc.kind === "bidi_streaming"))(
    "$method: consumer stops reading",
    (mc) => {
      // Each test has a server of its own and closes it: should the server never learn of the
      // consumer leaving, closing the server ends the leaked handler instead of the next test.
      // The server span gets 1 s to end: over loopback a cancel arrives within milliseconds.
      async function withOwnServer(fn: (server: TestServer) => Promise<void>): Promise<void> {
        const own = await startServer(wire, (router) => {
          router.service(UserService, traceUserService(slowImpl, { tracerProvider: recorder.provider }));
        });
        try {
          await fn(own);
        } finally {
          await own.close();
        }
      }

      /** Reads two messages and breaks out of the loop; returns how many were read. */
      async function breakAfterTwo(client: UserClient): Promise<number> {
        const hold = new AbortController();
        let read = 0;
        try {
          const stream =
            mc.kind === "server_streaming"
              ? client.streamUsers({ pageSize: 1 })
              : client.chat(
                  (async function* () {
                    yield { message: "a" };
                    yield { message: "b" };
                    await aborted(hold.signal);
                  })(),
                );
          for await (const _ of stream) {
            if (++read === 2) break;
          }
        } finally {
          hold.abort();
        }
        return read;
      }

      /** Starts the call, waits until the handler runs, and calls return() before reading. */
      async function returnBeforeRead(client: UserClient): Promise<void> {
        const hold = new AbortController();
        try {
          const stream =
            mc.kind === "server_streaming"
              ? client.streamUsers({ pageSize: 1 })
              : client.chat(oneThenHold({ message: "a" }, hold.signal));
          // the call is made eagerly: the handler runs before anything is read
          await within(milestones.handlerStarted.opened, HANG_GUARD_MS, "handler start");
          await stream[Symbol.asyncIterator]().return?.();
        } finally {
          hold.abort();
        }
      }

      it("break after two messages: CANCELLED client span, ended once", async () => {
        await withOwnServer(async (own) => {
          expect(await breakAfterTwo(clientOf(own))).toBe(2);
          const clientSpan = await spanOf(recorder, mc.spanName, SpanKind.CLIENT);
          expectClientStatus(wire, clientSpan, Code.Canceled);
          expect(clientSpan.attributes["connect_otel.messages.received"]).toBe(2);
          expect(recorder.endCalls(clientSpan)).toBe(1);
        });
      });

      it("iterator return() before the first read: CANCELLED client span, ended once", async () => {
        await withOwnServer(async (own) => {
          await returnBeforeRead(clientOf(own));
          const clientSpan = await spanOf(recorder, mc.spanName, SpanKind.CLIENT);
          expectClientStatus(wire, clientSpan, Code.Canceled);
          expect(recorder.endCalls(clientSpan)).toBe(1);
        });
      });

      // connect's own client leaves the stream open here; the traced client aborts it on return().
      it("break after two messages: the server learns of it, its span ends CANCELLED", async () => {
        await withOwnServer(async (own) => {
          await breakAfterTwo(clientOf(own));
          const serverSpan = await spanOf(recorder, mc.spanName, SpanKind.SERVER);
          expect(serverSpan.attributes["rpc.status_code"]).toBe(statusName(wire, Code.Canceled));
          expect(recorder.endCalls(serverSpan)).toBe(1);
        });
      });

      it("iterator return() before the first read: the server span ends CANCELLED", async () => {
        await withOwnServer(async (own) => {
          await returnBeforeRead(clientOf(own));
          const serverSpan = await spanOf(recorder, mc.spanName, SpanKind.SERVER);
          expect(serverSpan.attributes["rpc.status_code"]).toBe(statusName(wire, Code.Canceled));
        });
      });
    },
  );

  describe.each(methodCasesFor(wire).filter((mc) => mc.kind === "client_streaming" || mc.kind === "bidi_streaming"))(
    "$method: the request stream throws",
    (mc) => {
      it("the call fails and both spans end", async () => {
        const client = clientOf(slow);
        const firstRequest: Latch = milestones.firstRequest;
        async function* failingRequests() {
          yield { name: "a", message: "a" };
          await within(firstRequest.opened, HANG_GUARD_MS, "first request on the server");
          throw new Error("source failed");
        }
        let error: unknown;
        try {
          if (mc.kind === "client_streaming") await client.createUsers(failingRequests());
          else for await (const _ of client.chat(failingRequests()));
        } catch (e) {
          error = e;
        }
        expect(error).toBeDefined();
        expect(String(error)).toContain("source failed");
        const clientSpan = await spanOf(recorder, mc.spanName, SpanKind.CLIENT);
        expect(clientSpan.status.code).toBe(SpanStatusCode.ERROR);
        const serverSpan = await spanOf(recorder, mc.spanName, SpanKind.SERVER);
        expect(serverSpan.attributes["rpc.status_code"]).toBeDefined();
        expect(serverSpan.attributes["rpc.status_code"]).not.toBe(statusName(wire, 0));
        await recorder.settle();
        expect(recorder.endCalls(clientSpan)).toBe(1);
        expect(recorder.endCalls(serverSpan)).toBe(1);
      });
    },
  );
});
