/**
 * Attribute, event and value names of the OpenTelemetry semantic conventions for RPC, copied as
 * constants so that the runtime never imports `@opentelemetry/semantic-conventions/incubating`.
 *
 * Current names follow semconv v1.39+ (docs/rpc/rpc-spans.md, grpc.md, connect-rpc.md,
 * rpc-events.md); legacy names follow semconv v1.26–v1.37, which most dashboards and
 * `@opentelemetry/instrumentation-grpc` still use.
 */

/** `rpc.system.name`: `grpc` or `connectrpc` (current). */
export const ATTR_RPC_SYSTEM_NAME = "rpc.system.name";
/** `rpc.method`: fully-qualified `package.Service/Method` (current) or bare `Method` (legacy). */
export const ATTR_RPC_METHOD = "rpc.method";
/** `rpc.response.status_code`: status code name as a string (current). */
export const ATTR_RPC_RESPONSE_STATUS_CODE = "rpc.response.status_code";
/** `error.type`: set iff the span is an error (stable, docs/general/recording-errors.md). */
export const ATTR_ERROR_TYPE = "error.type";
/** `server.address`: host of the RPC server (stable). */
export const ATTR_SERVER_ADDRESS = "server.address";
/** `server.port`: port of the RPC server, an integer (stable). */
export const ATTR_SERVER_PORT = "server.port";

/** `rpc.system`: `grpc` or `connect_rpc` (legacy). */
export const ATTR_RPC_SYSTEM = "rpc.system";
/** `rpc.service`: fully-qualified service name, `user.v1.UserService` (legacy). */
export const ATTR_RPC_SERVICE = "rpc.service";
/** `rpc.grpc.status_code`: numeric gRPC status, 0 on success (legacy). */
export const ATTR_RPC_GRPC_STATUS_CODE = "rpc.grpc.status_code";
/** `rpc.connect_rpc.error_code`: Connect error code string, only on error (legacy). */
export const ATTR_RPC_CONNECT_RPC_ERROR_CODE = "rpc.connect_rpc.error_code";

/** Event name of a per-message event (current, docs/rpc/rpc-events.md). */
export const EVENT_RPC_MESSAGE = "rpc.message";
/** `rpc.message.type`: `SENT` or `RECEIVED` (current). */
export const ATTR_RPC_MESSAGE_TYPE = "rpc.message.type";
/** `rpc.message.id`: 1-based counter per direction (current). */
export const ATTR_RPC_MESSAGE_ID = "rpc.message.id";
/** `rpc.message.uncompressed_size`: serialized message size in bytes (current). */
export const ATTR_RPC_MESSAGE_UNCOMPRESSED_SIZE = "rpc.message.uncompressed_size";

/** Event name of a per-message event (legacy). */
export const EVENT_MESSAGE = "message";
/** `message.type` (legacy). */
export const ATTR_MESSAGE_TYPE = "message.type";
/** `message.id` (legacy). */
export const ATTR_MESSAGE_ID = "message.id";
/** `message.uncompressed_size` in bytes (legacy). */
export const ATTR_MESSAGE_UNCOMPRESSED_SIZE = "message.uncompressed_size";

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
