import type { IncomingMessage, ServerResponse } from "node:http";
import { Code, ConnectError } from "@connectrpc/connect";
import { codeToHttpStatus, codeToString } from "@connectrpc/connect/protocol-connect";
import { trace } from "@opentelemetry/api";
import { HealthCheckResponse_ServingStatus } from "../generated/grpc/health/v1/health_pb.js";
import type { HealthClient, PaymentClient, UserClient } from "./clients.js";
import { readBody } from "./read-body.js";

/**
 * The gateway's REST routes: JSON over HTTP/1.1 in, gRPC calls to UserService and PaymentService
 * out. Only types come from `node:http` here, so that this module can be imported before the
 * HTTP instrumentation patched `node:http` (see ./gateway.ts).
 *
 * | route                       | calls                                   |
 * | --------------------------- | --------------------------------------- |
 * | `GET /api/user/{id}`        | FetchUser, then GetBalance              |
 * | `GET /api/users?page_size=` | StreamUsers                             |
 * | `POST /api/users`           | CreateUsers with `{"users":[{name,email}]}` |
 * | `POST /api/chat`            | Chat with `{"user":..,"messages":[..]}`, one reply awaited per message |
 * | `POST /api/pay/{id}`        | ProcessPayment with `{"amount":..}` and a client timeout |
 * | `GET /healthz`              | grpc.health.v1.Health/Check of UserService (untraced) |
 *
 * Errors answer `{"error":{"code":"not_found","message":"..."}}` with the HTTP status of the
 * Connect protocol's mapping (NOT_FOUND 404, DEADLINE_EXCEEDED 504, ...; UNAVAILABLE 502, as the
 * upstream is what is unavailable).
 */

/** The upstream clients of the gateway. */
export interface GatewayClients {
  users: UserClient;
  payments: PaymentClient;
  /** Health checking of the UserService process. */
  health: HealthClient;
}

/** Options of {@link createGatewayHandler}. */
export interface GatewayOptions {
  /** Client timeout of ProcessPayment, in ms. Default 300. */
  paymentTimeoutMs?: number;
  /** Client timeout of every other call, in ms. Default 5000. */
  timeoutMs?: number;
  /** Largest accepted request body, in bytes. Default 1 MiB. */
  maxBodyBytes?: number;
}

type Reply = { status: number; body: unknown };

interface Route {
  method: string;
  /** The `http.route` template, e.g. `/api/user/{id}`. */
  template: string;
  pattern: RegExp;
  handle(params: string[], url: URL, req: IncomingMessage): Promise<Reply>;
}

/** A request the gateway rejects before calling upstream: answered with `status`. */
class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Creates the gateway's request listener, for `http.createServer`.
 *
 * The listener names the HTTP server span after the matched route (`GET /api/user/{id}`) and
 * sets `http.route` on it, through the active span that the HTTP instrumentation provides.
 * It never throws: every failure becomes a JSON error response.
 */
export function createGatewayHandler(
  clients: GatewayClients,
  options: GatewayOptions = {},
): (req: IncomingMessage, res: ServerResponse) => void {
  const { users, payments, health } = clients;
  const timeoutMs = options.timeoutMs ?? 5000;
  const paymentTimeoutMs = options.paymentTimeoutMs ?? 300;
  const maxBodyBytes = options.maxBodyBytes ?? 1024 * 1024;

  const routes: Route[] = [
    {
      method: "GET",
      template: "/healthz",
      pattern: /^\/healthz$/,
      async handle() {
        const res = await health.check({ service: "user.v1.UserService" }, { timeoutMs });
        const status = HealthCheckResponse_ServingStatus[res.status];
        return { status: res.status === HealthCheckResponse_ServingStatus.SERVING ? 200 : 503, body: { status } };
      },
    },
    {
      method: "GET",
      template: "/api/user/{id}",
      pattern: /^\/api\/user\/([^/]+)$/,
      async handle([id]) {
        const userId = parseId(id);
        const user = await users.fetchUser({ userId }, { timeoutMs });
        const balance = await payments.getBalance({ userId }, { timeoutMs });
        return {
          status: 200,
          body: {
            id: user.id,
            name: user.name,
            email: user.email,
            balance: { amount: balance.amount, currency: balance.currency },
          },
        };
      },
    },
    {
      method: "GET",
      template: "/api/users",
      pattern: /^\/api\/users$/,
      async handle(_, url) {
        const pageSize = parseNonNegativeInt(url.searchParams.get("page_size") ?? "0", "page_size");
        const list: { id: number; name: string; email: string }[] = [];
        for await (const user of users.streamUsers({ pageSize }, { timeoutMs })) {
          list.push({ id: user.id, name: user.name, email: user.email });
        }
        return { status: 200, body: { count: list.length, users: list } };
      },
    },
    {
      method: "POST",
      template: "/api/users",
      pattern: /^\/api\/users$/,
      async handle(_, __, req) {
        const body = await readJson(req, maxBodyBytes);
        const list = arrayOf(body, "users");
        const requests = list.map((u, i) => ({
          name: stringOf(u, "name", `users[${i}]`),
          email: stringOf(u, "email", `users[${i}]`),
        }));
        const res = await users.createUsers(fromArray(requests), { timeoutMs });
        return { status: 201, body: { created: res.count } };
      },
    },
    {
      method: "POST",
      template: "/api/chat",
      pattern: /^\/api\/chat$/,
      async handle(_, __, req) {
        const body = await readJson(req, maxBodyBytes);
        const user = stringOf(body, "user", "body");
        const messages = arrayOf(body, "messages").map((m, i) => {
          if (typeof m !== "string") {
            throw new HttpError(400, `messages[${i}] is not a string`);
          }
          return m;
        });
        return { status: 200, body: { replies: await chatExchange(users, user, messages, timeoutMs) } };
      },
    },
    {
      method: "POST",
      template: "/api/pay/{id}",
      pattern: /^\/api\/pay\/([^/]+)$/,
      async handle([id], _, req) {
        const userId = parseId(id);
        const body = await readJson(req, maxBodyBytes);
        const amount = (body as { amount?: unknown }).amount;
        if (typeof amount !== "number" || !Number.isFinite(amount)) {
          throw new HttpError(400, "amount is not a number");
        }
        const res = await payments.processPayment({ userId, amount }, { timeoutMs: paymentTimeoutMs });
        return { status: 200, body: { success: res.success, transactionId: res.transactionId } };
      },
    },
  ];

  return (req, res) => {
    route(routes, req).then(
      (reply) => send(res, reply),
      (err: unknown) => send(res, errorReply(err)),
    );
  };
}

async function route(routes: Route[], req: IncomingMessage): Promise<Reply> {
  const url = new URL(req.url ?? "/", "http://gateway");
  const matches = routes.filter((r) => r.pattern.test(url.pathname));
  const match = matches.find((r) => r.method === req.method);
  if (match === undefined) {
    req.resume();
    return matches.length > 0
      ? {
          status: 405,
          body: {
            error: { code: "method_not_allowed", message: `method ${req.method} not allowed on ${url.pathname}` },
          },
        }
      : { status: 404, body: { error: { code: "not_found", message: `no route for ${url.pathname}` } } };
  }
  const span = trace.getActiveSpan();
  span?.setAttribute("http.route", match.template);
  span?.updateName(`${match.method} ${match.template}`);
  const params = (match.pattern.exec(url.pathname) ?? []).slice(1).map(decodeURIComponent);
  return match.handle(params, url, req);
}

/**
 * Runs a Chat call as an exchange: sends one message, waits for its reply, sends the next.
 * The call's `timeoutMs` bounds a server that stops answering.
 */
export async function chatExchange(
  users: UserClient,
  user: string,
  messages: string[],
  timeoutMs: number,
): Promise<string[]> {
  const replies: string[] = [];
  let answered: () => void = () => {};
  async function* outbound() {
    for (const message of messages) {
      const reply = new Promise<void>((resolve) => {
        answered = resolve;
      });
      yield { user, message, timestamp: BigInt(Date.now()) };
      await reply;
    }
  }
  for await (const reply of users.chat(outbound(), { timeoutMs })) {
    replies.push(reply.message);
    answered();
  }
  return replies;
}

async function* fromArray<T>(items: T[]): AsyncIterable<T> {
  yield* items;
}

/** The HTTP status for an RPC error code: the Connect protocol's mapping, but 502 for UNAVAILABLE. */
export function httpStatusOf(code: Code): number {
  return code === Code.Unavailable ? 502 : codeToHttpStatus(code);
}

function errorReply(err: unknown): Reply {
  if (err instanceof HttpError) {
    return { status: err.status, body: { error: { code: "invalid_request", message: err.message } } };
  }
  const ce = ConnectError.from(err);
  return { status: httpStatusOf(ce.code), body: { error: { code: codeToString(ce.code), message: ce.rawMessage } } };
}

function send(res: ServerResponse, reply: Reply): void {
  if (res.headersSent || res.destroyed) {
    return;
  }
  const json = JSON.stringify(reply.body);
  res.writeHead(reply.status, { "content-type": "application/json", "content-length": Buffer.byteLength(json) });
  res.end(json);
}

function parseId(raw: string | undefined): number {
  const id = Number(raw);
  if (!Number.isInteger(id) || id < 1 || id > 2 ** 31 - 1) {
    throw new HttpError(400, `user id ${JSON.stringify(raw)} is not a positive 32-bit integer`);
  }
  return id;
}

function parseNonNegativeInt(raw: string, name: string): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0 || n > 2 ** 31 - 1) {
    throw new HttpError(400, `${name} ${JSON.stringify(raw)} is not a non-negative 32-bit integer`);
  }
  return n;
}

function arrayOf(body: unknown, key: string): unknown[] {
  const value = typeof body === "object" && body !== null ? (body as Record<string, unknown>)[key] : undefined;
  if (!Array.isArray(value)) {
    throw new HttpError(400, `${key} is not an array`);
  }
  return value;
}

function stringOf(value: unknown, key: string, where: string): string {
  const v = typeof value === "object" && value !== null ? (value as Record<string, unknown>)[key] : undefined;
  if (typeof v !== "string") {
    throw new HttpError(400, `${where}.${key} is not a string`);
  }
  return v;
}

async function readJson(req: IncomingMessage, maxBytes: number): Promise<unknown> {
  const body = await readBody(req, maxBytes, () => new HttpError(413, `request body larger than ${maxBytes} bytes`));
  try {
    return JSON.parse(body.toString("utf8"));
  } catch {
    throw new HttpError(400, "request body is not json");
  }
}
