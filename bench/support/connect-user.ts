/**
 * The connect side of the benchmark's UserService: a server and a transport to it, over h2c on
 * 127.0.0.1 or in memory, and the calls overhead.ts makes on a connect client (the same calls as
 * grpc-js-user.ts makes on grpc-js).
 */

import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { Client, Interceptor, ServiceImpl, Transport } from "@connectrpc/connect";
import { createClient, createRouterTransport } from "@connectrpc/connect";
import { connectNodeAdapter, createGrpcTransport } from "@connectrpc/connect-node";
import type { TracedClientOptions, TracedServiceOptions } from "connect-otel";
import { createTracedUserServiceClient, traceUserService } from "../../generated/user/v1/user_otel.js";
import type { ChatMessageSchema } from "../../generated/user/v1/user_pb.js";
import { UserService } from "../../generated/user/v1/user_pb.js";
import { createUserImpl } from "../../test/support/user-impl.js";
import type { UserCalls } from "./grpc-js-user.js";

/** The request stream of a bidi call: `count` chat messages, produced as the transport pulls them. */
async function* chatRequests(count: number): AsyncGenerator<MessageInitShape<typeof ChatMessageSchema>> {
  for (let i = 1; i <= count; i++) yield { user: "client", message: "hello", timestamp: BigInt(i) };
}

/** The benchmark's calls on a connect client. */
export function connectCalls(client: Client<typeof UserService>): UserCalls {
  return {
    async unary() {
      await client.fetchUser({ userId: 7 });
    },
    async serverStream(count) {
      let received = 0;
      for await (const _ of client.streamUsers({ pageSize: count })) received++;
      return received;
    },
    async bidi(count) {
      let received = 0;
      for await (const _ of client.chat(chatRequests(count))) received++;
      return received;
    },
  };
}

/** A running server: its base URL (`http://127.0.0.1:<port>`) and what stops it. */
export interface UserServer {
  readonly baseUrl: string;
  close(): Promise<void>;
}

/**
 * Starts an h2c connect server for `impl` on an ephemeral port of 127.0.0.1, with connect's server
 * `interceptors` if given; `close()` destroys its sessions and closes it.
 */
export async function serveUser(
  impl: ServiceImpl<typeof UserService>,
  interceptors?: Interceptor[],
): Promise<UserServer> {
  const server = http2.createServer(
    connectNodeAdapter({ routes: (router) => router.service(UserService, impl), interceptors }),
  );
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on("session", (s: http2.ServerHttp2Session) => {
    sessions.add(s);
    s.on("close", () => sessions.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sessions) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** How a pair's client reaches its server. */
export type PairTransport = "h2c" | "memory";

/** A UserService server and a transport to it. */
export interface UserPair {
  readonly transport: Transport;
  /** The server's base URL as a traced client's `baseUrl` option gives it. */
  readonly baseUrl: string;
  /** The protocol the transport speaks, as a traced client's `protocol` option gives it. */
  readonly protocol: "grpc" | "connect";
  close(): Promise<void>;
}

/**
 * A server for `impl` and a transport to it: `h2c`, connect-node's gRPC transport to an h2c server
 * on 127.0.0.1 (what the benchmark measures by default); `memory`, connect's router transport,
 * which speaks the Connect protocol to the router in the same process without sockets or HTTP/2,
 * so that what remains is the cost of connect and of the instrumentation. Connect's server and
 * client `interceptors` are installed where given.
 */
export async function openUserPair(
  kind: PairTransport,
  impl: ServiceImpl<typeof UserService>,
  interceptors: { server?: Interceptor[]; client?: (baseUrl: string) => Interceptor[] } = {},
): Promise<UserPair> {
  if (kind === "memory") {
    const baseUrl = "https://in-memory";
    const transport = createRouterTransport((router) => router.service(UserService, impl), {
      router: { interceptors: interceptors.server },
      transport: { interceptors: interceptors.client?.(baseUrl) },
    });
    return { transport, baseUrl, protocol: "connect", close: async () => {} };
  }
  const server = await serveUser(impl, interceptors.server);
  const transport = createGrpcTransport({
    baseUrl: server.baseUrl,
    interceptors: interceptors.client?.(server.baseUrl),
  });
  return { transport, baseUrl: server.baseUrl, protocol: "grpc", close: server.close };
}

/** Options of the generated traced pair, the same on both sides except the client-only ones. */
export type TracedUserOptions = TracedClientOptions<typeof UserService> & TracedServiceOptions<typeof UserService>;

/** A pair and the benchmark's calls on its client. */
export interface PairCalls {
  readonly pair: UserPair;
  readonly calls: UserCalls;
}

/**
 * The plain implementation (test/support/user-impl.ts) and a client of it over `kind`: untraced
 * connect when `tracing` is undefined, else the generated traced client and service wrapper with
 * those options (the client's `baseUrl` and `protocol` are the pair's).
 */
export async function openConnectCalls(kind: PairTransport, tracing?: TracedUserOptions): Promise<PairCalls> {
  const impl = createUserImpl();
  const pair = await openUserPair(kind, tracing ? traceUserService(impl, tracing) : impl);
  const client = tracing
    ? createTracedUserServiceClient(pair.transport, { ...tracing, baseUrl: pair.baseUrl, protocol: pair.protocol })
    : createClient(UserService, pair.transport);
  return { pair, calls: connectCalls(client) };
}
