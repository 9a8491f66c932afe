import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import type { ConnectRouter } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { LOOPBACK, loopbackUrl } from "./config.js";

/** A listening gRPC server. */
export interface GrpcServer {
  /** Base URL of the server, `http://127.0.0.1:<port>`. */
  readonly url: string;
  /** Stops accepting connections; open HTTP/2 sessions are closed gracefully. */
  close(): Promise<void>;
}

/**
 * Serves connect routes over HTTP/2 without TLS (h2c) on loopback, so gRPC clients
 * (`createGrpcTransport`) can call them. The adapter also answers the Connect and gRPC-web
 * protocols.
 *
 * @param port the port, 0 for an ephemeral one
 * @param routes registers the services, e.g. `(router) => router.service(UserService, impl)`
 * @throws when the port cannot be bound
 */
export async function serveGrpc(port: number, routes: (router: ConnectRouter) => void): Promise<GrpcServer> {
  const server = http2.createServer(connectNodeAdapter({ routes }));
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on("session", (session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, LOOPBACK, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const { port: bound } = server.address() as AddressInfo;
  return {
    url: loopbackUrl(bound),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const session of sessions) {
          session.close();
        }
      }),
  };
}
