import type { DescMethod, DescService } from "@bufbuild/protobuf";
import { MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";
import type { Idempotency, MethodFacts } from "../runtime/method-table.js";

/**
 * The facts of one method that generated code hands to the runtime, read off its descriptor:
 * fully-qualified name `package.Service/Method` (span name, semconv docs/rpc/rpc-spans.md
 * "Span name"), method kind, and the `idempotency_level` method option.
 */
export function methodFacts(method: DescMethod): MethodFacts {
  return {
    name: `${method.parent.typeName}/${method.name}`,
    kind: method.methodKind,
    idempotency: idempotencyName(method.idempotency),
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
