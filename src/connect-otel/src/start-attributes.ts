import type { Attributes } from "@opentelemetry/api";
import type { TracingConfig } from "./config.js";
import { addFieldValues } from "./field-values.js";
import { addRequestMetadata } from "./metadata-capture.js";
import type { MethodPlan, RpcSystem } from "./method-plan.js";

/** What one call adds to its method's start attributes. */
export interface CallStart {
  readonly system: RpcSystem;
  /** The single request message of a unary or server-streaming call; undefined for request streams. */
  readonly request: unknown;
  /** The request headers; present whenever request headers are recorded (`requestHeaders`). */
  readonly requestHeader: Headers | undefined;
  /** Deadline attribute key and value in ms, or undefined when the call has no deadline. */
  readonly deadline: readonly [key: string, ms: number] | undefined;
}

/**
 * The attributes a call's span starts with: `base` (shared, never mutated) plus the annotated
 * fields of the single request (`plan.request`), the allow-listed request headers, and the
 * deadline. Returns `base` itself when there is nothing to add. What an extractor throws is
 * dropped with the fields it would have added.
 *
 * @param shape - turns the request into a message (a client's request may be an init object)
 */
export function startAttributes(
  base: Attributes,
  plan: MethodPlan,
  config: TracingConfig,
  call: CallStart,
  shape: (request: unknown) => unknown,
): Attributes {
  const extractor = plan.requestStreaming ? undefined : plan.request;
  const metadata = config.requestHeaders;
  if (extractor === undefined && metadata.length === 0 && call.deadline === undefined) return base;
  const attrs: Attributes = { ...base };
  if (extractor !== undefined) {
    try {
      addFieldValues(attrs, extractor(shape(call.request)));
    } catch {
      // an extractor that throws records nothing; the RPC goes on
    }
  }
  if (metadata.length > 0 && call.requestHeader !== undefined) {
    addRequestMetadata(attrs, metadata, call.requestHeader, config.semconv, call.system);
  }
  if (call.deadline !== undefined) attrs[call.deadline[0]] = Math.max(0, Math.round(call.deadline[1]));
  return attrs;
}
