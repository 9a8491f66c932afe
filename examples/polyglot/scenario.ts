import {
  CHAT,
  CREATE_USERS,
  type ExpectedSpan,
  FETCH_USER,
  GET_BALANCE,
  PAYMENT_TIMEOUT_MS,
  PROCESS_PAYMENT,
  SCENARIO,
  type ScenarioStep,
  SERVICES,
  STREAM_USERS,
} from "../scenario.js";

/**
 * The polyglot demo's scenario: the course system's requests of ../scenario.ts (but the health
 * check, which the Go gateway does not serve), sent to the Go gateway, whose user service is the
 * TypeScript one and whose payment service is the Python one:
 *
 * ```
 * fetch ──HTTP──▶ gateway (Go) ──gRPC──▶ user-service (TypeScript) ──gRPC──▶ payment-service (Python)
 *                 otelhttp, otelgrpc      connect-otel                         instrumentation-grpc
 *                 └───────────────────────gRPC──────────────────────────────▶ payment-service
 * ```
 *
 * Each step keeps its request, answer and body check; its expected spans are those of the three
 * stacks: otelhttp names the gateway's span after the route, otelgrpc and connect-otel name RPC
 * spans `package.Service/Method`, instrumentation-grpc `/package.Service/Method` (the gRPC path).
 * `rpcStatus` expectations are checked against whatever status attribute each stack records (see
 * ./rpc-status.ts). Attributes recorded from annotated fields are expected on our spans only.
 */

const { gateway, user, payment } = SERVICES;

/** The span name instrumentation-grpc gives a method: its gRPC path, with the leading slash. */
export function pythonSpanName(method: string): string {
  return `/${method}`;
}

/** A client span of `caller` named `clientName` and the server span of `callee` named `serverName` under it. */
function rpc(
  short: string,
  names: { client: string; server: string },
  caller: string,
  callee: string,
  parent: string,
  extra: Partial<Record<"client" | "server", Partial<ExpectedSpan>>> = {},
): ExpectedSpan[] {
  return [
    { id: `${short} client`, service: caller, kind: "CLIENT", name: names.client, parent, ...extra.client },
    {
      id: `${short} server`,
      service: callee,
      kind: "SERVER",
      name: names.server,
      parent: `${short} client`,
      ...extra.server,
    },
  ];
}

/** Gateway (Go) to user-service (TypeScript): both spans named alike. */
const toUser = (method: string) => ({ client: method, server: method });
/** Go or TypeScript to payment-service (Python). */
const toPayment = (method: string) => ({ client: method, server: pythonSpanName(method) });

const OK = { client: { rpcStatus: "OK" }, server: { rpcStatus: "OK" } };

/** OK on both sides, and `attributes` recorded by our server span from annotated fields. */
function okWithServer(attributes: ExpectedSpan["attributes"]) {
  return { client: { rpcStatus: "OK" }, server: { rpcStatus: "OK", attributes } };
}

function httpRoot(name: string): ExpectedSpan {
  return { id: "http server", service: gateway, kind: "SERVER", name };
}

/** The step of ../scenario.ts with this name, with other expected spans. */
function step(name: string, spans: ExpectedSpan[]): ScenarioStep {
  const original = SCENARIO.find((s) => s.name === name);
  if (original === undefined) throw new Error(`the scenario has no step ${name}`);
  return { ...original, spans };
}

/** The scenario, in order. Each step leaves exactly one trace. */
export const POLYGLOT_SCENARIO: readonly ScenarioStep[] = [
  step("profile", [
    httpRoot("GET /api/user/{id}"),
    ...rpc("FetchUser", toUser(FETCH_USER), gateway, user, "http server", okWithServer({ "app.user.id": 42 })),
    ...rpc("GetBalance", toPayment(GET_BALANCE), gateway, payment, "http server", OK),
  ]),
  step("stream users", [
    httpRoot("GET /api/users"),
    ...rpc("StreamUsers", toUser(STREAM_USERS), gateway, user, "http server", okWithServer({ "app.page.size": 100 })),
    // Made by the TypeScript handler inside its server stream, to the Python service.
    ...rpc("nested GetBalance", toPayment(GET_BALANCE), user, payment, "StreamUsers server", OK),
  ]),
  step("create users", [
    httpRoot("POST /api/users"),
    ...rpc("CreateUsers", toUser(CREATE_USERS), gateway, user, "http server", okWithServer({ "app.users.created": 5 })),
  ]),
  step("chat", [httpRoot("POST /api/chat"), ...rpc("Chat", toUser(CHAT), gateway, user, "http server", OK)]),
  step("unknown user", [
    httpRoot("GET /api/user/{id}"),
    ...rpc("FetchUser", toUser(FETCH_USER), gateway, user, "http server", {
      client: { rpcStatus: "NOT_FOUND", status: "ERROR" },
      server: { rpcStatus: "NOT_FOUND", status: "UNSET", attributes: { "app.user.id": 999999 } },
    }),
  ]),
  step("slow payment", [
    httpRoot("POST /api/pay/{id}"),
    ...rpc("ProcessPayment", toPayment(PROCESS_PAYMENT), gateway, payment, "http server", {
      client: {
        rpcStatus: "DEADLINE_EXCEEDED",
        status: "ERROR",
        durationMs: { min: PAYMENT_TIMEOUT_MS * 0.9, max: PAYMENT_TIMEOUT_MS + 700 },
      },
      // The Python handler ends with its call: DEADLINE_EXCEEDED when its own deadline passed,
      // CANCELLED when the Go client's reset came first.
      server: {
        rpcStatus: ["DEADLINE_EXCEEDED", "CANCELLED"],
        durationMs: { min: 0, max: PAYMENT_TIMEOUT_MS + 700 },
      },
    }),
  ]),
];
