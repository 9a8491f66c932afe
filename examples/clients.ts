import type { Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { createTracedPaymentServiceClient } from "../generated/payment/v1/payment_otel.js";
import type { PaymentService } from "../generated/payment/v1/payment_pb.js";
import { createTracedUserServiceClient } from "../generated/user/v1/user_otel.js";
import type { UserService } from "../generated/user/v1/user_pb.js";

/** A traced client of the course system's UserService. */
export type UserClient = Client<typeof UserService>;

/** A traced client of the course system's PaymentService. */
export type PaymentClient = Client<typeof PaymentService>;

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
