import type { DescMessage } from "@bufbuild/protobuf";
import { create, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Attributes, Context, Span } from "@opentelemetry/api";
import { INVALID_SPAN_CONTEXT, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import {
  ATTR_ERROR_TYPE,
  ATTR_MESSAGE_ID,
  ATTR_MESSAGE_TYPE,
  ATTR_MESSAGE_UNCOMPRESSED_SIZE,
  ATTR_MESSAGES_RECEIVED,
  ATTR_MESSAGES_SENT,
  ATTR_RPC_CONNECT_RPC_ERROR_CODE,
  ATTR_RPC_GRPC_STATUS_CODE,
  ATTR_RPC_MESSAGE_ID,
  ATTR_RPC_MESSAGE_TYPE,
  ATTR_RPC_MESSAGE_UNCOMPRESSED_SIZE,
  ATTR_RPC_RESPONSE_STATUS_CODE,
  EVENT_MESSAGE,
  EVENT_RPC_MESSAGE,
} from "./attribute-names.js";
import type { TracingConfig } from "./config.js";
import type { MethodPlan, RpcSystem } from "./method-plan.js";
import type { StatusCode } from "./status-codes.js";
import { connectStatusName, defaultServerErrorCodes, grpcStatusName, OK } from "./status-codes.js";

/** Which end of the call a span describes. */
export type CallSide = "client" | "server";

/** Direction of a message relative to the span's side (semconv `rpc.message.type`). */
export type MessageDirection = "SENT" | "RECEIVED";

/**
 * The span of one RPC and its bookkeeping: message counters, the event cap, and the guarantee that
 * the span ends exactly once. Nothing here throws: a failing tracer, processor or propagator never
 * reaches the RPC.
 *
 * Implements `EventListener` so a server can watch `HandlerContext.signal` without a closure per
 * call: an abort before the handler finished ends the span with the abort reason's code
 * (DEADLINE_EXCEEDED for a deadline, CANCELLED for a client that went away).
 */
export class RpcCall implements EventListenerObject {
  /** Context in which the span is active: handler code and outgoing calls run in it. */
  readonly context: Context;
  private readonly recording: boolean;
  private system: RpcSystem;
  private ended = false;
  private sentCount = 0;
  private receivedCount = 0;
  private eventCount = 0;

  /** The call's span: a CLIENT or SERVER span, or a non-recording one if the tracer threw. */
  readonly span: Span;

  /**
   * Starts the span of one call, named after the method, as a child of `parent`, with
   * `attributes` (shared, never mutated). A tracer that throws leaves a non-recording span that
   * still carries the parent's context.
   */
  constructor(
    private readonly plan: MethodPlan,
    private readonly config: TracingConfig,
    private readonly side: CallSide,
    system: RpcSystem,
    attributes: Attributes,
    parent: Context,
  ) {
    const kind = side === "client" ? SpanKind.CLIENT : SpanKind.SERVER;
    let span: Span;
    try {
      span = config.tracer.startSpan(plan.spanName, { kind, attributes }, parent);
    } catch {
      span = trace.wrapSpanContext(trace.getSpanContext(parent) ?? INVALID_SPAN_CONTEXT);
    }
    this.span = span;
    this.context = trace.setSpan(parent, span);
    this.system = system;
    this.recording = safeIsRecording(span);
  }

  /**
   * Records the RPC system once a client learns it from a response `content-type`; ignored when
   * the system is already known.
   */
  learnSystem(system: RpcSystem): void {
    if (this.system !== "unknown" || system === "unknown") return;
    this.system = system;
    if (this.recording && !this.ended) {
      try {
        this.span.setAttributes(this.plan.systemAttributes[system]);
      } catch {
        // tracing never changes the RPC
      }
    }
  }

  /**
   * Counts a message and, if this call records message events and the cap allows, adds an
   * `rpc.message` event with its id (per direction, from 1) and uncompressed size in bytes.
   * The size is computed only for a recording span.
   */
  message(direction: MessageDirection, schema: DescMessage, message: unknown): void {
    const id = direction === "SENT" ? ++this.sentCount : ++this.receivedCount;
    if (!this.recording || this.ended || !this.plan.messageEvents) return;
    if (this.eventCount >= this.config.maxMessageEvents) return;
    this.eventCount++;
    try {
      const size = toBinary(schema, create(schema, message as never)).byteLength;
      const semconv = this.config.semconv;
      const attrs: Attributes = {};
      if (semconv !== "legacy") {
        attrs[ATTR_RPC_MESSAGE_TYPE] = direction;
        attrs[ATTR_RPC_MESSAGE_ID] = id;
        attrs[ATTR_RPC_MESSAGE_UNCOMPRESSED_SIZE] = size;
      }
      if (semconv !== "current") {
        attrs[ATTR_MESSAGE_TYPE] = direction;
        attrs[ATTR_MESSAGE_ID] = id;
        attrs[ATTR_MESSAGE_UNCOMPRESSED_SIZE] = size;
      }
      this.span.addEvent(semconv === "legacy" ? EVENT_MESSAGE : EVENT_RPC_MESSAGE, attrs);
    } catch {
      // a message that does not serialize, or a span that throws, is not the RPC's problem
    }
  }

  /** Ends the span as OK. A no-op after the first end. */
  succeed(): void {
    this.end(OK, undefined);
  }

  /**
   * Ends the span with the status of a failed call: the code of a `ConnectError`; for any other
   * error, `fallback` (a server answers a non-ConnectError with INTERNAL; a client sees UNKNOWN).
   * A no-op after the first end.
   */
  fail(error: unknown, fallback: Code): void {
    this.end(error instanceof ConnectError ? error.code : fallback, error);
  }

  /**
   * `EventListener` of `HandlerContext.signal`, which connect aborts when the call's deadline
   * passes on the server (DEADLINE_EXCEEDED), when the client resets the stream or the connection
   * closes, and when the server shuts down (all three CANCELLED, as gRPC servers report a call the
   * client abandoned, whatever reset code connect-node's client sends). Ends the span then,
   * unless the handler finished first (connect also aborts the signal after every call).
   */
  handleEvent(event: Event): void {
    if (this.ended) return;
    const reason = (event.target as AbortSignal | null)?.reason;
    const deadline = reason instanceof ConnectError && reason.code === Code.DeadlineExceeded;
    this.end(deadline ? Code.DeadlineExceeded : Code.Canceled, reason);
  }

  /**
   * Sets the status attributes and span status for `code`, records the exception of an error
   * span, and ends the span. Status per semconv docs/rpc/grpc.md and connect-rpc.md: a client
   * span is an Error for every code but OK, a server span only for the server error codes.
   */
  private end(code: StatusCode, error: unknown): void {
    if (this.ended) return;
    this.ended = true;
    if (this.recording) {
      try {
        this.setStatus(code, error);
      } catch {
        // tracing never changes the RPC
      }
    }
    try {
      this.span.end();
    } catch {
      // a span processor that throws on end is not the RPC's problem
    }
  }

  private setStatus(code: StatusCode, error: unknown): void {
    const span = this.span;
    const semconv = this.config.semconv;
    const connect = this.system === "connect";
    const name = connect ? connectStatusName(code) : grpcStatusName(code);
    if (semconv !== "legacy") {
      span.setAttribute(ATTR_RPC_RESPONSE_STATUS_CODE, name);
    }
    if (semconv !== "current") {
      if (!connect) span.setAttribute(ATTR_RPC_GRPC_STATUS_CODE, code);
      else if (code !== OK) span.setAttribute(ATTR_RPC_CONNECT_RPC_ERROR_CODE, name);
    }
    if (this.plan.streaming) {
      span.setAttribute(ATTR_MESSAGES_SENT, this.sentCount);
      span.setAttribute(ATTR_MESSAGES_RECEIVED, this.receivedCount);
    }
    const isError = code !== OK && (this.side === "client" || defaultServerErrorCodes.has(code));
    if (!isError) return;
    span.setAttribute(ATTR_ERROR_TYPE, errorType(error, name, this.side));
    span.setStatus({ code: SpanStatusCode.ERROR, message: errorDescription(error) });
    if (error instanceof Error) span.recordException(error);
  }
}

/**
 * `error.type` per semconv docs/general/recording-errors.md: the status code name when the call
 * has one; on a client, the exception's type for an error that is not an RPC status.
 */
function errorType(error: unknown, statusName: string, side: CallSide): string {
  if (side === "server" || error === undefined || error instanceof ConnectError) return statusName;
  return error instanceof Error ? error.name : "_OTHER";
}

/** Status description: the error message without the `[code]` prefix that ConnectError adds. */
function errorDescription(error: unknown): string | undefined {
  if (error instanceof ConnectError) return error.rawMessage;
  if (error instanceof Error) return error.message;
  return undefined;
}

function safeIsRecording(span: Span): boolean {
  try {
    return span.isRecording();
  } catch {
    return false;
  }
}
