import type {
  DescMessage,
  DescMethod,
  DescMethodBiDiStreaming,
  DescMethodClientStreaming,
  DescMethodServerStreaming,
  DescService,
  MessageShape,
} from "@bufbuild/protobuf";
import type { ConnectError } from "@connectrpc/connect";
import type { Span } from "@opentelemetry/api";

/**
 * A streamed message as `onMessage` gets it: a request message with `"request"`, a response
 * message with `"response"`. Checking the direction narrows the message's type.
 */
export type StreamedMessage<I, O> = [message: I, direction: "request"] | [message: O, direction: "response"];

/**
 * The streamed messages of a method by its kind: requests of a client-streaming method, responses
 * of a server-streaming method, both of a bidi method, none of a unary method.
 */
export type StreamedMessageOf<M extends DescMethod> =
  M extends DescMethodBiDiStreaming<infer I, infer O>
    ? StreamedMessage<MessageShape<I>, MessageShape<O>>
    : M extends DescMethodServerStreaming<DescMessage, infer O>
      ? [message: MessageShape<O>, direction: "response"]
      : M extends DescMethodClientStreaming<infer I, DescMessage>
        ? [message: MessageShape<I>, direction: "request"]
        : never;

/**
 * Hooks of one method, typed with its request message `I` and response message `O`. Each is called
 * with the call's span while the span records (never for a sampled-out or untraced call), on the
 * client and on the server alike. A hook that throws is contained: its exception is recorded on
 * the span as an `exception` event and the RPC goes on unchanged.
 */
export interface MethodHooks<I, O, Streamed extends unknown[] = StreamedMessage<I, O>> {
  /** The request of a unary or server-streaming call, after the span started. */
  onRequest?(span: Span, request: I): void;
  /** The response of a unary or client-streaming call that succeeded, before the span ends. */
  onResponse?(span: Span, response: O): void;
  /**
   * Each streamed message: the requests of client-streaming and bidi calls, the responses of
   * server-streaming and bidi calls, in the order the span sees them.
   */
  onMessage?(span: Span, ...message: Streamed): void;
  /**
   * A call that ends with an error, before the span ends: the `ConnectError` the caller gets (the
   * client) or connect sends (the server). Its `code` is always the code the span records: other
   * errors, and a server's abort reason of another code (CANCELLED is recorded for any client that
   * went away), arrive as a new `ConnectError` with that code, the original as `cause`.
   */
  onError?(span: Span, error: ConnectError): void;
}

/** Hooks of a service's methods, keyed by the method's local name (`fetchUser`), as in `ServiceImpl<S>`. */
export type ServiceHooks<S extends DescService> = {
  readonly [K in keyof S["method"]]?: MethodHooks<
    MessageShape<S["method"][K]["input"]>,
    MessageShape<S["method"][K]["output"]>,
    StreamedMessageOf<S["method"][K]>
  >;
};

/** Hooks of one method as the runtime calls them, whatever its message types. */
// biome-ignore lint/suspicious/noExplicitAny: the runtime passes messages of any type through
export type AnyMethodHooks = MethodHooks<any, any, [message: any, direction: "request" | "response"]>;
