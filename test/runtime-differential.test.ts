import { Code, createClient } from "@connectrpc/connect";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createTracedUserServiceClient, traceUserService } from "../generated/user/v1/user_otel.js";
import { UserService } from "../generated/user/v1/user_pb.js";
import type { CallControl, CallOutcome } from "./support/call-outcomes.js";
import { observeCall } from "./support/call-outcomes.js";
import type { HandlerView, Scenario } from "./support/scenario-service.js";
import { createScenarioService, failureMessage, scenarioHeaders, viewsOf } from "./support/scenario-service.js";
import type { TestServer, Wire } from "./support/servers.js";
import { startServer, wires } from "./support/servers.js";
import { within } from "./support/signals.js";
import { createSpanRecorder } from "./support/span-recorder.js";
import { installTestTracing, waitFor } from "./support/tracing.js";
import type { MethodCase, UserClient } from "./support/user-calls.js";
import { methodCases } from "./support/user-calls.js";

// Differential test: one scenario, run with connect's own clients and services and again with the
// generated traced ones, must give the caller the same messages, errors (code, message, metadata,
// details), response headers and trailers — and the handler the same requests and abort reason.
// Only the `date` header is ignored (see volatileHeaders in support/call-outcomes.ts).

installTestTracing();
const recorder = createSpanRecorder();

/** How the caller ends a call early: not at all, with a signal aborted before, or mid-call. */
type Cancel = "none" | "before-call" | "mid-call";

interface Step {
  readonly title: string;
  readonly scenario: Scenario;
  readonly cancel: Cancel;
}

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
  steps.push({ title: "client aborts before the call", scenario: { kind: "hold" }, cancel: "before-call" });
  steps.push({ title: "client aborts mid-call", scenario: { kind: "hold" }, cancel: "mid-call" });
  return steps;
}

/** What the handler saw of a call: comparable parts of its {@link HandlerView}s. */
type ServerOutcome = { method: string; requests: unknown[]; abortCode: Code | undefined }[];

interface Side {
  readonly server: TestServer;
  readonly views: HandlerView[];
  client(): UserClient;
}

/**
 * Runs `step` once on `side` and returns what the caller and (but for a cancel before the call,
 * where whether a handler starts depends on the transport's timing) the handler observed.
 */
async function runStep(side: Side, mc: MethodCase, step: Step): Promise<{ call: CallOutcome; server?: ServerOutcome }> {
  const headers = scenarioHeaders(step.scenario);
  const own = () => viewsOf(side.views, headers);
  const controller = new AbortController();
  if (step.cancel === "before-call") controller.abort();
  const control: CallControl = {
    headers,
    holdRequests: step.scenario.kind === "hold",
    ...(step.cancel !== "none" ? { signal: controller.signal } : {}),
    ...(step.cancel === "mid-call" && (mc.kind === "server_streaming" || mc.kind === "bidi_streaming")
      ? { onReceived: () => controller.abort() }
      : {}),
  };
  let progress: Promise<void> | undefined;
  if (step.cancel === "mid-call" && (mc.kind === "unary" || mc.kind === "client_streaming")) {
    // no response message arrives before the cancel: abort once the handler has the request
    progress = (async () => {
      try {
        await waitFor(() => own().length > 0);
        await within((own()[0] as HandlerView).progressed.opened, 2000, "handler progress");
      } finally {
        controller.abort();
      }
    })();
    progress.catch(() => {}); // awaited below, after the call
  }
  const call = await observeCall(mc, side.client(), control);
  await progress;
  // every handler that started must finish (bounded)
  const mine = own();
  await within(Promise.all(mine.map((v) => v.finished.opened)), 2000, "handler end");
  // forget finished handlers; a late one of an earlier call stays until it finishes
  side.views.splice(0, side.views.length, ...side.views.filter((v) => !v.finished.isOpen));
  if (step.cancel === "before-call") return { call };
  return { call, server: mine.map((v) => ({ method: v.method, requests: v.requests, abortCode: v.abortCode })) };
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
  let plain: Side;
  let traced: Side;
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
