import { Code, createClient } from "@connectrpc/connect";
import { SpanKind } from "@opentelemetry/api";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createTracedUserServiceClient, traceUserService } from "../generated/user/v1/user_otel.js";
import { UserService } from "../generated/user/v1/user_pb.js";
import type { CallOutcome, ErrorOutcome } from "./support/call-outcomes.js";
import { errorOutcome } from "./support/call-outcomes.js";
import { captureEscapes } from "./support/escapes.js";
import type { ScenarioSide, Step } from "./support/scenario-runs.js";
import { runStep } from "./support/scenario-runs.js";
import type { HandlerView } from "./support/scenario-service.js";
import { createScenarioService, failureMessage } from "./support/scenario-service.js";
import type { TestServer, Wire } from "./support/servers.js";
import { startServer, wires } from "./support/servers.js";
import { createSpanRecorder } from "./support/span-recorder.js";
import { installTestTracing } from "./support/tracing.js";
import type { MethodCase, UserClient } from "./support/user-calls.js";
import { methodCases, methodCasesFor } from "./support/user-calls.js";

// Differential test: one scenario, run with connect's own clients and services and again with the
// generated traced ones, must give the caller the same messages, errors (code, message, metadata,
// details), response headers and trailers (each onHeader/onTrailer call, and what a response
// stream answers to one more next() after its end) — and the handler the same requests and abort
// reason. Only the `date` header is ignored (see volatileHeaders in support/call-outcomes.ts).
// Request streams of every shape a caller can pass — iterators without throw() or return(), sync
// iterables, sources that throw at once — must give the same result and let the same errors
// escape (connect's client lets one escape for a sync iterable).
// Not compared: a consumer breaking out of a response stream, where the traced client closes the
// stream on purpose and connect's leaves it open (runtime-faults covers that case).

installTestTracing();
const recorder = createSpanRecorder();

const codes = Array.from({ length: 16 }, (_, i) => (i + 1) as Code);

/** The steps run for a method kind: success, each code (and a plain Error) at each point, cancels. */
function stepsFor(mc: MethodCase): Step[] {
  const whens = mc.kind === "unary" ? (["before"] as const) : (["before", "after-first"] as const);
  const steps: Step[] = [{ title: "success", scenario: { kind: "ok" }, cancel: "none" }];
  for (const when of whens) {
    for (const code of [...codes, "plain" as const]) {
      const name = code === "plain" ? "a TypeError" : `code ${code} (${Code[code]})`;
      steps.push({ title: `handler throws ${name} ${when}`, scenario: { kind: "fail", code, when }, cancel: "none" });
    }
  }
  if (mc.kind === "server_streaming" || mc.kind === "bidi_streaming") {
    // five next() calls at once: an async iterator queues them
    steps.push({ title: "success, read five ahead", scenario: { kind: "ok" }, cancel: "none", readAhead: 5 });
    steps.push({
      title: "handler throws code 5 (NotFound) after-first, read five ahead",
      scenario: { kind: "fail", code: Code.NotFound, when: "after-first" },
      cancel: "none",
      readAhead: 5,
    });
  }
  steps.push({ title: "client aborts before the call", scenario: { kind: "hold" }, cancel: "before-call" });
  steps.push({ title: "client aborts mid-call", scenario: { kind: "hold" }, cancel: "mid-call" });
  return steps;
}

/** Checks the plain run did what the step intends, so that equal outcomes are not equally empty. */
function expectIntended(wire: Wire, mc: MethodCase, step: Step, plain: CallOutcome): void {
  if (mc.kind === "bidi_streaming" && wire.httpVersion === "1.1") {
    expect(plain.error?.code).toBeDefined();
    return;
  }
  const { scenario } = step;
  if (step.cancel !== "none") {
    expect(plain.error?.code).toBe(Code.Canceled);
  } else if (scenario.kind === "ok") {
    expect(plain.error).toBeUndefined();
    expect(plain.received.length).toBeGreaterThan(0);
    expect(plain.headers[0]).toContainEqual(["x-scenario-header", "h"]);
  } else if (scenario.kind === "fail") {
    expect(plain.error?.code).toBe(scenario.code === "plain" ? Code.Internal : scenario.code);
    if (scenario.code !== "plain") {
      expect(plain.error?.rawMessage).toBe(failureMessage(scenario.code));
      expect(plain.error?.userDetails).toHaveLength(1);
      expect(plain.error?.metadata).toContainEqual(["x-error-meta", `m${scenario.code}`]);
    }
  }
}

describe.each(wires)("$name", (wire) => {
  const plainViews: HandlerView[] = [];
  const tracedViews: HandlerView[] = [];
  let plain: ScenarioSide & { server: TestServer };
  let traced: ScenarioSide & { server: TestServer };
  beforeAll(async () => {
    const plainServer = await startServer(wire, (router) => {
      router.service(UserService, createScenarioService(plainViews));
    });
    const tracedServer = await startServer(wire, (router) => {
      router.service(
        UserService,
        traceUserService(createScenarioService(tracedViews), { tracerProvider: recorder.provider }),
      );
    });
    plain = {
      server: plainServer,
      views: plainViews,
      client: () => createClient(UserService, plainServer.transport()),
    };
    traced = {
      server: tracedServer,
      views: tracedViews,
      client: () => createTracedUserServiceClient(tracedServer.transport(), { tracerProvider: recorder.provider }),
    };
  });
  afterAll(async () => {
    await plain.server.close();
    await traced.server.close();
  });
  beforeEach(() => recorder.reset());
  // the traced run's spans all end, once each
  afterEach(() => recorder.settle());

  describe.each(methodCases)("$method", (mc) => {
    // connect-node answers bidi over HTTP/1.1 with an error before any handler runs: only the
    // success step, which must fail the same way traced and untraced
    const unsupported = mc.kind === "bidi_streaming" && wire.httpVersion === "1.1";
    const steps = unsupported ? stepsFor(mc).slice(0, 1) : stepsFor(mc);
    it.each(steps)("$title: same outcome traced and untraced", async (step) => {
      const expected = await runStep(plain, mc, step);
      const actual = await runStep(traced, mc, step);
      expectIntended(wire, mc, step, expected.call);
      expect(actual.call).toEqual(expected.call);
      expect(actual.server).toEqual(expected.server);
    });
  });
});

/** A request source of a client-streaming or bidi call, of one shape. */
interface SourceShape {
  readonly title: string;
  /** A new source yielding `items` in that shape. */
  make<T>(items: readonly T[]): unknown;
}

/** An async iterator over `items` with only the methods in `methods` besides next(). */
function asyncIteratorOf<T>(items: readonly T[], methods: { throw?: boolean; return?: boolean }): AsyncIterator<T> {
  let i = 0;
  const it: AsyncIterator<T> = {
    next: async () => (i < items.length ? { done: false, value: items[i++] as T } : { done: true, value: undefined }),
  };
  if (methods.return === true) it.return = async (value?: unknown) => ({ done: true, value: value as T });
  if (methods.throw === true) {
    it.throw = async (error?: unknown) => {
      throw error;
    };
  }
  return it;
}

const sourceShapes: readonly SourceShape[] = [
  {
    title: "an async iterator without throw() and return()",
    make: (items) => ({ [Symbol.asyncIterator]: () => asyncIteratorOf(items, {}) }),
  },
  {
    title: "an async iterator without throw()",
    make: (items) => ({ [Symbol.asyncIterator]: () => asyncIteratorOf(items, { return: true }) }),
  },
  {
    title: "an async iterator without return()",
    make: (items) => ({ [Symbol.asyncIterator]: () => asyncIteratorOf(items, { throw: true }) }),
  },
  { title: "a sync array", make: (items) => [...items] },
  {
    title: "a sync generator",
    make: (items) =>
      (function* () {
        yield* items;
      })(),
  },
  {
    title: "an async generator that throws on its first next()",
    make: () =>
      (async function* () {
        yield* [];
        throw new Error("the source failed at once");
      })(),
  },
  {
    title: "an iterator without throw() whose first next() rejects",
    make: () => ({
      [Symbol.asyncIterator]: () => ({ next: () => Promise.reject(new Error("the source failed at once")) }),
    }),
  },
  {
    title: "an iterator whose first next() throws synchronously",
    make: () => ({
      [Symbol.asyncIterator]: () => ({
        next: () => {
          throw new Error("the source failed at once");
        },
        throw: async (error?: unknown) => {
          throw error;
        },
      }),
    }),
  },
  {
    title: "an iterable whose [Symbol.asyncIterator]() throws",
    make: () => ({
      [Symbol.asyncIterator]: () => {
        throw new Error("no iterator");
      },
    }),
  },
];

/** What a caller of a client-streaming or bidi call observed, and what escaped meanwhile. */
interface SourceOutcome {
  readonly received: unknown[];
  readonly error?: ErrorOutcome;
  /** Escaped errors as `name: message`. */
  readonly escaped: string[];
}

/** Calls CreateUsers or Chat with `source` as its request stream and notes what the caller saw. */
async function callWithSource(client: UserClient, mc: MethodCase, source: unknown): Promise<SourceOutcome> {
  const { result, escaped } = await captureEscapes(async () => {
    const received: unknown[] = [];
    try {
      if (mc.kind === "client_streaming") {
        received.push(await client.createUsers(source as AsyncIterable<{ name: string }>));
      } else {
        for await (const m of client.chat(source as AsyncIterable<{ message: string }>)) received.push(m);
      }
      return { received };
    } catch (error) {
      return { received, error: errorOutcome(error) };
    }
  });
  const names = escaped.map((e) => (e instanceof Error ? `${e.name}: ${e.message}` : String(e)));
  return { ...result, escaped: names };
}

describe.each(wires)("$name: request streams of every shape", (wire) => {
  let plainServer: TestServer;
  let tracedServer: TestServer;
  beforeAll(async () => {
    plainServer = await startServer(wire, (router) => router.service(UserService, createScenarioService([])));
    tracedServer = await startServer(wire, (router) => {
      router.service(UserService, traceUserService(createScenarioService([]), { tracerProvider: recorder.provider }));
    });
  });
  afterAll(async () => {
    await plainServer.close();
    await tracedServer.close();
  });
  beforeEach(() => recorder.reset());
  afterEach(() => recorder.settle());

  const streams = methodCasesFor(wire).filter((mc) => mc.kind === "client_streaming" || mc.kind === "bidi_streaming");
  describe.each(streams)("$method", (mc) => {
    const items: readonly object[] =
      mc.kind === "client_streaming" ? [{ name: "ada" }, { name: "grace" }] : [{ message: "hello" }];
    it.each(sourceShapes)("$title: same outcome and escapes traced and untraced", async (shape) => {
      const plain = await callWithSource(createClient(UserService, plainServer.transport()), mc, shape.make(items));
      const traced = await callWithSource(
        createTracedUserServiceClient(tracedServer.transport(), { tracerProvider: recorder.provider }),
        mc,
        shape.make(items),
      );
      expect(traced).toEqual(plain);
      // the traced call has one client span, whatever its outcome
      expect(recorder.spans().filter((s) => s.name === mc.spanName && s.kind === SpanKind.CLIENT)).toHaveLength(1);
    });
  });
});
