import type { HandlerContext } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import type { RpcCall } from "./rpc-call.js";

/**
 * How the SERVER span of one call ends: with the handler's outcome (its response: OK; its error:
 * the error's code, INTERNAL for anything but a `ConnectError`, as connect answers), unless the
 * call was cut off — then with DEADLINE_EXCEEDED if the deadline the server knows
 * (`HandlerContext.timeoutMs()`, from `grpc-timeout` or `connect-timeout-ms`) has passed, else
 * CANCELLED: the client went away. Whatever order connect reports things in, these are the signs
 * of a cut-off call:
 *
 * - `HandlerContext.signal` aborts before the handler finished: its deadline, a reset stream or a
 *   closed connection, a server shutdown, a response write that failed; or it had aborted already
 *   when the handler started (a deadline that passed in transit);
 * - connect stops reading a response stream before its end (`return()`);
 * - for client-streaming and bidi methods, the HTTP exchange is reset after the handler finished:
 *   a client that cancels (grpc-js, connect-node) ends its HTTP/2 request stream and then resets
 *   it, so the handler may see a normal end of its requests and return before the reset arrives,
 *   and connect aborts `HandlerContext.signal` when the handler finishes, before the reset. Their
 *   span ends when the exchange does: when the request signal connect gives the handler context
 *   (`requestSignal` of connect's `createHandlerContext`) aborts — with the reset as a
 *   `ConnectError` (`connect-node`: the HTTP/2 reset code, ECONNRESET as ABORTED) for a cut-off,
 *   without a reason for an exchange that completed. connect-node's `universalRequestFromNodeRequest`
 *   (under `connectNodeAdapter` and connect-express) and connect's in-memory router transport abort
 *   it on every call; a context without it ends the span when the handler finishes.
 *
 * A cut-off while a known deadline has not passed yet (a client's reset at its own deadline
 * reaches the server a little before the server's deadline) ends the span when the handler
 * finishes, or when the deadline passes if the handler is still at work then: a handler that
 * sleeps through its deadline records DEADLINE_EXCEEDED. Without a deadline the span ends at once.
 *
 * The instance is the abort listener of both signals. Nothing here throws.
 */
export class ServerCallEnd implements EventListenerObject {
  /** True once the handler returned, threw, or its response stream was closed. */
  private finished = false;
  /** The first sign of a cut-off, with the abort reason (a `ConnectError`, or nothing). */
  private cutOff: { readonly reason: unknown } | undefined;
  private deadlineTimer: ReturnType<typeof setTimeout> | undefined;
  /** The exchange's signal, for request-streaming methods whose span ends with the exchange. */
  private readonly requestSignal: AbortSignal | undefined;

  /**
   * @param watch what to watch: `exchange` for client-streaming and bidi methods (the handler
   *   context's signal, and the exchange after a successful handler, see above), `handler` for
   *   unary and server-streaming methods (the signal), `none` for a call that starts no span
   *   (nothing to record: it ends with the handler's outcome)
   */
  constructor(
    private readonly call: RpcCall,
    private readonly ctx: HandlerContext,
    watch: "exchange" | "handler" | "none",
  ) {
    this.requestSignal = watch === "exchange" ? requestSignalOf(ctx) : undefined;
    if (watch === "none") return;
    if (ctx.signal.aborted) this.observeCutOff(ctx.signal.reason);
    else ctx.signal.addEventListener("abort", this, { once: true });
  }

  /**
   * The handler finished with a response (or its response stream ended). This and {@link fail}
   * and {@link stopped} count once: connect may close a stream that has ended.
   */
  succeed(): void {
    if (this.finished) return;
    this.finished = true;
    if (this.cutOff !== undefined) {
      this.endCutOff();
      return;
    }
    const exchange = this.requestSignal;
    if (exchange === undefined) this.call.succeed();
    else if (exchange.aborted) this.exchangeEnded(exchange.reason);
    else exchange.addEventListener("abort", this, { once: true });
  }

  /** The handler threw `error`, or connect reported it into the response stream (`throw()`). */
  fail(error: unknown): void {
    if (this.finished) return;
    this.finished = true;
    if (this.cutOff !== undefined) this.endCutOff();
    else this.call.fail(error, Code.Internal);
  }

  /** connect stopped reading the response stream before its end: the client went away. */
  stopped(): void {
    if (this.finished) return;
    this.finished = true;
    this.cutOff ??= { reason: undefined };
    this.endCutOff();
  }

  /**
   * `EventListener` of `HandlerContext.signal` (connect also aborts it after every call, which is
   * ignored once the handler finished) and of the exchange's request signal.
   */
  handleEvent(event: Event): void {
    const signal = event.target as AbortSignal | null;
    if (signal !== null && signal === this.requestSignal) this.exchangeEnded(signal.reason);
    else if (!this.finished) this.observeCutOff(signal?.reason);
  }

  /** The exchange of a handler that succeeded ended: reset (a reason other than an AbortError) or complete. */
  private exchangeEnded(reason: unknown): void {
    if (reason === undefined || isAbortError(reason)) {
      this.call.succeed();
      return;
    }
    this.cutOff ??= { reason };
    this.endCutOff();
  }

  /**
   * Notes a cut-off while the handler is at work and ends the span now — unless a deadline is
   * known and has not passed, see the class comment.
   */
  private observeCutOff(reason: unknown): void {
    if (this.cutOff !== undefined) return;
    this.cutOff = { reason };
    const remaining = this.ctx.timeoutMs();
    if (remaining === undefined || remaining <= 0 || isDeadline(reason)) {
      this.endCutOff();
      return;
    }
    // when it fires the deadline has passed, also where the clocks of timers and timeoutMs() disagree
    const timer = setTimeout(() => this.endCutOff(true), Math.ceil(remaining));
    // a pending deadline must not keep a Node process alive
    (timer as { unref?: () => void }).unref?.();
    this.deadlineTimer = timer;
  }

  /**
   * Ends the span of a cut-off call: DEADLINE_EXCEEDED once the deadline passed (`deadlinePassed`:
   * the deadline timer says so), else CANCELLED.
   */
  private endCutOff(deadlinePassed = false): void {
    if (this.deadlineTimer !== undefined) clearTimeout(this.deadlineTimer);
    this.deadlineTimer = undefined;
    const reason = this.cutOff?.reason;
    const remaining = this.ctx.timeoutMs();
    const deadline = deadlinePassed || isDeadline(reason) || (remaining !== undefined && remaining <= 0);
    this.call.cutOff(deadline ? Code.DeadlineExceeded : Code.Canceled, reason);
  }
}

/** True for connect's deadline abort reason. */
function isDeadline(reason: unknown): boolean {
  return reason instanceof ConnectError && reason.code === Code.DeadlineExceeded;
}

/** True for the reason of a signal aborted without one (`abort()`): a DOMException named AbortError. */
function isAbortError(reason: unknown): boolean {
  return typeof reason === "object" && reason !== null && (reason as { name?: unknown }).name === "AbortError";
}

/**
 * The signal of the HTTP exchange under a handler context: connect 2's protocol handlers create
 * every context with `createHandlerContext({ requestSignal, ... })`, which copies its init into
 * the context. Undefined for a context without one (not part of the `HandlerContext` type).
 */
function requestSignalOf(ctx: HandlerContext): AbortSignal | undefined {
  const signal = (ctx as { requestSignal?: unknown }).requestSignal as AbortSignal | undefined;
  if (signal === ctx.signal || typeof signal?.addEventListener !== "function") return undefined;
  return typeof signal.aborted === "boolean" ? signal : undefined;
}
