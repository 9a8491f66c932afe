/**
 * Attribute, event and value names of the OpenTelemetry semantic conventions for RPC.
 *
 * - Stable names (semconv v1.45.0, where RPC became stable: docs/rpc/rpc-spans.md, grpc.md,
 *   connect-rpc.md, rpc-metrics.md) come from the stable entry point of
 *   `@opentelemetry/semantic-conventions`, so that a rename there fails to compile here.
 * - Names that are not stable are copied as constants, as that package advises, so that the
 *   runtime never imports its `incubating` entry point: the header and trailer families
 *   (development in v1.45.0), the exception events (development), the deprecated `rpc.message`
 *   event, and the older names of semconv v1.26–v1.37 that `OTEL_SEMCONV_STABILITY_OPT_IN=rpc/dup`
 *   keeps (docs/non-normative/rpc-migration.md).
 */

export {
  ATTR_ERROR_TYPE,
  ATTR_EXCEPTION_MESSAGE,
  ATTR_EXCEPTION_STACKTRACE,
  ATTR_EXCEPTION_TYPE,
  ATTR_RPC_METHOD,
  ATTR_RPC_STATUS_CODE,
  ATTR_RPC_SYSTEM_NAME,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT,
  RPC_SYSTEM_NAME_VALUE_GRPC,
} from "@opentelemetry/semantic-conventions";

/** `rpc.system.name` of the Connect protocol (semconv v1.45.0 docs/rpc/connect-rpc.md; development). */
export const RPC_SYSTEM_NAME_VALUE_CONNECTRPC = "connectrpc";

/**
 * Prefix of `rpc.request.header.<key>`: an allow-listed request header, key lowercased, value a
 * string array (semconv v1.45.0 registry `rpc.request.header`, development; v1.39–v1.44 named it
 * `rpc.request.metadata.<key>`).
 */
export const ATTR_RPC_REQUEST_HEADER_PREFIX = "rpc.request.header.";
/**
 * Prefix of `rpc.response.header.<key>`: an allow-listed response header, metadata sent before the
 * response payload (semconv v1.45.0 registry `rpc.response.header`, development).
 */
export const ATTR_RPC_RESPONSE_HEADER_PREFIX = "rpc.response.header.";
/**
 * Prefix of `rpc.response.trailer.<key>`: an allow-listed response trailer, metadata sent after the
 * response payload (semconv v1.45.0 registry `rpc.response.trailer`, development).
 */
export const ATTR_RPC_RESPONSE_TRAILER_PREFIX = "rpc.response.trailer.";

/**
 * Log-based event of a failed outgoing call, severity WARN (13) (semconv v1.45.0
 * docs/rpc/rpc-exceptions.md, development).
 */
export const EVENT_RPC_CLIENT_CALL_EXCEPTION = "rpc.client.call.exception";
/**
 * Log-based event of a failed incoming call, severity ERROR (17) (semconv v1.45.0
 * docs/rpc/rpc-exceptions.md, development).
 */
export const EVENT_RPC_SERVER_CALL_EXCEPTION = "rpc.server.call.exception";
/** Span event name of a recorded exception (OpenTelemetry trace API, "Record Exception"). */
export const EVENT_EXCEPTION = "exception";

/**
 * Event name of a per-message event (semconv v1.26–v1.44; deprecated in v1.40 with no replacement,
 * docs/non-normative/rpc-migration.md "Deprecated events").
 */
export const EVENT_RPC_MESSAGE = "rpc.message";
/** `rpc.message.type`: `SENT` or `RECEIVED` (deprecated with {@link EVENT_RPC_MESSAGE}). */
export const ATTR_RPC_MESSAGE_TYPE = "rpc.message.type";
/** `rpc.message.id`: 1-based counter per direction (deprecated with {@link EVENT_RPC_MESSAGE}). */
export const ATTR_RPC_MESSAGE_ID = "rpc.message.id";
/** `rpc.message.uncompressed_size`: serialized size in bytes (deprecated with {@link EVENT_RPC_MESSAGE}). */
export const ATTR_RPC_MESSAGE_UNCOMPRESSED_SIZE = "rpc.message.uncompressed_size";

/** `rpc.system`: `grpc` or `connect_rpc` (semconv v1.26–v1.37; replaced by `rpc.system.name`). */
export const ATTR_RPC_SYSTEM = "rpc.system";
/** Value of {@link ATTR_RPC_SYSTEM} for the Connect protocol (semconv v1.26–v1.37). */
export const RPC_SYSTEM_VALUE_CONNECT_RPC = "connect_rpc";
/** `rpc.service`: `user.v1.UserService` (semconv v1.26–v1.37; folded into `rpc.method`). */
export const ATTR_RPC_SERVICE = "rpc.service";
/** `rpc.grpc.status_code`: numeric gRPC status, 0 on success (semconv v1.26–v1.37). */
export const ATTR_RPC_GRPC_STATUS_CODE = "rpc.grpc.status_code";
/** `rpc.connect_rpc.error_code`: Connect error code string, only on error (semconv v1.26–v1.37). */
export const ATTR_RPC_CONNECT_RPC_ERROR_CODE = "rpc.connect_rpc.error_code";
/**
 * Older metadata attribute names, by RPC system and direction, as prefixes of `<prefix><key>`
 * (semconv v1.26–v1.37: `rpc.grpc.request.metadata.<key>`, `rpc.connect_rpc.response.metadata.<key>`,
 * headers and trailers together).
 */
export const LEGACY_METADATA_PREFIXES = {
  grpc: { request: "rpc.grpc.request.metadata.", response: "rpc.grpc.response.metadata." },
  connect: { request: "rpc.connect_rpc.request.metadata.", response: "rpc.connect_rpc.response.metadata." },
} as const;

/**
 * Namespace of the attributes this project adds beyond the semantic conventions. The message
 * counters record every message of a streaming call, also those past the cap on recorded events.
 */
export const ATTR_MESSAGES_SENT = "connect_otel.messages.sent";
/** Total number of messages received on a streaming call, see {@link ATTR_MESSAGES_SENT}. */
export const ATTR_MESSAGES_RECEIVED = "connect_otel.messages.received";

/**
 * On a client span: the timeout the call asked for (`CallOptions.timeoutMs`), in milliseconds, an
 * integer. A transport's `defaultTimeoutMs` is not visible to the client and not recorded.
 */
export const ATTR_TIMEOUT_MS = "connect_otel.timeout_ms";
/**
 * On a server span: the time left until the call's deadline when the handler starts
 * (`HandlerContext.timeoutMs()`, from the `grpc-timeout` or `connect-timeout-ms` header), in
 * milliseconds, an integer.
 */
export const ATTR_DEADLINE_REMAINING_MS = "connect_otel.deadline.remaining_ms";
