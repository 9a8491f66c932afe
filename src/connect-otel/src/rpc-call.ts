import type { DescMessage } from "@bufbuild/protobuf";
import { create, toBinary } from "@bufbuild/protobuf";
import { type Code, ConnectError } from "@connectrpc/connect";
import type { Attributes, Context, Link, Span } from "@opentelemetry/api";
import { INVALID_SPAN_CONTEXT, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import {
  ATTR_ERROR_TYPE,
  ATTR_MESSAGES_RECEIVED,
  ATTR_MESSAGES_SENT,
  ATTR_RPC_MESSAGE_ID,
  ATTR_RPC_MESSAGE_TYPE,
  ATTR_RPC_MESSAGE_UNCOMPRESSED_SIZE,
  ATTR_RPC_STATUS_CODE,
  EVENT_EXCEPTION,
  EVENT_RPC_CLIENT_CALL_EXCEPTION,
  EVENT_RPC_MESSAGE,
  EVENT_RPC_SERVER_CALL_EXCEPTION,
} from "./attribute-names.js";
import type { MethodMetrics } from "./call-metrics.js";
import type { TracingConfig } from "./config.js";
import { exceptionAttributes } from "./exception-attributes.js";
import { addFieldValues } from "./field-values.js";
import { addRequestMetadata, addResponseMetadata } from "./metadata-capture.js";
import type { MethodPlan, RpcSystem } from "./method-plan.js";
import type { StatusCode } from "./status-codes.js";
import { legacyStatusAttribute, OK, statusName } from "./status-codes.js";

/** Which end of the call a span describes. */
export type CallSide = "client" | "server";

/** Direction of a message relative to the span's side (semconv `rpc.message.type`). */
export type MessageDirection = "SENT" | "RECEIVED";

/**
 * How a call's span starts, beyond its parent context and attributes.
 *
 * - `traced: false`: no span (an untraced method or a call the filter leaves out); the call's
 *   context is the parent, so the caller's trace context still propagates.
 * - `root: true` with `links`: a new root span linked to the caller's span context (a public
 *   endpoint's trust boundary).
 */
export interface SpanStart {
  readonly traced: boolean;
  readonly root?: boolean;
  readonly links?: Link[];
}

/**
 * The span of one RPC and its bookkeeping: message counters, the event cap, attribute extractors
 * and hooks, and the guarantee that the span ends exactly once. Nothing here throws: a failing
 * tracer, processor, extractor or hook never reaches the RPC.
 */
export class RpcCall {
  /** Context in which the span is active: handler code and outgoing calls run in it. */
  readonly context: Context;
  private readonly recording: boolean;
  private system: RpcSystem;
  private ended = false;
  private sentCount = 0;
  private receivedCount = 0;
  private eventCount = 0;
  /** A client's request headers, kept to record their legacy metadata names once the system is known. */
  private pendingRequestHeader: Headers | undefined;
  private responseHeader: Headers | undefined;
  private responseTrailer: Headers | undefined;
  /** False for a call that starts no span (untraced method, filter): it records no exception log either. */
  private readonly traced: boolean;
  /** The method's metrics, for a traced call; undefined otherwise. */
  private readonly metrics: MethodMetrics | undefined;
  /** `performance.now()` when the call started, in ms, if it records metrics: the span starts then too. */
  private readonly startTime: number | undefined;

  /** The call's span: a CLIENT or SERVER span, or a non-recording one if the tracer threw. */
  readonly span: Span;

  /**
   * Starts the span of one call, named after the method, as a child of `parent` (or a root span,
   * see {@link SpanStart}), with `attributes` (shared, never mutated). A tracer that throws, and an
   * untraced call, leave a non-recording span that carries the parent's span context.
   */
  constructor(
    private readonly plan: MethodPlan,
    private readonly config: TracingConfig,
    private readonly side: CallSide,
    system: RpcSystem,
    attributes: Attributes,
    parent: Context,
    start: SpanStart = { traced: true },
  ) {
    const kind = side === "client" ? SpanKind.CLIENT : SpanKind.SERVER;
    this.metrics = start.traced ? plan.metrics : undefined;
    // one clock for the span and the duration metric, so that the two agree (semconv rpc-metrics.md)
    this.startTime = this.metrics !== undefined ? performance.now() : undefined;
    let span: Span | undefined;
    if (start.traced) {
      try {
        span = config.tracer.startSpan(
          plan.spanName,
          { kind, attributes, root: start.root, links: start.links, startTime: this.startTime },
          parent,
        );
      } catch {
        // a tracer that throws leaves the call untraced
      }
    }
    if (span === undefined) {
      this.span = trace.wrapSpanContext(trace.getSpanContext(parent) ?? INVALID_SPAN_CONTEXT);
      this.context = parent;
    } else {
      this.span = span;
      this.context = trace.setSpan(parent, span);
    }
    this.system = system;
    this.traced = start.traced;
    this.recording = span !== undefined && safeIsRecording(span);
  }

  /** True if the span records: extractors, hooks and attributes are worth computing. */
  get isRecording(): boolean {
    return this.recording && !this.ended;
  }

  /**
   * Keeps a copy of a client's request headers, as the caller gave them, until the RPC system is
   * known, to record the legacy names of allow-listed request metadata then (they depend on the
   * system). Copies nothing when there is nothing to record later.
   */
  deferRequestMetadata(headers: Headers): void {
    if (this.system === "unknown" && this.config.semconv !== "stable" && this.config.requestHeaders.length > 0) {
      this.pendingRequestHeader = new Headers(headers);
    }
  }

  /**
   * Sets where the response metadata of the call will be when it ends: the response headers and
   * trailers (objects that fill in as the call goes on). When the call ends, the allow-listed keys
   * are recorded from them, and from a failed call's `ConnectError.metadata` (see `setStatus`).
   */
  watchResponseMetadata(header: Headers | undefined, trailer: Headers | undefined): void {
    this.responseHeader = header;
    this.responseTrailer = trailer;
  }

  /**
   * Records the RPC system once a client learns it from a response `content-type`; ignored when
   * the system is already known.
   */
  learnSystem(system: RpcSystem): void {
    if (this.system !== "unknown" || system === "unknown") return;
    this.system = system;
    if (!this.isRecording) return;
    this.safely(() => {
      this.span.setAttributes(this.plan.systemAttributes[system]);
      const pending = this.pendingRequestHeader;
      if (pending === undefined) return;
      this.pendingRequestHeader = undefined;
      const attrs: Attributes = {};
      addRequestMetadata(attrs, this.config.requestHeaders, pending, "legacy", system);
      this.span.setAttributes(attrs);
    });
  }

  /**
   * Counts a message and, while the span records:
   * - a streamed message (the requests of client-streaming and bidi calls, the responses of
   *   server-streaming and bidi calls) goes to the `onMessage` hook, and its annotated fields to
   *   its event;
   * - the single request goes to `onRequest` (its annotated fields were recorded at span start by
   *   the caller), the single response's annotated fields become span attributes, then it goes
   *   to `onResponse`;
   * - if this call records message events and the cap allows, an `rpc.message` event with its id
   *   (per direction, from 1) and uncompressed size in bytes.
   *
   * `message` may be a message init object on a client; extractors and hooks get a message.
   */
  message(direction: MessageDirection, schema: DescMessage, message: unknown): void {
    const id = direction === "SENT" ? ++this.sentCount : ++this.receivedCount;
    const metrics = this.ended ? undefined : this.metrics;
    const recordsSize = metrics?.recordsSizes === true;
    const recording = this.isRecording;
    if (!recording && !recordsSize) return;
    const plan = this.plan;
    const isRequest = (this.side === "client") === (direction === "SENT");
    const streamed = isRequest ? plan.requestStreaming : plan.responseStreaming;
    const extractor = recording ? (isRequest ? plan.request : plan.response) : undefined;
    const hooks = recording ? plan.hooks : undefined;
    const recordEvent = recording && plan.messageEvents && this.eventCount < this.config.maxMessageEvents;
    if (!recordEvent && !recordsSize && extractor === undefined && hooks === undefined) return;
    let shaped: unknown;
    try {
      shaped = create(schema, message as never);
    } catch {
      return; // a message that does not build is not the RPC's problem
    }
    let size: number | undefined;
    if (recordsSize) {
      size = this.safely(() => toBinary(schema, shaped as never).byteLength);
      if (size !== undefined)
        this.safely(() => metrics?.recordSize(isRequest, size as number, this.system, this.context));
    }
    // sampled out with legacy metrics on, the message's size was all there was to record
    if (!recording) return;
    let eventAttrs: Attributes | undefined;
    if (streamed) {
      if (extractor !== undefined && recordEvent) eventAttrs = this.safely(() => addFieldValues({}, extractor(shaped)));
      if (hooks?.onMessage) this.hook(() => hooks.onMessage?.(this.span, shaped, isRequest ? "request" : "response"));
    } else if (isRequest) {
      if (hooks?.onRequest) this.hook(() => hooks.onRequest?.(this.span, shaped));
    } else {
      if (extractor !== undefined) this.safely(() => this.span.setAttributes(addFieldValues({}, extractor(shaped))));
      if (hooks?.onResponse) this.hook(() => hooks.onResponse?.(this.span, shaped));
    }
    if (!recordEvent || this.ended) return;
    this.eventCount++;
    try {
      // the size costs a second serialization of the message: about 0.35 µs of the ~2.5 µs an
      // event costs here (bench/README.md), the rest is the SDK's addEvent
      const bytes = size ?? toBinary(schema, shaped as never).byteLength;
      const attrs: Attributes = {
        [ATTR_RPC_MESSAGE_TYPE]: direction,
        [ATTR_RPC_MESSAGE_ID]: id,
        [ATTR_RPC_MESSAGE_UNCOMPRESSED_SIZE]: bytes,
      };
      this.span.addEvent(EVENT_RPC_MESSAGE, eventAttrs === undefined ? attrs : Object.assign(eventAttrs, attrs));
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
   * Ends the span of a server call that was cut off (see `ServerCallEnd`): DEADLINE_EXCEEDED for
   * a deadline, CANCELLED for a client that went away or a server shutdown (as gRPC servers report
   * a call the client abandoned, whatever reset code its client sent), with the abort reason as
   * the error (a `ConnectError` of any code, or nothing). A no-op after the first end.
   */
  cutOff(code: Code.DeadlineExceeded | Code.Canceled, reason: unknown): void {
    this.end(code, reason);
  }

  /**
   * Sets the status attributes and span status for `code`, records the exception of an error
   * span, and ends the span. Status per semconv docs/rpc/grpc.md and connect-rpc.md: a client
   * span is an Error for every code but OK, a server span only for the server error codes.
   */
  private end(code: StatusCode, error: unknown): void {
    if (this.ended) return;
    const onError = this.plan.hooks?.onError;
    if (code !== OK && onError !== undefined && this.recording) {
      this.hook(() => onError(this.span, connectErrorOf(error, code)));
    }
    this.ended = true;
    const endTime = this.startTime !== undefined ? performance.now() : undefined;
    const isError = code !== OK && (this.side === "client" || this.plan.serverErrorCodes.has(code));
    const name = statusName(this.system, code);
    if (this.recording) {
      try {
        this.setStatus(code, name, error, isError);
      } catch {
        // a span that throws is not the RPC's problem
      }
    }
    if (isError && error !== undefined && this.traced && this.config.exceptionLogger !== undefined) {
      this.safely(() => this.logException(error));
    }
    try {
      this.span.end(endTime);
    } catch {
      // a span processor that throws on end is not the RPC's problem
    }
    if (this.metrics !== undefined) {
      try {
        this.recordMetrics(code, name, error, isError, endTime);
      } catch {
        // a meter that throws is not the RPC's problem
      }
    }
  }

  /** The call's data points, with the span's duration and the same status (semconv rpc-metrics.md). */
  private recordMetrics(
    code: StatusCode,
    name: string,
    error: unknown,
    isError: boolean,
    endTime: number | undefined,
  ): void {
    const client = this.side === "client";
    this.metrics?.record({
      system: this.system,
      code,
      errorType: isError ? errorType(error, name, this.side) : undefined,
      durationMs: (endTime ?? 0) - (this.startTime ?? 0),
      requests: client ? this.sentCount : this.receivedCount,
      responses: client ? this.receivedCount : this.sentCount,
      context: this.context,
    });
  }

  /**
   * Status attributes (`rpc.status_code`; legacy `rpc.grpc.status_code`, `rpc.connect_rpc.error_code`),
   * allow-listed response metadata, message totals, and for an error span `error.type`, the span
   * status and the exception event.
   */
  private setStatus(code: StatusCode, name: string, error: unknown, isError: boolean): void {
    const span = this.span;
    const semconv = this.config.semconv;
    if (semconv !== "legacy") {
      span.setAttribute(ATTR_RPC_STATUS_CODE, name);
    }
    if (this.config.responseHeaders.length > 0 || this.config.responseTrailers.length > 0) {
      span.setAttributes(this.responseMetadata(error));
    }
    const legacy = semconv !== "stable" ? legacyStatusAttribute(this.system, code, name) : undefined;
    if (legacy !== undefined) span.setAttribute(legacy[0], legacy[1]);
    if (this.plan.streaming) {
      span.setAttribute(ATTR_MESSAGES_SENT, this.sentCount);
      span.setAttribute(ATTR_MESSAGES_RECEIVED, this.receivedCount);
    }
    if (!isError) return;
    // error.type came to the RPC spans after v1.37 (docs/non-normative/rpc-migration.md, PR #2852)
    if (semconv !== "legacy") span.setAttribute(ATTR_ERROR_TYPE, errorType(error, name, this.side));
    span.setStatus({ code: SpanStatusCode.ERROR, message: errorDescription(error) });
    if (error !== undefined && this.config.exceptionSpanEvents) this.recordException(error);
  }

  /**
   * The allow-listed response headers and trailers of the call. A failed call's
   * `ConnectError.metadata` is where connect puts what the error carries: on a client, headers and
   * trailers merged (so it counts as both); on a server, what connect sends with the error — in
   * the response headers of a Connect unary call, in the trailers otherwise.
   */
  private responseMetadata(error: unknown): Attributes {
    let headers: (Headers | undefined)[] = [this.responseHeader];
    let trailers: (Headers | undefined)[] = [this.responseTrailer];
    if (error instanceof ConnectError) {
      if (this.side === "client") {
        headers = [error.metadata];
        trailers = [error.metadata];
      } else if (this.system === "connect" && !this.plan.streaming) headers = [...headers, error.metadata];
      else trailers = [...trailers, error.metadata];
    }
    const { config } = this;
    const attrs: Attributes = {};
    addResponseMetadata(
      attrs,
      config.responseHeaders,
      config.responseTrailers,
      headers,
      trailers,
      config.semconv,
      this.system,
    );
    return attrs;
  }

  /**
   * An `exception` span event with `exception.type`, `exception.message` and
   * `exception.stacktrace` set here (see `exceptionAttributes`), not by `span.recordException`.
   */
  private recordException(error: unknown): void {
    this.span.addEvent(EVENT_EXCEPTION, exceptionAttributes(error));
  }

  /**
   * The log-based exception event of a failed call (semconv v1.45.0 docs/rpc/rpc-exceptions.md):
   * `rpc.client.call.exception` with severity WARN (13) or `rpc.server.call.exception` with
   * severity ERROR (17), the exception attributes, in the call's span context.
   */
  private logException(error: unknown): void {
    const client = this.side === "client";
    this.config.exceptionLogger?.emit({
      eventName: client ? EVENT_RPC_CLIENT_CALL_EXCEPTION : EVENT_RPC_SERVER_CALL_EXCEPTION,
      severityNumber: client ? 13 : 17,
      severityText: client ? "WARN" : "ERROR",
      attributes: exceptionAttributes(error),
      context: this.context,
    });
  }

  /** Runs tracing work; what it throws is dropped, because tracing never changes the RPC. */
  private safely<T>(work: () => T): T | undefined {
    try {
      return work();
    } catch {
      return undefined;
    }
  }

  /** Runs a user hook; what it throws is recorded on the span as an exception, then dropped. */
  private hook(run: () => void): void {
    try {
      run();
    } catch (error) {
      this.safely(() => this.recordException(error));
    }
  }
}

/**
 * The error a call ends with as `onError` gets it, always with `code`, the code the span records:
 * a `ConnectError` of that code as is; anything else — another error, or a `ConnectError` of
 * another code (a server's abort reason: an HTTP/2 reset code, ECONNRESET as ABORTED, where the
 * span records CANCELLED) — as a new `ConnectError` with its message and `code`, the original as
 * `cause` (not `ConnectError.from`, which makes an AbortError or TimeoutError CANCELLED where
 * connect answers INTERNAL); nothing (a consumer that stopped reading, a client that went away)
 * as a `ConnectError` with `code` only.
 */
function connectErrorOf(error: unknown, code: Code): ConnectError {
  if (error instanceof ConnectError && error.code === code) return error;
  if (error === undefined) return new ConnectError("the call ended early", code);
  if (error instanceof ConnectError) return new ConnectError(error.rawMessage, code, error.metadata, undefined, error);
  return new ConnectError(error instanceof Error ? error.message : String(error), code, undefined, undefined, error);
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
