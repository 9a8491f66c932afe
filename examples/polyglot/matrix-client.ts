/**
 * The TypeScript client of the polyglot test matrix: calls the course system's services of every
 * target of a plan with the generated traced clients of `generated/` (as ../clients.ts creates
 * them), each call inside a root span of its own, and prints one JSON line per call. The contract,
 * shared with the Go and Python clients, is ./matrix-plan.ts.
 *
 * Environment: `MATRIX_PLAN` (the plan as JSON), plus the OpenTelemetry variables read by
 * ../telemetry.ts. Exit code 0 when every call ran (whatever its status), 1 when the plan is
 * invalid.
 */
import { ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { trace } from "@opentelemetry/api";
import { PaymentService } from "../../generated/payment/v1/payment_pb.js";
import { type PaymentClient, paymentClient, type UserClient, userClient } from "../clients.js";
import { chatExchange } from "../gateway-routes.js";
import { startTelemetry } from "../telemetry.js";
import type { MatrixCall, MatrixPlan, MatrixResult, MatrixTarget } from "./matrix-plan.js";
import { grpcStatusName } from "./rpc-status.js";

/** Timeout of every call but the deadline call, in ms: a hang guard. */
const CALL_TIMEOUT_MS = 10_000;
const CHAT_MESSAGES = ["hello", "how are my payments?", "bye"];

/** The clients of one kind (traced or plain), one per base URL, as an application keeps them. */
interface Clients {
  users(url: string): UserClient;
  payments(url: string): PaymentClient;
}

function cached<T>(create: (url: string) => T): (url: string) => T {
  const made = new Map<string, T>();
  return (url) => {
    let client = made.get(url);
    if (client === undefined) {
      client = create(url);
      made.set(url, client);
    }
    return client;
  };
}

const traced: Clients = { users: cached(userClient), payments: cached(paymentClient) };
const plain: Pick<Clients, "payments"> = {
  payments: cached((baseUrl) => createClient(PaymentService, createGrpcTransport({ baseUrl }))),
};

/** Makes one call of the plan; resolves with the number of response messages, rejects with its error. */
async function runCall(call: MatrixCall, target: MatrixTarget, deadlineMs: number, clients: Clients): Promise<number> {
  switch (call) {
    case "deadline":
    case "unavailable": {
      const slow = call === "deadline";
      await clients
        .payments(target.paymentUrl)
        .processPayment({ userId: 42, amount: slow ? 20_000 : 10 }, { timeoutMs: slow ? deadlineMs : CALL_TIMEOUT_MS });
      return 1;
    }
    case "unary":
    case "not_found":
      await clients
        .users(target.userUrl)
        .fetchUser({ userId: call === "unary" ? 42 : 999_999 }, { timeoutMs: CALL_TIMEOUT_MS });
      return 1;
    case "server_streaming": {
      let received = 0;
      for await (const _ of clients
        .users(target.userUrl)
        .streamUsers({ pageSize: 3 }, { timeoutMs: CALL_TIMEOUT_MS })) {
        received++;
      }
      return received;
    }
    case "client_streaming": {
      async function* users() {
        for (const i of [1, 2, 3]) yield { name: `user-${i}`, email: `user-${i}@example.com` };
      }
      await clients.users(target.userUrl).createUsers(users(), { timeoutMs: CALL_TIMEOUT_MS });
      return 1;
    }
    case "bidi_streaming":
      return (await chatExchange(clients.users(target.userUrl), "ts", CHAT_MESSAGES, CALL_TIMEOUT_MS)).length;
  }
}

/** Runs a call; resolves with its canonical status name and the messages it received. */
async function outcome(run: () => Promise<number>): Promise<{ code: string; messages: number }> {
  try {
    return { code: "OK", messages: await run() };
  } catch (err) {
    return { code: grpcStatusName(ConnectError.from(err).code), messages: 0 };
  }
}

let plan: MatrixPlan;
try {
  plan = JSON.parse(process.env.MATRIX_PLAN ?? "") as MatrixPlan;
  if (!Array.isArray(plan.targets)) throw new TypeError("targets is not an array");
} catch (err) {
  console.error(`matrix client: invalid MATRIX_PLAN: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
}
const telemetry = startTelemetry({ serviceName: `client-${plan.client}` });
const tracer = trace.getTracer("connect-otel.polyglot.matrix");
for (const target of plan.targets) {
  for (const call of target.calls) {
    const attributes = { "matrix.client": plan.client, "matrix.server": target.server, "matrix.call": call };
    const untraced = { ...traced, ...plain };
    // The control call that runs beside the traced one, under the same conditions.
    const paired = call === "deadline" ? outcome(() => runCall(call, target, plan.deadlineMs, untraced)) : undefined;
    const { result, spanContext } = await tracer.startActiveSpan(`matrix ${call}`, { attributes }, async (span) => {
      try {
        return {
          result: await outcome(() => runCall(call, target, plan.deadlineMs, traced)),
          spanContext: span.spanContext(),
        };
      } finally {
        span.end();
      }
    });
    const line: MatrixResult = {
      client: plan.client,
      server: target.server,
      call,
      ...result,
      traceId: spanContext.traceId,
      spanId: spanContext.spanId,
      controls: [],
    };
    if (paired !== undefined) {
      // Untraced control calls: does connect's plain client answer the same without tracing?
      line.controls.push((await paired).code);
      const raced = result.code !== "DEADLINE_EXCEEDED";
      for (let i = 0; raced && i < plan.controlTries && !line.controls.includes(result.code); i++) {
        const burst = Array.from({ length: plan.controlBurst }, () =>
          outcome(() => runCall(call, target, plan.deadlineMs, untraced)),
        );
        line.controls.push(...(await Promise.all(burst)).map((control) => control.code));
      }
    }
    process.stdout.write(`${JSON.stringify(line)}\n`);
  }
}
await telemetry.shutdown();
