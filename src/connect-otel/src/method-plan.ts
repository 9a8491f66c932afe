import type { DescMethod } from "@bufbuild/protobuf";
import type { Attributes } from "@opentelemetry/api";
import {
  ATTR_RPC_METHOD,
  ATTR_RPC_SERVICE,
  ATTR_RPC_SYSTEM,
  ATTR_RPC_SYSTEM_NAME,
  RPC_SYSTEM_NAME_VALUE_CONNECTRPC,
  RPC_SYSTEM_NAME_VALUE_GRPC,
  RPC_SYSTEM_VALUE_CONNECT_RPC,
} from "./attribute-names.js";
import { defaultCallFilter, isDefaultUntracedMethod } from "./call-filter.js";
import type { MethodMetrics } from "./call-metrics.js";
import { createMethodMetrics } from "./call-metrics.js";
import type { TracingConfig } from "./config.js";
import type { AnyMethodHooks } from "./hooks.js";
import type { AnyMethodFacts, AttributeExtractor } from "./method-table.js";
import type { WireProtocol } from "./options.js";
import type { StatusCode } from "./status-codes.js";
import { defaultServerErrorCodes } from "./status-codes.js";

/**
 * The RPC system of a call as far as it is known: gRPC and gRPC-web are `grpc`, the Connect
 * protocol is `connect`; `unknown` before a client has seen a response and was not told.
 */
export type RpcSystem = "grpc" | "connect" | "unknown";

/**
 * Everything about one method of one traced client or service that does not change per call,
 * computed once when the client or service wrapper is created.
 */
export interface MethodPlan {
  /** The method's descriptor: input and output schemas for message sizes. */
  readonly method: DescMethod;
  /** Span name: the fully-qualified method, `user.v1.UserService/FetchUser`. */
  readonly spanName: string;
  /** False for a method or service annotated `untraced`: its calls start no span. */
  readonly traced: boolean;
  /**
   * The `filter` option's answer for every call of the method, when it is known in advance (the
   * default filter reads only the method); undefined when the filter is asked per call.
   */
  readonly filterDecision: boolean | undefined;
  /** True if either side streams; such spans record message totals. */
  readonly streaming: boolean;
  /** True if the client sends a stream of requests (client-streaming, bidi). */
  readonly requestStreaming: boolean;
  /** True if the server sends a stream of responses (server-streaming, bidi). */
  readonly responseStreaming: boolean;
  /** Codes that make a server span an Error: the method's annotation, else the semconv default. */
  readonly serverErrorCodes: ReadonlySet<StatusCode>;
  /** Reads the annotated fields of a request message. */
  // biome-ignore lint/suspicious/noExplicitAny: messages of any type
  readonly request: AttributeExtractor<any> | undefined;
  /** Reads the annotated fields of a response message. */
  // biome-ignore lint/suspicious/noExplicitAny: messages of any type
  readonly response: AttributeExtractor<any> | undefined;
  /** The `hooks` option's entry for this method. */
  readonly hooks: AnyMethodHooks | undefined;
  /** True if this method's calls record `rpc.message` events. */
  readonly messageEvents: boolean;
  /** Attributes set at span start, per RPC system. Shared by all calls: never mutate. */
  readonly startAttributes: Readonly<Record<RpcSystem, Attributes>>;
  /** Attributes that name the RPC system, set when a client learns it from the response. */
  readonly systemAttributes: Readonly<Record<RpcSystem, Attributes>>;
  /** The method's metrics; undefined when metrics are off or the method is untraced. */
  readonly metrics: MethodMetrics | undefined;
}

/** The RPC system of a connect protocol name (`HandlerContext.protocolName`: connect, grpc, grpc-web). */
export function systemOfProtocolName(protocolName: string): RpcSystem {
  if (protocolName === "connect") return "connect";
  if (protocolName === "grpc" || protocolName === "grpc-web") return "grpc";
  return "unknown";
}

/** The RPC system of a client's `protocol` option. */
export function systemOfWireProtocol(protocol: WireProtocol | undefined): RpcSystem {
  return protocol === undefined ? "unknown" : protocol === "connect" ? "connect" : "grpc";
}

/**
 * The RPC system of a response `content-type`: `application/grpc…` (gRPC, gRPC-web) is `grpc`,
 * any other (`application/proto`, `application/json`, `application/connect+…`) is `connect`.
 */
export function systemOfContentType(contentType: string | null | undefined): RpcSystem {
  if (!contentType) return "unknown";
  return contentType.startsWith("application/grpc") ? "grpc" : "connect";
}

/**
 * Builds the plan of one method: span name and start attributes per RPC system in the configured
 * semconv mode (stable, semconv v1.45.0 docs/rpc/rpc-spans.md: `rpc.system.name` + fully-qualified
 * `rpc.method`; legacy, v1.26–v1.37: `rpc.system`, `rpc.service`, bare `rpc.method`; dup: the
 * union, `rpc.method` fully-qualified), and its metrics (client: with `target`, the
 * `server.address`/`server.port` of the `baseUrl` option).
 */
export function createMethodPlan(
  method: DescMethod,
  facts: AnyMethodFacts,
  config: TracingConfig,
  target?: Attributes,
): MethodPlan {
  const streaming = facts.kind !== "unary";
  const requestStreaming = facts.kind === "client_streaming" || facts.kind === "bidi_streaming";
  const responseStreaming = facts.kind === "server_streaming" || facts.kind === "bidi_streaming";
  const systemAttributes = {
    grpc: systemAttrs(config, RPC_SYSTEM_NAME_VALUE_GRPC, RPC_SYSTEM_NAME_VALUE_GRPC),
    connect: systemAttrs(config, RPC_SYSTEM_NAME_VALUE_CONNECTRPC, RPC_SYSTEM_VALUE_CONNECT_RPC),
    unknown: {},
  };
  const methodAttrs: Attributes = {};
  if (config.semconv !== "stable") {
    const slash = facts.name.lastIndexOf("/");
    methodAttrs[ATTR_RPC_SERVICE] = facts.name.slice(0, slash);
    methodAttrs[ATTR_RPC_METHOD] = facts.name.slice(slash + 1);
  }
  if (config.semconv !== "legacy") {
    methodAttrs[ATTR_RPC_METHOD] = facts.name;
  }
  const traced = facts.traced !== false;
  return {
    method,
    spanName: facts.name,
    traced,
    filterDecision: config.filter === defaultCallFilter ? !isDefaultUntracedMethod(facts.name) : undefined,
    streaming,
    requestStreaming,
    responseStreaming,
    serverErrorCodes: facts.serverErrorCodes ? new Set(facts.serverErrorCodes) : defaultServerErrorCodes,
    request: facts.request,
    response: facts.response,
    hooks: config.hooks[method.localName],
    messageEvents: config.messageEvents === "all" || (config.messageEvents === "streaming" && streaming),
    startAttributes: {
      grpc: { ...systemAttributes.grpc, ...methodAttrs },
      connect: { ...systemAttributes.connect, ...methodAttrs },
      unknown: methodAttrs,
    },
    systemAttributes,
    metrics:
      traced && config.metrics !== undefined ? createMethodMetrics(config.metrics, facts.name, target) : undefined,
  };
}

function systemAttrs(config: TracingConfig, stable: string, legacy: string): Attributes {
  const attrs: Attributes = {};
  if (config.semconv !== "legacy") attrs[ATTR_RPC_SYSTEM_NAME] = stable;
  if (config.semconv !== "stable") attrs[ATTR_RPC_SYSTEM] = legacy;
  return attrs;
}
