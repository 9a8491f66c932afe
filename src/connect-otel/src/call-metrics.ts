import type { Attributes, Context, Histogram, MeterProvider } from "@opentelemetry/api";
import { METRIC_RPC_CLIENT_CALL_DURATION, METRIC_RPC_SERVER_CALL_DURATION } from "@opentelemetry/semantic-conventions";
import {
  ATTR_ERROR_TYPE,
  ATTR_RPC_METHOD,
  ATTR_RPC_SERVICE,
  ATTR_RPC_STATUS_CODE,
  ATTR_RPC_SYSTEM,
  ATTR_RPC_SYSTEM_NAME,
  RPC_SYSTEM_NAME_VALUE_CONNECTRPC,
  RPC_SYSTEM_NAME_VALUE_GRPC,
  RPC_SYSTEM_VALUE_CONNECT_RPC,
} from "./attribute-names.js";
import type { SemconvMode } from "./options.js";
import type { StatusCode } from "./status-codes.js";
import { legacyStatusAttribute, statusName } from "./status-codes.js";

/** Which end of a call the instruments measure. */
type Side = "client" | "server";

/** The RPC system as `RpcCall` knows it (see method-plan.ts). */
type System = "grpc" | "connect" | "unknown";

/**
 * Explicit bucket boundaries in seconds that semconv v1.45.0 docs/rpc/rpc-metrics.md advises for
 * `rpc.client.call.duration` and `rpc.server.call.duration`.
 */
export const CALL_DURATION_BUCKETS_S: readonly number[] = [
  0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10,
];

/**
 * The instruments of one traced client or service, created once when it is created, in the
 * configured semconv mode: the stable call-duration histogram (s) unless `legacy`; unless `stable`,
 * the metrics of semconv v1.26–v1.37 (docs/rpc/rpc-metrics.md at v1.37.0): duration (ms), request
 * and response sizes (bytes, one record per message) and messages per call.
 */
export interface SideMetrics {
  readonly side: Side;
  readonly callDuration: Histogram | undefined;
  readonly legacy:
    | {
        readonly duration: Histogram;
        readonly requestSize: Histogram;
        readonly responseSize: Histogram;
        readonly requestsPerRpc: Histogram;
        readonly responsesPerRpc: Histogram;
      }
    | undefined;
}

/**
 * Creates the instruments of one side on the meter `connect-otel` of `provider`. A provider or
 * meter that throws leaves the client or service without metrics (undefined): metrics never
 * change an RPC, nor whether a client or wrapper can be created.
 */
export function createSideMetrics(
  provider: MeterProvider,
  side: Side,
  semconv: SemconvMode,
  scope: { name: string; version: string },
): SideMetrics | undefined {
  try {
    const meter = provider.getMeter(scope.name, scope.version);
    const stable = semconv !== "legacy";
    const old = semconv !== "stable";
    const histogram = (name: string, unit: string, description: string) =>
      meter.createHistogram(name, { unit, description });
    return {
      side,
      callDuration: stable
        ? meter.createHistogram(side === "client" ? METRIC_RPC_CLIENT_CALL_DURATION : METRIC_RPC_SERVER_CALL_DURATION, {
            unit: "s",
            description:
              side === "client"
                ? "Measures the duration of an outgoing Remote Procedure Call (RPC)."
                : "Measures the duration of an incoming Remote Procedure Call (RPC).",
            advice: { explicitBucketBoundaries: [...CALL_DURATION_BUCKETS_S] },
          })
        : undefined,
      legacy: old
        ? {
            duration: histogram(
              `rpc.${side}.duration`,
              "ms",
              side === "client" ? "Measures the duration of outbound RPC." : "Measures the duration of inbound RPC.",
            ),
            requestSize: histogram(
              `rpc.${side}.request.size`,
              "By",
              "Measures the size of RPC request messages (uncompressed).",
            ),
            responseSize: histogram(
              `rpc.${side}.response.size`,
              "By",
              "Measures the size of RPC response messages (uncompressed).",
            ),
            requestsPerRpc: histogram(
              `rpc.${side}.requests_per_rpc`,
              "{count}",
              side === "client"
                ? "Measures the number of messages sent per RPC."
                : "Measures the number of messages received per RPC.",
            ),
            responsesPerRpc: histogram(
              `rpc.${side}.responses_per_rpc`,
              "{count}",
              side === "client"
                ? "Measures the number of messages received per RPC."
                : "Measures the number of messages sent per RPC.",
            ),
          }
        : undefined,
    };
  } catch {
    return undefined;
  }
}

/** What one call reports when it ends. */
export interface CallOutcome {
  readonly system: System;
  readonly code: StatusCode;
  /** `error.type` when the call failed (same rules as the span's), undefined otherwise. */
  readonly errorType: string | undefined;
  /** Duration in milliseconds. */
  readonly durationMs: number;
  /** Request and response messages of the call. */
  readonly requests: number;
  readonly responses: number;
  /** The call's context, with its span: an SDK with exemplars links a bucket to the span. */
  readonly context: Context;
}

/**
 * The metrics of one method of one traced client or service: attribute sets prepared once per
 * RPC system, status code and error type (never per call), and the records of each call.
 */
export interface MethodMetrics {
  /** True if message sizes are recorded (legacy mode): the caller serializes each message. */
  readonly recordsSizes: boolean;
  /** Records the size in bytes of one request (`isRequest`) or response message. */
  recordSize(isRequest: boolean, bytes: number, system: System, context: Context): void;
  /** Records the end of a call. */
  record(outcome: CallOutcome): void;
}

/**
 * The metrics of the method `method` (`package.Service/Method`) on `side`. `target` holds a
 * client's `server.address`/`server.port`, recorded on client metrics only (semconv v1.45.0: opt-in
 * on the server, where this package does not record them).
 */
export function createMethodMetrics(
  metrics: SideMetrics,
  method: string,
  target: Attributes | undefined,
): MethodMetrics {
  const slash = method.lastIndexOf("/");
  const where = metrics.side === "client" && target !== undefined ? target : {};
  const cache = new Map<string, { stable: Attributes; legacy: Attributes }>();
  const sizeAttrs = new Map<System, Attributes>();
  const legacyBase = (system: System): Attributes => {
    const attrs: Attributes = {
      [ATTR_RPC_SERVICE]: method.slice(0, slash),
      [ATTR_RPC_METHOD]: method.slice(slash + 1),
    };
    if (system !== "unknown")
      attrs[ATTR_RPC_SYSTEM] = system === "grpc" ? RPC_SYSTEM_NAME_VALUE_GRPC : RPC_SYSTEM_VALUE_CONNECT_RPC;
    return { ...attrs, ...where };
  };
  const attributesOf = (system: System, code: StatusCode, errorType: string | undefined) => {
    const key = `${system}|${code}|${errorType ?? ""}`;
    let found = cache.get(key);
    if (found === undefined) {
      const name = statusName(system, code);
      const stable: Attributes = { [ATTR_RPC_METHOD]: method, [ATTR_RPC_STATUS_CODE]: name, ...where };
      if (system !== "unknown") {
        stable[ATTR_RPC_SYSTEM_NAME] =
          system === "grpc" ? RPC_SYSTEM_NAME_VALUE_GRPC : RPC_SYSTEM_NAME_VALUE_CONNECTRPC;
      }
      if (errorType !== undefined) stable[ATTR_ERROR_TYPE] = errorType;
      const legacy = legacyBase(system);
      const status = legacyStatusAttribute(system, code, name);
      if (status !== undefined) legacy[status[0]] = status[1];
      found = { stable, legacy };
      cache.set(key, found);
    }
    return found;
  };
  const { callDuration, legacy } = metrics;
  return {
    recordsSizes: legacy !== undefined,
    recordSize(isRequest, bytes, system, context) {
      if (legacy === undefined) return;
      const attrs = sizeAttrs.get(system) ?? legacyBase(system);
      sizeAttrs.set(system, attrs);
      (isRequest ? legacy.requestSize : legacy.responseSize).record(bytes, attrs, context);
    },
    record(outcome) {
      const attrs = attributesOf(outcome.system, outcome.code, outcome.errorType);
      callDuration?.record(outcome.durationMs / 1000, attrs.stable, outcome.context);
      if (legacy !== undefined) {
        legacy.duration.record(outcome.durationMs, attrs.legacy, outcome.context);
        legacy.requestsPerRpc.record(outcome.requests, attrs.legacy, outcome.context);
        legacy.responsesPerRpc.record(outcome.responses, attrs.legacy, outcome.context);
      }
    },
  };
}
