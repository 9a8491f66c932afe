import type { DescMessage } from "@bufbuild/protobuf";
import type { CallOptions, StreamResponse } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import { context } from "@opentelemetry/api";
import { systemOfContentType } from "./method-plan.js";
import type { MessageDirection, RpcCall } from "./rpc-call.js";

/**
 * A request stream that records every message it yields on the call (`SENT` on a client,
 * `RECEIVED` on a server). It pulls from the source only when its consumer pulls, and forwards
 * `return()` and `throw()`, so back-pressure and early exits behave as without it.
 */
export class RecordedMessages<T> implements AsyncIterable<T>, AsyncIterator<T> {
  private iterator: AsyncIterator<T> | undefined;

  constructor(
    private readonly source: AsyncIterable<T>,
    private readonly call: RpcCall,
    private readonly direction: MessageDirection,
    private readonly schema: DescMessage,
  ) {}

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return this;
  }

  async next(): Promise<IteratorResult<T>> {
    this.iterator ??= this.source[Symbol.asyncIterator]();
    const result = await this.iterator.next();
    if (result.done !== true) this.call.message(this.direction, this.schema, result.value);
    return result;
  }

  async return(value?: unknown): Promise<IteratorResult<T>> {
    const it = this.iterator;
    if (it?.return) return it.return(value);
    return { done: true, value: value as T };
  }

  async throw(error?: unknown): Promise<IteratorResult<T>> {
    const it = this.iterator;
    if (it?.throw) return it.throw(error);
    throw error;
  }
}

/**
 * The response stream of a traced streaming handler. Every step of the handler's iterator runs
 * with the server span active — an async generator's body runs when it is iterated, not when the
 * handler is called, so wrapping the call alone would lose the context. Records a `SENT` event per
 * message and ends the span on completion (OK), on error (its code; INTERNAL for a non-ConnectError,
 * as connect answers it), or when the framework stops iterating (CANCELLED).
 */
export class HandlerResponseStream<T> implements AsyncIterable<T>, AsyncIterator<T> {
  constructor(
    private readonly iterator: AsyncIterator<T>,
    private readonly call: RpcCall,
    private readonly schema: DescMessage,
  ) {}

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return this;
  }

  async next(): Promise<IteratorResult<T>> {
    let result: IteratorResult<T>;
    try {
      result = await context.with(this.call.context, this.iterator.next, this.iterator);
    } catch (error) {
      this.call.fail(error, Code.Internal);
      throw error;
    }
    if (result.done === true) this.call.succeed();
    else this.call.message("SENT", this.schema, result.value);
    return result;
  }

  async return(value?: unknown): Promise<IteratorResult<T>> {
    try {
      const it = this.iterator;
      if (it.return) return await context.with(this.call.context, it.return, it, value);
      return { done: true, value: value as T };
    } finally {
      this.call.fail(undefined, Code.Canceled);
    }
  }

  async throw(error?: unknown): Promise<IteratorResult<T>> {
    try {
      const it = this.iterator;
      if (it.throw) return await context.with(this.call.context, it.throw, it, error);
      throw error;
    } finally {
      this.call.fail(error, Code.Internal);
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
    const prior = this.lastStep;
    const step = prior === undefined ? this.step() : prior.then(this.runStep, this.runStep);
    this.lastStep = step;
    return step;
  }

  private async step(): Promise<IteratorResult<T>> {
    // as a finished async generator (connect's own response stream) does: done, no more callbacks
    if (this.finished) return { done: true, value: undefined as T };
    try {
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
