import type { Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { createTracedHealthClient } from "../generated/grpc/health/v1/health_otel.js";
import type { Health } from "../generated/grpc/health/v1/health_pb.js";
import { createTracedPaymentServiceClient } from "../generated/payment/v1/payment_otel.js";
import type { PaymentService } from "../generated/payment/v1/payment_pb.js";
import { createTracedUserServiceClient } from "../generated/user/v1/user_otel.js";
import type { UserService } from "../generated/user/v1/user_pb.js";

/** A traced client of the course system's UserService. */
export type UserClient = Client<typeof UserService>;

/** A traced client of the course system's PaymentService. */
export type PaymentClient = Client<typeof PaymentService>;

/** A client of the gRPC health-checking service (grpc.health.v1.Health). */
export type HealthClient = Client<typeof Health>;

/**
 * Creates a traced UserService client speaking gRPC over HTTP/2 (h2c for `http:` URLs).
 * Passing `baseUrl` and `protocol` lets the client spans carry `server.address`, `server.port`
 * and `rpc.system.name` from their start, which a connect `Transport` does not reveal.
 *
 * @param baseUrl the service, e.g. `http://127.0.0.1:50052`
 */
export function userClient(baseUrl: string): UserClient {
  return createTracedUserServiceClient(createGrpcTransport({ baseUrl }), { baseUrl, protocol: "grpc" });
}

/**
 * Creates a traced PaymentService client speaking gRPC over HTTP/2, like {@link userClient}.
 *
 * @param baseUrl the service, e.g. `http://127.0.0.1:50053`
 */
export function paymentClient(baseUrl: string): PaymentClient {
  return createTracedPaymentServiceClient(createGrpcTransport({ baseUrl }), { baseUrl, protocol: "grpc" });
}

/**
 * Creates a gRPC health-checking client (grpc.health.v1.Health) over HTTP/2. It is a generated
 * traced client, yet its calls start no spans: the default call filter leaves the health and
 * reflection services out, and the trace context still propagates.
 *
 * @param baseUrl the service, e.g. `http://127.0.0.1:50052`
 */
export function healthClient(baseUrl: string): HealthClient {
  return createTracedHealthClient(createGrpcTransport({ baseUrl }), { baseUrl, protocol: "grpc" });
}
