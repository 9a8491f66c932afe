import type { Code } from "@connectrpc/connect";
import type { CallControl, CallOutcome } from "./call-outcomes.js";
import { observeCall } from "./call-outcomes.js";
import type { HandlerView, Scenario } from "./scenario-service.js";
import { scenarioHeaders, viewsOf } from "./scenario-service.js";
import { HANG_GUARD_MS, within } from "./signals.js";
import { waitFor } from "./tracing.js";
import type { MethodCase, UserClient } from "./user-calls.js";

/** How the caller ends a call early: not at all, with a signal aborted before the call, or mid-call. */
export type Cancel = "none" | "before-call" | "mid-call";

/** One call of a run: what the handler does and how the caller cancels. */
export interface Step {
  readonly title: string;
  readonly scenario: Scenario;
  readonly cancel: Cancel;
  /** Response streams only: see {@link CallControl.readAhead}. */
  readonly readAhead?: number;
}

/** A server of the scenario service (`createScenarioService(views)`) and how to make a client of it. */
export interface ScenarioSide {
  readonly views: HandlerView[];
  client(): UserClient;
}

/** What the handlers of a call saw: the comparable parts of their {@link HandlerView}s. */
export type ServerOutcome = { method: string; requests: unknown[]; abortCode: Code | undefined }[];

/** What caller and handler observed of one step. */
export interface StepOutcome {
  readonly call: CallOutcome;
  /** Undefined for a cancel before the call: whether a handler starts then is up to transport timing. */
  readonly server?: ServerOutcome;
}

/**
 * Runs `step` once on `side` with {@link observeCall}. A mid-call cancel aborts after the first
 * response message of a response stream, else once the handler has read the first request.
 * Waits until the call's handlers finished. Waits are bounded by {@link HANG_GUARD_MS}.
 *
 * @throws Error if the handler never progresses or never finishes within those bounds.
 */
export async function runStep(side: ScenarioSide, mc: MethodCase, step: Step): Promise<StepOutcome> {
  const headers = scenarioHeaders(step.scenario);
  const own = () => viewsOf(side.views, headers);
  const controller = new AbortController();
  if (step.cancel === "before-call") controller.abort();
  const responseStream = mc.kind === "server_streaming" || mc.kind === "bidi_streaming";
  const control: CallControl = {
    headers,
    holdRequests: step.scenario.kind === "hold",
    ...(step.readAhead !== undefined ? { readAhead: step.readAhead } : {}),
    ...(step.cancel !== "none" ? { signal: controller.signal } : {}),
    ...(step.cancel === "mid-call" && responseStream ? { onReceived: () => controller.abort() } : {}),
  };
  let progress: Promise<void> | undefined;
  if (step.cancel === "mid-call" && !responseStream) {
    // no response message arrives before the cancel: abort once the handler has the request
    progress = (async () => {
      try {
        await waitFor(() => own().length > 0);
        await within((own()[0] as HandlerView).progressed.opened, HANG_GUARD_MS, "handler progress");
      } finally {
        controller.abort();
      }
    })();
    progress.catch(() => {}); // awaited below, after the call
  }
  const call = await observeCall(mc, side.client(), control);
  await progress;
  const mine = own();
  await within(Promise.all(mine.map((v) => v.finished.opened)), HANG_GUARD_MS, "handler end");
  // forget finished handlers; a late one of an earlier call stays until it finishes
  side.views.splice(0, side.views.length, ...side.views.filter((v) => !v.finished.isOpen));
  if (step.cancel === "before-call") return { call };
  return { call, server: mine.map((v) => ({ method: v.method, requests: v.requests, abortCode: v.abortCode })) };
}
