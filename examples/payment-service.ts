/**
 * PaymentService of the course system: gRPC over h2c on loopback, traced by the generated
 * `tracePaymentService` wrapper.
 *
 * Environment: `PAYMENT_SERVICE_PORT` (default 50053), plus the OpenTelemetry variables read by
 * ./telemetry.ts. Prints `payment-service listening on <url>` when ready.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import { tracePaymentService } from "../generated/payment/v1/payment_otel.js";
import { PaymentService } from "../generated/payment/v1/payment_pb.js";
import { DEFAULT_PORTS, portFromEnv } from "./config.js";
import { balanceOf, MANUAL_REVIEW_MS, MANUAL_REVIEW_THRESHOLD } from "./course-data.js";
import { serveGrpc } from "./grpc-server.js";
import { exitOnSignal, startTelemetry } from "./telemetry.js";

const telemetry = startTelemetry({ serviceName: "payment-service" });

const impl: ServiceImpl<typeof PaymentService> = {
  getBalance(req) {
    if (req.userId <= 0) {
      throw new ConnectError(`user id ${req.userId} is not positive`, Code.InvalidArgument);
    }
    return balanceOf(req.userId);
  },

  async processPayment(req, ctx) {
    if (!(req.amount > 0)) {
      throw new ConnectError(`amount ${req.amount} is not positive`, Code.InvalidArgument);
    }
    if (req.amount > MANUAL_REVIEW_THRESHOLD) {
      // Outlives the caller's timeout; stops as soon as the call is aborted (deadline, cancel).
      await sleepUnlessAborted(MANUAL_REVIEW_MS, ctx);
    }
    return { success: true, transactionId: `tx-${req.userId}-${Date.now().toString(36)}` };
  },
};

/** Sleeps `ms`, or throws the call's abort reason (DEADLINE_EXCEEDED, CANCELLED) when it ends first. */
async function sleepUnlessAborted(ms: number, ctx: HandlerContext): Promise<void> {
  try {
    await sleep(ms, undefined, { signal: ctx.signal });
  } catch (err) {
    throw ctx.signal.aborted ? ConnectError.from(ctx.signal.reason) : err;
  }
}

const server = await serveGrpc(portFromEnv("PAYMENT_SERVICE_PORT", DEFAULT_PORTS.paymentService), (router) =>
  router.service(PaymentService, tracePaymentService(impl)),
);
exitOnSignal(telemetry, () => server.close());
console.log(`payment-service listening on ${server.url}`);
