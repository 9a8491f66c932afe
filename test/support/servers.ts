import * as http from "node:http";
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import type { ConnectRouter, Transport } from "@connectrpc/connect";
import {
  connectNodeAdapter,
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
} from "@connectrpc/connect-node";
import type { WireProtocol } from "connect-otel";

/**
 * One way to reach a server: wire protocol over an HTTP version, as connect-node offers them.
 * gRPC runs over HTTP/2 only; gRPC-web is tested over HTTP/1.1, Connect over both.
 */
export interface Wire {
  readonly name: string;
  readonly protocol: WireProtocol;
  readonly httpVersion: "1.1" | "2";
}

/** The four wires every tracing behaviour is checked on. */
export const wires: readonly Wire[] = [
  { name: "grpc over http/2", protocol: "grpc", httpVersion: "2" },
  { name: "connect over http/1.1", protocol: "connect", httpVersion: "1.1" },
  { name: "connect over http/2", protocol: "connect", httpVersion: "2" },
  { name: "grpc-web over http/1.1", protocol: "grpc-web", httpVersion: "1.1" },
];

/** A ConnectRPC server listening on 127.0.0.1 (ephemeral port). */
export interface TestServer {
  readonly baseUrl: string;
  /** A new transport of the wire's protocol to this server. */
  transport(): Transport;
  close(): Promise<void>;
}

/**
 * Runs before connect's handler for every request of a test server and returns true when it
 * answered the request itself (a CORS preflight, a page); connect serves the request otherwise.
 */
export type RequestFilter = (...args: Parameters<ReturnType<typeof connectNodeAdapter>>) => boolean;

/**
 * Starts a connect-node server on loopback for `routes`: h2c (`http2.createServer`) for HTTP/2,
 * `http.createServer` for HTTP/1.1. Every protocol is served; the wire decides what clients speak.
 * `filter` sees each request first.
 */
export async function startServer(
  wire: Wire,
  routes: (router: ConnectRouter) => void,
  filter?: RequestFilter,
): Promise<TestServer> {
  const connectHandler = connectNodeAdapter({ routes });
  const handler: typeof connectHandler =
    filter === undefined
      ? connectHandler
      : (req, res) => {
          if (!filter(req, res)) connectHandler(req, res);
        };
  const server = wire.httpVersion === "2" ? http2.createServer(handler) : http.createServer(handler);
  const openSessions = new Set<http2.ServerHttp2Session>();
  server.on("session", (session: http2.ServerHttp2Session) => {
    openSessions.add(session);
    session.on("close", () => openSessions.delete(session));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  const baseUrl = `http://127.0.0.1:${port}`;
  return {
    baseUrl,
    transport() {
      return createTransport(wire, baseUrl);
    },
    close() {
      return new Promise<void>((resolve) => {
        server.close(() => resolve());
        if ("closeAllConnections" in server) server.closeAllConnections();
        // http2 sessions keep the server open; destroying them lets close() finish
        for (const session of openSessions) session.destroy();
      });
    },
  };
}

function createTransport(wire: Wire, baseUrl: string): Transport {
  const options = { baseUrl, httpVersion: wire.httpVersion } as const;
  switch (wire.protocol) {
    case "grpc":
      return createGrpcTransport({ baseUrl });
    case "grpc-web":
      return createGrpcWebTransport(options);
    case "connect":
      return createConnectTransport(options);
  }
}
