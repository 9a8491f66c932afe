import type { CallOptions } from "@connectrpc/connect";
import { ConnectError } from "@connectrpc/connect";
import { UserResponseSchema } from "../../generated/user/v1/user_pb.js";
import { aborted } from "./signals.js";
import type { MethodCase, UserClient } from "./user-calls.js";
import { iterate } from "./user-calls.js";

/**
 * Response headers that differ between two otherwise identical responses, whatever the tracing,
 * and are left out of comparisons: `date` is the second the response was written (RFC 9110
 * §6.6.1). Everything else — content-type, content-length, grpc-status, grpc-message,
 * connect-content-encoding, handler headers and trailers — must be identical.
 */
export const volatileHeaders: ReadonlySet<string> = new Set(["date"]);

/** `headers` as sorted `[name, value]` pairs without {@link volatileHeaders}; null for no headers. */
export function stableHeaders(headers: Headers | undefined): [string, string][] | null {
  if (headers === undefined) return null;
  return [...headers.entries()].filter(([key]) => !volatileHeaders.has(key));
}

/** A call's error as the caller can observe it. */
export interface ErrorOutcome {
  readonly isConnectError: boolean;
  readonly name: string;
  readonly message: string;
  readonly code?: number;
  readonly rawMessage?: string;
  readonly metadata?: [string, string][] | null;
  /** Details as they came off the wire: `{ type, value, debug }`. */
  readonly details?: unknown[];
  /** Details decoded as `user.v1.UserResponse`, the type the scenario service sends. */
  readonly userDetails?: unknown[];
}

/** Summarizes a thrown value in the fields a caller can read. */
export function errorOutcome(error: unknown): ErrorOutcome {
  if (error instanceof ConnectError) {
    return {
      isConnectError: true,
      name: error.name,
      message: error.message,
      code: error.code,
      rawMessage: error.rawMessage,
      metadata: stableHeaders(error.metadata),
      details: error.details,
      userDetails: error.findDetails(UserResponseSchema),
    };
  }
  const e = error instanceof Error ? error : new Error(String(error));
  return { isConnectError: false, name: e.name, message: e.message };
}

/** What a caller observed of one call: everything a traced client must leave as connect has it. */
export interface CallOutcome {
  /** Response messages, in order. */
  readonly received: unknown[];
  /** The error the call failed with, if it failed. */
  readonly error?: ErrorOutcome;
  /** Headers passed to each `onHeader` call (stable part), one entry per call. */
  readonly headers: ([string, string][] | null)[];
  /** Trailers passed to each `onTrailer` call (stable part), one entry per call. */
  readonly trailers: ([string, string][] | null)[];
  /**
   * For response streams: what one more `next()` after the stream ended or failed gave — the
   * iterator protocol says a finished iterator keeps answering done.
   */
  readonly afterEnd?: StepResult;
  /** For {@link CallControl.readAhead}: what each of the simultaneous `next()` calls gave (messages are in `received` too). */
  readonly readAhead?: StepResult[];
}

/** What one `next()` of a response stream gave. */
export interface StepResult {
  readonly done?: boolean;
  readonly value?: unknown;
  readonly error?: ErrorOutcome;
}

/** How to make a call besides the method: request headers, signal, deadline, and when to abort. */
export interface CallControl {
  readonly headers?: HeadersInit;
  readonly signal?: AbortSignal;
  readonly timeoutMs?: number;
  /** Called after each response message a response stream delivers, with the count so far. */
  readonly onReceived?: (count: number) => void;
  /**
   * For client-streaming and bidi calls: send only the first request, then hold the request
   * stream open until the call ends (as a client that is still writing).
   */
  readonly holdRequests?: boolean;
  /**
   * For response streams: start by calling `next()` this many times at once, without awaiting
   * (legal for async iterators, which queue the calls), then read on one by one.
   */
  readonly readAhead?: number;
}

const createInits = [
  { name: "ada", email: "ada@example.com" },
  { name: "grace", email: "grace@example.com" },
  { name: "ünïcode ✓", email: "" },
];
const chatInits = [
  { user: "ada", message: "hello", timestamp: 1n },
  { user: "ada", message: "ünïcode ✓", timestamp: 2n },
  { user: "ada", message: "bye", timestamp: 1234567890123n },
];

/** Yields `first`, then waits until `signal` aborts and ends. */
async function* firstThenHold<T>(first: T, signal: AbortSignal): AsyncGenerator<T> {
  yield first;
  await aborted(signal);
}

/**
 * Makes one call of `mc`'s method kind on `client` (FetchUser `{userId: 7}`, StreamUsers
 * `{pageSize: 3}`, three CreateUsers requests, three Chat messages) and records what the caller
 * sees: messages, error, `onHeader`/`onTrailer` arguments, and for response streams one extra
 * `next()` after the end. Response streams are read by hand, not with `for await`, so that no
 * `return()` is called. Never throws for a failed call: the failure is in the outcome.
 */
export async function observeCall(mc: MethodCase, client: UserClient, control: CallControl = {}): Promise<CallOutcome> {
  const headers: ([string, string][] | null)[] = [];
  const trailers: ([string, string][] | null)[] = [];
  const received: unknown[] = [];
  const options: CallOptions = {
    ...(control.headers !== undefined ? { headers: control.headers } : {}),
    ...(control.signal !== undefined ? { signal: control.signal } : {}),
    ...(control.timeoutMs !== undefined ? { timeoutMs: control.timeoutMs } : {}),
    onHeader: (h) => headers.push(stableHeaders(h)),
    onTrailer: (t) => trailers.push(stableHeaders(t)),
  };
  const hold = new AbortController();
  const requests = <T>(inits: readonly T[]): AsyncIterable<T> =>
    control.holdRequests === true ? firstThenHold(inits[0] as T, hold.signal) : iterate(inits);
  const outcome = (error?: unknown, afterEnd?: StepResult, readAhead?: StepResult[]): CallOutcome => ({
    received,
    ...(error !== undefined ? { error: errorOutcome(error) } : {}),
    headers,
    trailers,
    ...(afterEnd !== undefined ? { afterEnd } : {}),
    ...(readAhead !== undefined ? { readAhead } : {}),
  });
  try {
    switch (mc.kind) {
      case "unary":
        received.push(await client.fetchUser({ userId: 7 }, options));
        return outcome();
      case "client_streaming":
        received.push(await client.createUsers(requests(createInits), options));
        return outcome();
      case "server_streaming":
        return await readStream(client.streamUsers({ pageSize: 3 }, options), received, control, outcome);
      case "bidi_streaming":
        return await readStream(client.chat(requests(chatInits), options), received, control, outcome);
    }
  } catch (error) {
    return outcome(error);
  } finally {
    hold.abort();
  }
}

async function readStream(
  stream: AsyncIterable<unknown>,
  received: unknown[],
  control: CallControl,
  outcome: (error?: unknown, afterEnd?: StepResult, readAhead?: StepResult[]) => CallOutcome,
): Promise<CallOutcome> {
  const it = stream[Symbol.asyncIterator]();
  let failure: unknown;
  let readAhead: StepResult[] | undefined;
  if (control.readAhead !== undefined) {
    const settled = await Promise.allSettled(Array.from({ length: control.readAhead }, () => it.next()));
    readAhead = settled.map((r) => {
      if (r.status === "rejected") {
        failure ??= r.reason;
        return { error: errorOutcome(r.reason) };
      }
      if (r.value.done !== true) received.push(r.value.value);
      return { done: r.value.done === true, value: r.value.value };
    });
  }
  if (failure === undefined) {
    try {
      for (let r = await it.next(); r.done !== true; r = await it.next()) {
        received.push(r.value);
        control.onReceived?.(received.length);
      }
    } catch (error) {
      failure = error;
    }
  }
  let afterEnd: StepResult;
  try {
    const r = await it.next();
    afterEnd = { done: r.done === true, value: r.value };
  } catch (error) {
    afterEnd = { error: errorOutcome(error) };
  }
  return outcome(failure, afterEnd, readAhead);
}
