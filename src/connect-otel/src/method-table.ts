import type { DescService, MessageShape } from "@bufbuild/protobuf";
import type { Code } from "@connectrpc/connect";

/** How a method streams, in protobuf-es's spelling (`DescMethod["methodKind"]`). */
export type MethodKind = "unary" | "server_streaming" | "client_streaming" | "bidi_streaming";

/** A method's `idempotency_level` option (google/protobuf/descriptor.proto, MethodOptions). */
export type Idempotency = "idempotency_unknown" | "no_side_effects" | "idempotent";

/**
 * A raw value that generated code reads from a message field annotated with
 * `(connectotel.v1.field).attribute`, as protobuf-es holds it: the runtime records bigints (64-bit
 * integers) as decimal strings and Uint8Array (bytes) as base64; undefined (an unset message on the
 * path, an unset optional field) records nothing.
 */
export type FieldValue =
  | string
  | number
  | boolean
  | bigint
  | Uint8Array
  | readonly string[]
  | readonly number[]
  | readonly boolean[]
  | readonly bigint[]
  | readonly Uint8Array[]
  | undefined;

/**
 * Reads the annotated fields of one message into `{ "<attribute key>": value }`: generated code,
 * compiled from the schema's `(connectotel.v1.field)` annotations, plain property reads.
 */
export type AttributeExtractor<M> = (message: M) => Readonly<Record<string, FieldValue>>;

/**
 * What the schema says of one method, computed by protoc-gen-connect-otel at generation time.
 * `I` and `O` are the request and response message types.
 */
export interface MethodFacts<I = never, O = never> {
  /** Fully-qualified method without leading slash, `user.v1.UserService/FetchUser`: span name and `rpc.method`. */
  readonly name: string;
  /** How the method streams. */
  readonly kind: MethodKind;
  /** The method's idempotency level. */
  readonly idempotency: Idempotency;
  /**
   * False when the method or its service is annotated `untraced`: no spans, but trace context
   * still propagates. Absent means traced.
   */
  readonly traced?: boolean;
  /**
   * Status codes that make the server span an Error (`(connectotel.v1.method).server_error_codes`),
   * replacing the semconv default list. Absent means the default.
   */
  readonly serverErrorCodes?: readonly Code[];
  /** Annotated fields of the request message. */
  readonly request?: AttributeExtractor<I>;
  /** Annotated fields of the response message. */
  readonly response?: AttributeExtractor<O>;
}

/**
 * The per-method table of a service that generated code hands to the runtime: one entry per
 * method, keyed by the method's local name (`fetchUser`), as in `ServiceImpl<S>`.
 */
export type ServiceTable<S extends DescService> = {
  readonly [K in keyof S["method"]]: MethodFacts<
    MessageShape<S["method"][K]["input"]>,
    MessageShape<S["method"][K]["output"]>
  >;
};

/** A method's facts as the runtime reads them, whatever its message types. */
// biome-ignore lint/suspicious/noExplicitAny: the runtime passes messages of any type through
export type AnyMethodFacts = MethodFacts<any, any>;
