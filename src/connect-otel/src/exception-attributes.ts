import type { Attributes } from "@opentelemetry/api";
import { ATTR_EXCEPTION_MESSAGE, ATTR_EXCEPTION_STACKTRACE, ATTR_EXCEPTION_TYPE } from "./attribute-names.js";

/**
 * The type of a thrown value as `exception.type` names it (semconv v1.45.0
 * docs/registry/attributes/exception.md: "the dynamic type of the exception should be
 * preferred"): an error's `name` (`ConnectError`, `TypeError`), or its constructor's name where
 * `name` is the generic `Error`; `typeof` for a value that is not an error (`string`).
 *
 * Never the error's `code`: the API's `span.recordException` takes `exception.type` from a `code`
 * property when there is one, which turns a ConnectError into "5".
 */
export function exceptionType(error: unknown): string {
  if (!(error instanceof Error)) return error === null ? "null" : typeof error;
  const ctor = (error as { constructor?: { name?: unknown } }).constructor?.name;
  if (error.name === "Error" && typeof ctor === "string" && ctor !== "") return ctor;
  return error.name || "Error";
}

/**
 * `exception.type`, `exception.message` and `exception.stacktrace` of a thrown value (semconv
 * v1.45.0 docs/rpc/rpc-exceptions.md and docs/exceptions/exceptions-spans.md): the message as the
 * error states it (a ConnectError's includes its `[code]` prefix), the stack where there is one;
 * a value that is not an error gives its string form as the message.
 */
export function exceptionAttributes(error: unknown): Attributes {
  const attrs: Attributes = { [ATTR_EXCEPTION_TYPE]: exceptionType(error) };
  if (error instanceof Error) {
    attrs[ATTR_EXCEPTION_MESSAGE] = error.message;
    if (typeof error.stack === "string") attrs[ATTR_EXCEPTION_STACKTRACE] = error.stack;
  } else {
    attrs[ATTR_EXCEPTION_MESSAGE] = String(error);
  }
  return attrs;
}
