import type { Interceptor, Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import type { Wire } from "./servers.js";

/**
 * A transport of `wire`'s protocol to `baseUrl` with `interceptors`, as `TestServer.transport()`
 * makes it otherwise. Interceptors see the request headers after the transport set them, timeout
 * headers included.
 */
export function transportWith(wire: Wire, baseUrl: string, interceptors: Interceptor[]): Transport {
  switch (wire.protocol) {
    case "grpc":
      return createGrpcTransport({ baseUrl, interceptors });
    case "grpc-web":
      return createGrpcWebTransport({ baseUrl, httpVersion: wire.httpVersion, interceptors });
    case "connect":
      return createConnectTransport({ baseUrl, httpVersion: wire.httpVersion, interceptors });
  }
}

/** Removes the deadline headers (`grpc-timeout`, `connect-timeout-ms`): the server never learns the deadline. */
export const hideDeadline: Interceptor = (next) => (req) => {
  req.header.delete("grpc-timeout");
  req.header.delete("connect-timeout-ms");
  return next(req);
};

/**
 * Sends the deadline header of `protocol` (`grpc-timeout` for gRPC and gRPC-web, `connect-timeout-ms`
 * for Connect) for `timeoutMs` milliseconds although the call has no `timeoutMs`: only the server
 * knows the deadline and enforces it.
 */
export function serverOnlyDeadline(protocol: Wire["protocol"], timeoutMs: number): Interceptor {
  return (next) => (req) => {
    if (protocol === "connect") req.header.set("connect-timeout-ms", String(timeoutMs));
    else req.header.set("grpc-timeout", `${timeoutMs}m`);
    return next(req);
  };
}
