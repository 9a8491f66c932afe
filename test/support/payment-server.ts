import type { Client } from "@connectrpc/connect";
import type { TracerProvider } from "@opentelemetry/api";
import { createTracedPaymentServiceClient, tracePaymentService } from "../../generated/payment/v1/payment_otel.js";
import { PaymentService } from "../../generated/payment/v1/payment_pb.js";
import type { TestServer, Wire } from "./servers.js";
import { startServer } from "./servers.js";

/** A traced PaymentService on loopback and a traced client of it, for nested outgoing calls. */
export interface PaymentPeer {
  readonly server: TestServer;
  /** GetBalance answers `amount = userId * 10` EUR. */
  readonly client: Client<typeof PaymentService>;
}

/**
 * Starts a traced PaymentService whose GetBalance answers `userId * 10` EUR on `wire`, and a traced
 * client of it, both recording with `tracerProvider`. Close `server` when done.
 */
export async function startPaymentPeer(wire: Wire, tracerProvider: TracerProvider): Promise<PaymentPeer> {
  const server = await startServer(wire, (router) => {
    router.service(
      PaymentService,
      tracePaymentService(
        {
          async getBalance(req) {
            return { amount: req.userId * 10, currency: "EUR" };
          },
        },
        { tracerProvider },
      ),
    );
  });
  return { server, client: createTracedPaymentServiceClient(server.transport(), { tracerProvider }) };
}
