import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import { create, toBinary } from "@bufbuild/protobuf";
import type { CallOptions, Client } from "@connectrpc/connect";
import { ConnectError } from "@connectrpc/connect";
import type { Span, Tracer } from "@opentelemetry/api";
import { expect } from "vitest";
import {
  ChatMessageSchema,
  CreateUserRequestSchema,
  CreateUsersResponseSchema,
  FetchUserRequestSchema,
  StreamUsersRequestSchema,
  UserResponseSchema,
  type UserService,
} from "../../generated/user/v1/user_pb.js";
import type { Wire } from "./servers.js";

/** A client of user.v1.UserService, traced or not. */
export type UserClient = Client<typeof UserService>;

/** What one call sent and received, as messages of the method's schemas. */
export interface Exchange {
  readonly sent: readonly unknown[];
  readonly received: readonly unknown[];
}

/** One method of user.v1.UserService with a standard call that succeeds against `createUserImpl()`. */
export interface MethodCase {
  /** Method name as in the schema, `FetchUser`. */
  readonly method: "FetchUser" | "StreamUsers" | "CreateUsers" | "Chat";
  readonly kind: "unary" | "server_streaming" | "client_streaming" | "bidi_streaming";
  /** Span name and current `rpc.method`: `user.v1.UserService/FetchUser`. */
  readonly spanName: string;
  readonly input: DescMessage;
  readonly output: DescMessage;
  /** Messages the standard call sends and receives. */
  readonly sentCount: number;
  readonly receivedCount: number;
  /** Makes the standard call and returns the messages sent (as created from their init) and received. */
  run(client: UserClient, options?: CallOptions): Promise<Exchange>;
}

const chatInits = [
  { user: "ada", message: "hello", timestamp: 1n },
  { user: "ada", message: "how are you, server?", timestamp: 2n },
  { user: "ada", message: "bye", timestamp: 1234567890123n },
];
const createInits = [
  { name: "ada", email: "ada@example.com" },
  { name: "grace", email: "grace@example.com" },
  { name: "a much longer name than the others", email: "" },
];

/** The four method kinds of user.v1.UserService, each with a standard successful call. */
export const methodCases: readonly MethodCase[] = [
  {
    method: "FetchUser",
    kind: "unary",
    spanName: "user.v1.UserService/FetchUser",
    input: FetchUserRequestSchema,
    output: UserResponseSchema,
    sentCount: 1,
    receivedCount: 1,
    async run(client, options) {
      const init = { userId: 7 };
      const response = await client.fetchUser(init, options);
      return { sent: [create(FetchUserRequestSchema, init)], received: [response] };
    },
  },
  {
    method: "StreamUsers",
    kind: "server_streaming",
    spanName: "user.v1.UserService/StreamUsers",
    input: StreamUsersRequestSchema,
    output: UserResponseSchema,
    sentCount: 1,
    receivedCount: 3,
    async run(client, options) {
      const init = { pageSize: 3 };
      const received = await collect(client.streamUsers(init, options));
      return { sent: [create(StreamUsersRequestSchema, init)], received };
    },
  },
  {
    method: "CreateUsers",
    kind: "client_streaming",
    spanName: "user.v1.UserService/CreateUsers",
    input: CreateUserRequestSchema,
    output: CreateUsersResponseSchema,
    sentCount: 3,
    receivedCount: 1,
    async run(client, options) {
      const response = await client.createUsers(iterate(createInits), options);
      return { sent: createInits.map((init) => create(CreateUserRequestSchema, init)), received: [response] };
    },
  },
  {
    method: "Chat",
    kind: "bidi_streaming",
    spanName: "user.v1.UserService/Chat",
    input: ChatMessageSchema,
    output: ChatMessageSchema,
    sentCount: 3,
    receivedCount: 3,
    async run(client, options) {
      const received = await collect(client.chat(iterate(chatInits), options));
      return { sent: chatInits.map((init) => create(ChatMessageSchema, init)), received };
    },
  },
];

/**
 * The method cases a wire can carry: bidi streaming needs HTTP/2 (connect-node answers a bidi call
 * over HTTP/1.1 with HTTP 505 before any handler runs).
 */
export function methodCasesFor(wire: Wire): readonly MethodCase[] {
  return wire.httpVersion === "2" ? methodCases : methodCases.filter((mc) => mc.kind !== "bidi_streaming");
}

/** Reads an async iterable to its end. */
export async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const all: T[] = [];
  for await (const item of iterable) all.push(item);
  return all;
}

/** An async iterable of `items`, one per tick. */
export async function* iterate<T>(items: readonly T[]): AsyncGenerator<T> {
  for (const item of items) {
    await Promise.resolve();
    yield item;
  }
}

/** Serialized size in bytes of a message of `schema`: what `rpc.message.uncompressed_size` must say. */
export function sizeOf<D extends DescMessage>(schema: D, message: unknown): number {
  return toBinary(schema, create(schema, message as MessageShape<D>)).byteLength;
}

/** Runs `fn` inside an active INTERNAL span of `tracer`, ending the span afterwards. */
export async function withParent<T>(tracer: Tracer, fn: (parent: Span) => Promise<T>): Promise<T> {
  return tracer.startActiveSpan("test parent", async (parent) => {
    try {
      return await fn(parent);
    } finally {
      parent.end();
    }
  });
}

/** The error a call rejects with; fails the test if the call succeeds or rejects with a non-ConnectError. */
export async function errorOf(call: Promise<unknown>): Promise<ConnectError> {
  try {
    await call;
  } catch (error) {
    expect(error).toBeInstanceOf(ConnectError);
    return error as ConnectError;
  }
  throw new Error("call succeeded, expected an error");
}
