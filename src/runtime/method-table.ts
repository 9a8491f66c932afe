import type { DescService } from "@bufbuild/protobuf";

/** How a method streams, in protobuf-es's spelling (`DescMethod["methodKind"]`). */
export type MethodKind = "unary" | "server_streaming" | "client_streaming" | "bidi_streaming";

/** A method's `idempotency_level` option (google/protobuf/descriptor.proto, MethodOptions). */
export type Idempotency = "idempotency_unknown" | "no_side_effects" | "idempotent";

/**
 * What the schema says of one method, computed by protoc-gen-connect-otel at generation time.
 */
export interface MethodFacts {
  /** Fully-qualified method without leading slash, `user.v1.UserService/FetchUser`: span name and `rpc.method`. */
  readonly name: string;
  /** How the method streams. */
  readonly kind: MethodKind;
  /** The method's idempotency level. */
  readonly idempotency: Idempotency;
}

/**
 * The per-method table of a service that generated code hands to the runtime: one entry per
 * method, keyed by the method's local name (`fetchUser`), as in `ServiceImpl<S>`.
 */
export type ServiceTable<S extends DescService> = { readonly [K in keyof S["method"]]: MethodFacts };
