import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { type Code, ConnectError, encodeBinaryHeader } from "@connectrpc/connect";
import { context, propagation } from "@opentelemetry/api";
import { UserResponseSchema, type UserService } from "../../generated/user/v1/user_pb.js";
import type { Latch } from "./signals.js";
import { aborted, createLatch, delay } from "./signals.js";

/**
 * What a handler of the scenario service does, chosen per call by the request header
 * {@link SCENARIO_HEADER} (JSON):
 *
 * - `ok`: answers normally (FetchUser one user, StreamUsers `page_size` users, CreateUsers the
 *   count, Chat an echo per message).
 * - `fail`: throws `new ConnectError(message, code, metadata, details)` — or, for `code: "plain"`,
 *   a `TypeError` (connect answers INTERNAL) — before the first message is exchanged (`before`)
 *   or after the first request was read and, for response streams, the first response yielded
 *   (`after-first`; for unary methods the same as `before`).
 * - `hold`: exchanges the first message (reads the first request; response streams yield one
 *   message), then waits until `HandlerContext.signal` aborts and throws its reason, as a
 *   well-behaved slow handler does. Never ends on its own.
 * - `sleep`: exchanges the first message, then sleeps `ms` milliseconds without looking at
 *   `HandlerContext.signal` (the interop server of `timeout_on_sleeping_server`), then goes on as
 *   `ok`: reads the remaining requests and answers.
 *
 * Every handler sets the response headers and trailers of {@link setResponseMetadata} first.
 */
export type Scenario =
  | { readonly kind: "ok" }
  | { readonly kind: "fail"; readonly code: Code | "plain"; readonly when: "before" | "after-first" }
  | { readonly kind: "hold" }
  | { readonly kind: "sleep"; readonly ms: number };

/** Request header carrying the JSON {@link Scenario}; a missing header means `ok`. */
export const SCENARIO_HEADER = "x-scenario";

/** Request header naming the call, copied to {@link HandlerView.callId}. */
export const CALL_ID_HEADER = "x-call-id";

let lastCallId = 0;

/**
 * Request headers that select `scenario`, with a fresh call id (see {@link viewsOf}): a handler
 * that starts late — connect-node's HTTP/2 transports open a stream even for an aborted signal
 * and reset it at once — must not be taken for the handler of a later call.
 */
export function scenarioHeaders(scenario: Scenario, init?: HeadersInit): Headers {
  const headers = new Headers(init);
  headers.set(SCENARIO_HEADER, JSON.stringify(scenario));
  headers.set(CALL_ID_HEADER, String(++lastCallId));
  return headers;
}

/** The views of handlers that ran for the call with these request `headers`. */
export function viewsOf(views: readonly HandlerView[], headers: Headers): HandlerView[] {
  const id = headers.get(CALL_ID_HEADER);
  return views.filter((v) => v.callId === id);
}

/** What one handler invocation saw, for comparing the server side of two runs. */
export interface HandlerView {
  /** The {@link CALL_ID_HEADER} of the request; null without one. */
  readonly callId: string | null;
  /** The method's local name, `fetchUser`. */
  readonly method: string;
  /** Baggage entries active when the handler started, `[key, value]` pairs; empty without baggage. */
  readonly baggage: [string, string][];
  /** Request messages the handler read, in order. */
  readonly requests: unknown[];
  /** Opens once the first message was exchanged (see `hold`) or the handler started (unary). */
  readonly progressed: Latch;
  /** Opens when the handler returned, threw, or its response stream was closed. */
  readonly finished: Latch;
  /**
   * Code of `ConnectError.from(signal.reason)` if `HandlerContext.signal` had aborted when the
   * handler finished; undefined if it had not.
   */
  abortCode: Code | undefined;
}

/** Error message of `fail` scenarios: non-ASCII on purpose (gRPC percent-encodes `grpc-message`). */
export function failureMessage(code: Code | "plain"): string {
  return `failure ${code} — ünïcode ✓`;
}

/**
 * Sets the response headers and trailers every scenario handler sends: a plain header, a header
 * with two values, a binary (`-bin`, base64) header, and a plain and a binary trailer.
 */
export function setResponseMetadata(ctx: HandlerContext): void {
  ctx.responseHeader.set("x-scenario-header", "h");
  ctx.responseHeader.append("x-multi", "one");
  ctx.responseHeader.append("x-multi", "two");
  ctx.responseHeader.set("x-data-bin", encodeBinaryHeader(new Uint8Array([0, 1, 2, 250, 255])));
  ctx.responseTrailer.set("x-scenario-trailer", "t");
  ctx.responseTrailer.set("x-trailer-bin", encodeBinaryHeader(new Uint8Array([9, 8, 7])));
}

function scenarioOf(ctx: HandlerContext): Scenario {
  const raw = ctx.requestHeader.get(SCENARIO_HEADER);
  return raw === null ? { kind: "ok" } : (JSON.parse(raw) as Scenario);
}

function failure(code: Code | "plain"): Error {
  if (code === "plain") return new TypeError(failureMessage(code));
  return new ConnectError(failureMessage(code), code, { "x-error-meta": `m${code}` }, [
    { desc: UserResponseSchema, value: { id: code, name: "detail", email: "ünïcode" } },
  ]);
}

/** Throws the scenario's failure if it fails at `when` (unary methods fail at `before` either way). */
function failAt(scenario: Scenario, when: "before" | "after-first", unary = false): void {
  if (scenario.kind !== "fail") return;
  if (scenario.when === when || (unary && when === "before")) throw failure(scenario.code);
}

/** Waits for the call's signal to abort, then throws its reason (a `hold` scenario's end). */
async function holdUntilAborted(ctx: HandlerContext): Promise<never> {
  await aborted(ctx.signal);
  throw ctx.signal.reason;
}

/**
 * What `hold` and `sleep` scenarios do once the first message was exchanged: wait for the abort
 * and throw its reason, or sleep through it; nothing for the other scenarios.
 */
async function afterFirst(scenario: Scenario, ctx: HandlerContext): Promise<void> {
  if (scenario.kind === "hold") await holdUntilAborted(ctx);
  if (scenario.kind === "sleep") await delay(scenario.ms);
}

/**
 * A UserService whose every call follows the {@link Scenario} in its request headers and pushes a
 * {@link HandlerView} onto `views` when it starts.
 */
export function createScenarioService(views: HandlerView[]): ServiceImpl<typeof UserService> {
  const open = (method: string, ctx: HandlerContext) => {
    const view: HandlerView = {
      callId: ctx.requestHeader.get(CALL_ID_HEADER),
      method,
      baggage: (propagation.getBaggage(context.active())?.getAllEntries() ?? []).map(([k, e]) => [k, e.value]),
      requests: [],
      progressed: createLatch(),
      finished: createLatch(),
      abortCode: undefined,
    };
    views.push(view);
    setResponseMetadata(ctx);
    return { view, scenario: scenarioOf(ctx) };
  };
  const close = (view: HandlerView, ctx: HandlerContext) => {
    view.abortCode = ctx.signal.aborted ? ConnectError.from(ctx.signal.reason).code : undefined;
    view.finished.open();
  };
  return {
    async fetchUser(req, ctx) {
      const { view, scenario } = open("fetchUser", ctx);
      try {
        view.requests.push(req);
        view.progressed.open();
        failAt(scenario, "before", true);
        await afterFirst(scenario, ctx);
        return { id: req.userId, name: `user-${req.userId}`, email: "ünïcode@example.com" };
      } finally {
        close(view, ctx);
      }
    },
    async *streamUsers(req, ctx) {
      const { view, scenario } = open("streamUsers", ctx);
      try {
        view.requests.push(req);
        failAt(scenario, "before");
        yield { id: 1, name: "user-1" };
        view.progressed.open();
        failAt(scenario, "after-first");
        await afterFirst(scenario, ctx);
        for (let i = 2; i <= req.pageSize; i++) yield { id: i, name: `user-${i}` };
      } finally {
        close(view, ctx);
      }
    },
    async createUsers(reqs, ctx) {
      const { view, scenario } = open("createUsers", ctx);
      try {
        failAt(scenario, "before");
        const it = reqs[Symbol.asyncIterator]();
        for (let r = await it.next(); r.done !== true; r = await it.next()) {
          view.requests.push(r.value);
          if (view.requests.length > 1) continue;
          view.progressed.open();
          failAt(scenario, "after-first");
          await afterFirst(scenario, ctx);
        }
        return { count: view.requests.length };
      } finally {
        close(view, ctx);
      }
    },
    async *chat(reqs, ctx) {
      const { view, scenario } = open("chat", ctx);
      try {
        failAt(scenario, "before");
        for await (const m of reqs) {
          view.requests.push(m);
          yield { user: "server", message: `echo ${m.message}`, timestamp: m.timestamp };
          if (view.requests.length > 1) continue;
          view.progressed.open();
          failAt(scenario, "after-first");
          await afterFirst(scenario, ctx);
        }
      } finally {
        close(view, ctx);
      }
    },
  };
}
