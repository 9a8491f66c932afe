import type { DescMessage } from "@bufbuild/protobuf";
import type { CallOptions, StreamResponse } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import { context } from "@opentelemetry/api";
import { systemOfContentType } from "./method-plan.js";
import type { MessageDirection, RpcCall } from "./rpc-call.js";
import type { ServerCallEnd } from "./server-call-end.js";

/**
 * A request stream that records every message it yields on the call (`SENT` on a client,
 * `RECEIVED` on a server), with the shape of `source` so that connect treats it exactly as it
 * treats `source` (tracing never changes a call's result):
 *
 * - the source's iterator is made when the consumer asks for this stream's iterator, and what its
 *   `[Symbol.asyncIterator]()` throws reaches the consumer then;
 * - the iterator has `return()` and `throw()` exactly when the source's iterator has them, and
 *   forwards them (connect's client transports refuse a request iterator without `throw()`, with
 *   INTERNAL "AsyncIterable does not implement throw");
 * - it pulls from the source only when its consumer pulls;
 * - a `source` that is not an async iterable (an array, a sync generator) is returned as it is:
 *   connect fails the call with its own error.
 */
export function recordMessages<T>(
  source: AsyncIterable<T>,
  call: RpcCall,
  direction: MessageDirection,
  schema: DescMessage,
): AsyncIterable<T> {
  const candidate = source as { [Symbol.asyncIterator]?: unknown } | null | undefined;
  if (typeof candidate?.[Symbol.asyncIterator] !== "function") return source;
  return {
    [Symbol.asyncIterator](): AsyncIterator<T> {
      const it = source[Symbol.asyncIterator]();
      const record = (result: IteratorResult<T>): IteratorResult<T> => {
        if (result.done !== true) call.message(direction, schema, result.value);
        return result;
      };
      const recorded: AsyncIterator<T> = {
        // a next() that throws synchronously throws to the consumer as the source's would
        next: () => Promise.resolve(it.next()).then(record),
      };
      const { return: returnFn, throw: throwFn } = it;
      if (typeof returnFn === "function") recorded.return = (value?: unknown) => returnFn.call(it, value);
      if (typeof throwFn === "function") recorded.throw = (error?: unknown) => throwFn.call(it, error);
      return recorded;
    },
  };
}

/**
 * The response stream of a traced streaming handler. Every step of the handler's iterator runs
 * with the server span active — an async generator's body runs when it is iterated, not when the
 * handler is called, so wrapping the call alone would lose the context. Records a `SENT` event per
 * message and tells `end` how the handler finished: its stream ended, it threw (or connect reported
 * a failed write into it with `throw()`), or connect stopped iterating (`return()`: the client
 * went away); `end` decides the span's status (see `ServerCallEnd`).
 */
export class HandlerResponseStream<T> implements AsyncIterable<T>, AsyncIterator<T> {
  constructor(
    private readonly iterator: AsyncIterator<T>,
    private readonly call: RpcCall,
    private readonly schema: DescMessage,
    private readonly end: ServerCallEnd,
  ) {}

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return this;
  }

  // next() chains on the step's promise rather than awaiting it in an async function: one promise
  // and its microtask less per streamed message
  next(): Promise<IteratorResult<T>> {
    let step: Promise<IteratorResult<T>>;
    try {
      step = Promise.resolve(context.with(this.call.context, this.iterator.next, this.iterator));
    } catch (error) {
      this.end.fail(error);
      return Promise.reject(error);
    }
    return step.then(this.stepped, this.failed);
  }

  private readonly stepped = (result: IteratorResult<T>): IteratorResult<T> => {
    if (result.done === true) this.end.succeed();
    else this.call.message("SENT", this.schema, result.value);
    return result;
  };

  private readonly failed = (error: unknown): never => {
    this.end.fail(error);
    throw error;
  };

  async return(value?: unknown): Promise<IteratorResult<T>> {
    try {
      const it = this.iterator;
      if (it.return) return await context.with(this.call.context, it.return, it, value);
      return { done: true, value: value as T };
    } finally {
      this.end.stopped();
    }
  }

  async throw(error?: unknown): Promise<IteratorResult<T>> {
    try {
      const it = this.iterator;
      if (it.throw) return await context.with(this.call.context, it.throw, it, error);
      throw error;
    } finally {
      this.end.fail(error);
    }
  }
}

/**
 * The response stream a traced client returns for server-streaming and bidi methods. Awaits the
 * transport's response on the first `next()` (as connect's own client does), learns the RPC system
 * from its `content-type`, calls `onHeader` and `onTrailer` at the same points as connect, records
 * a `RECEIVED` event per message, and ends the span on completion, on error, or when the consumer
 * stops early (`return()`: CANCELLED; `abandon` is aborted, which closes the transport's stream).
 */
export class ClientResponseStream<T> implements AsyncIterable<T>, AsyncIterator<T> {
  private iterator: AsyncIterator<T> | undefined;
  private response: StreamResponse<DescMessage, DescMessage> | undefined;
  /** True once the stream completed, failed or was returned: `next()` then answers done. */
  private finished = false;
  /** The last `next()` step: the next one starts when it settled, as a generator's steps do. */
  private lastStep: Promise<IteratorResult<T>> | undefined;
  /** Steps asked for and not yet settled; with none, the next step starts at once. */
  private unsettled = 0;
  private readonly runStep = () => this.step();

  constructor(
    private readonly pending: Promise<StreamResponse<DescMessage, DescMessage>>,
    private readonly call: RpcCall,
    private readonly schema: DescMessage,
    private readonly options: CallOptions | undefined,
    private readonly abandon: AbortController,
  ) {}

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return this;
  }

  /**
   * The next message. Calls made before the previous one settled wait for it, as an async
   * generator queues them (connect's own response stream is one): `onHeader` and `onTrailer`
   * run once however the stream is read.
   */
  next(): Promise<IteratorResult<T>> {
    const prior = this.unsettled > 0 ? this.lastStep : undefined;
    this.unsettled++;
    const step = prior === undefined ? this.step() : prior.then(this.runStep, this.runStep);
    this.lastStep = step;
    return step;
  }

  private async step(): Promise<IteratorResult<T>> {
    try {
      // as a finished async generator (connect's own response stream) does: done, no more callbacks
      if (this.finished) return { done: true, value: undefined as T };
      let it = this.iterator;
      if (it === undefined) {
        const response = await this.pending;
        this.response = response;
        this.call.learnSystem(systemOfContentType(response.header.get("content-type")));
        this.call.watchResponseMetadata(response.header, response.trailer);
        this.options?.onHeader?.(response.header);
        it = (response.message as AsyncIterable<T>)[Symbol.asyncIterator]();
        this.iterator = it;
      }
      const result = await it.next();
      if (result.done === true) {
        this.finished = true;
        this.call.succeed();
        this.options?.onTrailer?.((this.response as StreamResponse<DescMessage, DescMessage>).trailer);
      } else {
        this.call.message("RECEIVED", this.schema, result.value);
      }
      return result;
    } catch (error) {
      this.finished = true;
      this.call.fail(error, Code.Unknown);
      throw error;
    } finally {
      this.unsettled--;
    }
  }

  async return(value?: unknown): Promise<IteratorResult<T>> {
    this.finished = true;
    this.call.fail(undefined, Code.Canceled);
    this.abandon.abort(new ConnectError("the consumer stopped reading the response stream", Code.Canceled));
    try {
      await this.iterator?.return?.();
    } catch {
      // the stream was aborted just above; its iterator may answer with that error
    }
    return { done: true, value: value as T };
  }
}
