/**
 * UserService of the course system: gRPC over h2c on loopback, traced by the generated
 * `traceUserService` wrapper. StreamUsers calls PaymentService.GetBalance from inside its stream,
 * with the traced payment client: that call must join the StreamUsers trace. The process also
 * answers gRPC health checks (grpc.health.v1.Health), through the generated `traceHealth`
 * wrapper, whose calls the default call filter leaves untraced.
 *
 * Environment: `USER_SERVICE_PORT` (default 50052), `PAYMENT_SERVICE_URL` (default
 * `http://127.0.0.1:50053`), plus the OpenTelemetry variables read by ./telemetry.ts. Prints
 * `user-service listening on <url>` when ready.
 */
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import { trace } from "@opentelemetry/api";
import { traceHealth } from "../generated/grpc/health/v1/health_otel.js";
import { Health, HealthCheckResponse_ServingStatus } from "../generated/grpc/health/v1/health_pb.js";
import { traceUserService } from "../generated/user/v1/user_otel.js";
import { UserService } from "../generated/user/v1/user_pb.js";
import { paymentClient } from "./clients.js";
import { DEFAULT_PORTS, loopbackUrl, portFromEnv, urlFromEnv } from "./config.js";
import { findUser, MAX_USER_ID } from "./course-data.js";
import { serveGrpc } from "./grpc-server.js";
import { exitOnSignal, startTelemetry } from "./telemetry.js";

/** Page size of StreamUsers when the request leaves it 0. */
const DEFAULT_PAGE_SIZE = 10;

const telemetry = startTelemetry({ serviceName: "user-service" });
const payments = paymentClient(urlFromEnv("PAYMENT_SERVICE_URL", loopbackUrl(DEFAULT_PORTS.paymentService)));

const impl: ServiceImpl<typeof UserService> = {
  fetchUser(req) {
    // `app.user.id` is recorded from the request by the schema annotation on `user_id`.
    const user = findUser(req.userId);
    if (user === undefined) {
      throw new ConnectError(`user ${req.userId} not found`, Code.NotFound);
    }
    return user;
  },

  async *streamUsers(req, ctx) {
    if (req.pageSize < 0) {
      throw new ConnectError(`page size ${req.pageSize} is negative`, Code.InvalidArgument);
    }
    const pageSize = Math.min(req.pageSize || DEFAULT_PAGE_SIZE, MAX_USER_ID);
    for (let id = 1; id <= pageSize; id++) {
      const user = findUser(id);
      if (user !== undefined) {
        yield user;
      }
      if (id === 1) {
        // A nested outgoing call from inside the stream, after the first message went out: the
        // generated wrapper must run this step in the server span's context.
        const balance = await payments.getBalance({ userId: id }, { signal: ctx.signal });
        trace.getActiveSpan()?.setAttribute("app.first_user.balance", balance.amount);
      }
    }
  },

  async createUsers(requests) {
    let count = 0;
    for await (const req of requests) {
      if (req.email === "") {
        throw new ConnectError(`user ${JSON.stringify(req.name)} has no email`, Code.InvalidArgument);
      }
      count++;
    }
    return { count };
  },

  async *chat(requests) {
    for await (const msg of requests) {
      yield {
        user: "user-service",
        message: `hello ${msg.user}, you said: ${msg.message}`,
        timestamp: BigInt(Date.now()),
      };
    }
  },
};

/** Health checking (grpc/doc/health-checking.md): the server as a whole ("") and UserService serve. */
const health: Partial<ServiceImpl<typeof Health>> = {
  check(req) {
    if (req.service !== "" && req.service !== UserService.typeName) {
      throw new ConnectError(`unknown service ${req.service}`, Code.NotFound);
    }
    return { status: HealthCheckResponse_ServingStatus.SERVING };
  },
};

const server = await serveGrpc(portFromEnv("USER_SERVICE_PORT", DEFAULT_PORTS.userService), (router) => {
  router.service(UserService, traceUserService(impl));
  router.service(Health, traceHealth(health));
});
exitOnSignal(telemetry, () => server.close());
console.log(`user-service listening on ${server.url}`);
