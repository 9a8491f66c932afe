import type { DescMethod, DescService } from "@bufbuild/protobuf";
import { MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";
import type { Annotations } from "./annotations.js";
import { GenerationError } from "./generation-error.js";
import type { RecordedField } from "./recorded-fields.js";
import { recordedFields } from "./recorded-fields.js";

/**
 * Method kind as the runtime's `MethodFacts.kind` spells it (the generated table is type-checked
 * against the runtime's `ServiceTable`, so a mismatch fails to compile).
 */
export type MethodKind = "unary" | "server_streaming" | "client_streaming" | "bidi_streaming";

/** Idempotency level as the runtime's `MethodFacts.idempotency` spells it (`MethodOptions.idempotency_level`). */
export type Idempotency = "idempotency_unknown" | "no_side_effects" | "idempotent";

/**
 * What the generator prints into a method's entry of the method table (the runtime's
 * `MethodFacts`), before it becomes code.
 */
export interface PrintedFacts {
  /** `package.Service/Method`: span name (semconv docs/rpc/rpc-spans.md, "Span name"). */
  readonly name: string;
  readonly kind: MethodKind;
  readonly idempotency: Idempotency;
  /** False if the method or its service is annotated `untraced`. */
  readonly traced: boolean;
  /** gRPC code numbers of `(connectotel.v1.method).server_error_codes`; undefined for the default. */
  readonly serverErrorCodes: readonly number[] | undefined;
  /** Annotated fields of the request; empty for an untraced method. */
  readonly request: readonly RecordedField[];
  /** Annotated fields of the response; empty for an untraced method. */
  readonly response: readonly RecordedField[];
}

/** Highest gRPC status code number, UNAUTHENTICATED (grpc/doc/statuscodes.md). */
const maxStatusCode = 16;

/**
 * The facts of one method, read off its descriptor and its connect-otel annotations: name, method
 * kind, the `idempotency_level` method option, whether it is traced, its server error codes, and
 * the annotated fields of its request and response.
 *
 * @throws GenerationError for an annotation that cannot be honoured (see `recordedFields`), and for
 * `server_error_codes` that lists CODE_UNSPECIFIED or a number that is not a gRPC status code
 */
export function methodFacts(method: DescMethod, annotations: Annotations): PrintedFacts {
  const methodAnnotation = annotations.method(method);
  const traced = annotations.service(method.parent)?.untraced !== true && methodAnnotation?.untraced !== true;
  const codes = methodAnnotation?.serverErrorCodes ?? [];
  const bad = codes.find((code) => !Number.isInteger(code) || code < 1 || code > maxStatusCode);
  if (bad !== undefined) {
    throw new GenerationError(
      method.parent.file,
      `method ${method.parent.typeName}.${method.name}`,
      `(connectotel.v1.method).server_error_codes lists ${bad === 0 ? "CODE_UNSPECIFIED" : bad}, which is not a status code that can be an error`,
    );
  }
  return {
    name: `${method.parent.typeName}/${method.name}`,
    kind: method.methodKind,
    idempotency: idempotencyName(method.idempotency),
    traced,
    serverErrorCodes: codes.length > 0 ? [...new Set(codes)].sort((a, b) => a - b) : undefined,
    request: traced ? recordedFields(method.input, annotations) : [],
    response: traced ? recordedFields(method.output, annotations) : [],
  };
}

function idempotencyName(level: MethodOptions_IdempotencyLevel): Idempotency {
  switch (level) {
    case MethodOptions_IdempotencyLevel.NO_SIDE_EFFECTS:
      return "no_side_effects";
    case MethodOptions_IdempotencyLevel.IDEMPOTENT:
      return "idempotent";
    default:
      return "idempotency_unknown";
  }
}

/**
 * Names that generated code declares for a service. Service names are proto identifiers, so the
 * prefixed function names are valid identifiers and never reserved words; the table's `$` cannot
 * occur in a proto name, so it never meets a name protoc-gen-es exports.
 */
export function serviceNames(service: DescService): { client: string; server: string; table: string } {
  return {
    client: `createTraced${service.name}Client`,
    server: `trace${service.name}`,
    table: `${service.name}$methods`,
  };
}
