/**
 * The course system's API gateway: a plain `node:http` server whose inbound requests are traced
 * by `@opentelemetry/instrumentation-http`, calling UserService and PaymentService over gRPC with
 * the generated traced clients. Routes: ./gateway-routes.ts.
 *
 * Environment: `GATEWAY_PORT` (default 8080), `USER_SERVICE_URL` (default
 * `http://127.0.0.1:50052`), `PAYMENT_SERVICE_URL` (default `http://127.0.0.1:50053`), plus the
 * OpenTelemetry variables read by ./telemetry.ts. Prints `gateway listening on <url>` when ready.
 */
import type { AddressInfo } from "node:net";
import { HttpInstrumentation } from "@opentelemetry/instrumentation-http";
import { healthClient, paymentClient, userClient } from "./clients.js";
import { DEFAULT_PORTS, LOOPBACK, loopbackUrl, portFromEnv, urlFromEnv } from "./config.js";
import { createGatewayHandler } from "./gateway-routes.js";
import { exitOnSignal, startTelemetry } from "./telemetry.js";

// The HTTP instrumentation patches `node:http` when it is imported through the ESM loader hook
// that startTelemetry registers. ESM loads every static import before this module's body runs,
// so `node:http` is imported dynamically, after the SDK started.
const telemetry = startTelemetry({ serviceName: "gateway", instrumentations: [new HttpInstrumentation()] });
const { createServer } = await import("node:http");

const userServiceUrl = urlFromEnv("USER_SERVICE_URL", loopbackUrl(DEFAULT_PORTS.userService));
const handler = createGatewayHandler({
  users: userClient(userServiceUrl),
  health: healthClient(userServiceUrl),
  payments: paymentClient(urlFromEnv("PAYMENT_SERVICE_URL", loopbackUrl(DEFAULT_PORTS.paymentService))),
});
const server = createServer(handler);
await new Promise<void>((resolve, reject) => {
  server.once("error", reject);
  server.listen(portFromEnv("GATEWAY_PORT", DEFAULT_PORTS.gateway), LOOPBACK, () => resolve());
});
exitOnSignal(telemetry, () => {
  server.close();
  server.closeAllConnections();
});
console.log(`gateway listening on ${loopbackUrl((server.address() as AddressInfo).port)}`);
