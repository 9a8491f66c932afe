import type { AttributeValue } from "@opentelemetry/api";
import { MANUAL_REVIEW_MS, MANUAL_REVIEW_THRESHOLD } from "./course-data.js";
import type { SpanKindName } from "./span-record.js";

/**
 * The demo's scenario: the HTTP requests the untraced driver sends to the gateway, what each must
 * answer, and the spans each must leave in its trace.
 */

/** A span expected in a step's trace, found by service, kind and name. */
export interface ExpectedSpan {
  /** Label used in check reports and as `parent` reference, e.g. `FetchUser client`. */
  id: string;
  service: string;
  kind: SpanKindName;
  name: string;
  /** `id` of the expected parent span; absent for the trace's root. */
  parent?: string;
  /** Expected `rpc.status_code`, or the codes of which it must be one. */
  rpcStatus?: string | readonly string[];
  /** Expected span status code. */
  status?: "UNSET" | "OK" | "ERROR";
  /** Bounds of the span's duration, in ms. */
  durationMs?: { min: number; max: number };
  /** Attributes the span must carry with these values, e.g. those recorded from annotated fields. */
  attributes?: Readonly<Record<string, AttributeValue>>;
}

/** One request of the scenario. */
export interface ScenarioStep {
  name: string;
  method: "GET" | "POST";
  /** Path and query, e.g. `/api/users?page_size=100`. */
  path: string;
  body?: unknown;
  /** HTTP status the gateway must answer. */
  expectStatus: number;
  /** Checks the JSON response body; returns a problem description, or undefined when fine. */
  checkBody?(body: unknown): string | undefined;
  /** Spans the step's trace must contain, with their parents. */
  spans: ExpectedSpan[];
}

/** Service names the demo gives its processes (`OTEL_SERVICE_NAME`). */
export const SERVICES = { gateway: "gateway", user: "user-service", payment: "payment-service" } as const;

/** Client timeout of ProcessPayment at the gateway, in ms (the gateway's default). */
export const PAYMENT_TIMEOUT_MS = 300;

/**
 * Longest a ProcessPayment span of the slow payment may last, in ms: half the manual review, so a
 * handler that slept on after its call was aborted fails the check, while a machine busy enough to
 * delay the abort by a second or two does not.
 */
export const ABORTED_PAYMENT_MAX_MS = MANUAL_REVIEW_MS / 2;

/** The RPC span names (`package.Service/Method`) of the methods the scenario calls. */
export const FETCH_USER = "user.v1.UserService/FetchUser";
export const STREAM_USERS = "user.v1.UserService/StreamUsers";
export const CREATE_USERS = "user.v1.UserService/CreateUsers";
export const CHAT = "user.v1.UserService/Chat";
export const GET_BALANCE = "payment.v1.PaymentService/GetBalance";
export const PROCESS_PAYMENT = "payment.v1.PaymentService/ProcessPayment";

/** A client span of `caller` and the server span of `callee` under it. */
function rpc(
  short: string,
  name: string,
  caller: string,
  callee: string,
  parent: string,
  extra: Partial<Record<"client" | "server", Partial<ExpectedSpan>>> = {},
): ExpectedSpan[] {
  return [
    { id: `${short} client`, service: caller, kind: "CLIENT", name, parent, ...extra.client },
    { id: `${short} server`, service: callee, kind: "SERVER", name, parent: `${short} client`, ...extra.server },
  ];
}

function httpRoot(name: string): ExpectedSpan {
  return { id: "http server", service: SERVICES.gateway, kind: "SERVER", name };
}

const OK = { client: { rpcStatus: "OK" }, server: { rpcStatus: "OK" } };

/** OK on both sides, and `attributes` (recorded from annotated fields) on both spans. */
function okWith(attributes: Record<string, AttributeValue>) {
  return { client: { rpcStatus: "OK", attributes }, server: { rpcStatus: "OK", attributes } };
}
const { gateway, user, payment } = SERVICES;

/** The scenario, in order. Each step leaves exactly one trace. */
export const SCENARIO: readonly ScenarioStep[] = [
  {
    name: "profile",
    method: "GET",
    path: "/api/user/42",
    expectStatus: 200,
    checkBody: (b) =>
      field(b, "id") === 42 && typeof field(field(b, "balance"), "amount") === "number"
        ? undefined
        : "no user 42 with balance",
    spans: [
      httpRoot("GET /api/user/{id}"),
      ...rpc("FetchUser", FETCH_USER, gateway, user, "http server", okWith({ "app.user.id": 42 })),
      ...rpc("GetBalance", GET_BALANCE, gateway, payment, "http server", okWith({ "app.user.id": 42 })),
    ],
  },
  {
    name: "stream users",
    method: "GET",
    path: "/api/users?page_size=100",
    expectStatus: 200,
    checkBody: (b) =>
      field(b, "count") === 100 ? undefined : `count is ${JSON.stringify(field(b, "count"))}, not 100`,
    spans: [
      httpRoot("GET /api/users"),
      ...rpc("StreamUsers", STREAM_USERS, gateway, user, "http server", okWith({ "app.page.size": 100 })),
      // The nested call made inside the server stream, after its first message.
      ...rpc("nested GetBalance", GET_BALANCE, user, payment, "StreamUsers server", OK),
    ],
  },
  {
    name: "create users",
    method: "POST",
    path: "/api/users",
    body: {
      users: Array.from({ length: 5 }, (_, i) => ({ name: `New User ${i + 1}`, email: `new${i + 1}@example.com` })),
    },
    expectStatus: 201,
    checkBody: (b) =>
      field(b, "created") === 5 ? undefined : `created is ${JSON.stringify(field(b, "created"))}, not 5`,
    spans: [
      httpRoot("POST /api/users"),
      ...rpc("CreateUsers", CREATE_USERS, gateway, user, "http server", okWith({ "app.users.created": 5 })),
    ],
  },
  {
    name: "chat",
    method: "POST",
    path: "/api/chat",
    body: { user: "alice", messages: ["hi", "how are my payments?", "thanks"] },
    expectStatus: 200,
    checkBody: (b) => {
      const replies = field(b, "replies");
      return Array.isArray(replies) && replies.length === 3 ? undefined : "not 3 replies";
    },
    spans: [httpRoot("POST /api/chat"), ...rpc("Chat", CHAT, gateway, user, "http server", OK)],
  },
  {
    name: "unknown user",
    method: "GET",
    path: "/api/user/999999",
    expectStatus: 404,
    checkBody: (b) => (field(field(b, "error"), "code") === "not_found" ? undefined : "error code is not not_found"),
    spans: [
      httpRoot("GET /api/user/{id}"),
      ...rpc("FetchUser", FETCH_USER, gateway, user, "http server", {
        // Client: every non-OK code is an error; server: NOT_FOUND is the caller's problem.
        client: { rpcStatus: "NOT_FOUND", status: "ERROR", attributes: { "app.user.id": 999999 } },
        server: { rpcStatus: "NOT_FOUND", status: "UNSET", attributes: { "app.user.id": 999999 } },
      }),
    ],
  },
  {
    name: "slow payment",
    method: "POST",
    path: "/api/pay/42",
    body: { amount: MANUAL_REVIEW_THRESHOLD * 2 },
    expectStatus: 504,
    checkBody: (b) =>
      field(field(b, "error"), "code") === "deadline_exceeded" ? undefined : "error code is not deadline_exceeded",
    spans: [
      httpRoot("POST /api/pay/{id}"),
      ...rpc("ProcessPayment", PROCESS_PAYMENT, gateway, payment, "http server", {
        client: {
          rpcStatus: "DEADLINE_EXCEEDED",
          status: "ERROR",
          attributes: {
            "app.user.id": 42,
            "app.payment.amount": MANUAL_REVIEW_THRESHOLD * 2,
            "connect_otel.timeout_ms": PAYMENT_TIMEOUT_MS,
          },
          durationMs: { min: PAYMENT_TIMEOUT_MS * 0.9, max: ABORTED_PAYMENT_MAX_MS },
        },
        // The handler stops when its call is aborted: by its own deadline (from `grpc-timeout`,
        // DEADLINE_EXCEEDED) or by the client's HTTP/2 reset (CANCELLED), whichever comes first.
        server: {
          rpcStatus: ["DEADLINE_EXCEEDED", "CANCELLED"],
          attributes: { "app.user.id": 42, "app.payment.amount": MANUAL_REVIEW_THRESHOLD * 2 },
          durationMs: { min: 0, max: ABORTED_PAYMENT_MAX_MS },
        },
      }),
    ],
  },
  {
    name: "health",
    method: "GET",
    path: "/healthz",
    expectStatus: 200,
    checkBody: (b) => (field(b, "status") === "SERVING" ? undefined : "status is not SERVING"),
    // grpc.health.v1.Health/Check runs through a generated client and wrapper, yet the default
    // call filter leaves it untraced: the trace holds the gateway's HTTP span only.
    spans: [httpRoot("GET /healthz")],
  },
];

function field(value: unknown, key: string): unknown {
  return typeof value === "object" && value !== null ? (value as Record<string, unknown>)[key] : undefined;
}
