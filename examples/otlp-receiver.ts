import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { promisify } from "node:util";
import { gunzip } from "node:zlib";
import { readBody } from "./read-body.js";
import { type SpanRecord, spansFromOtlpJson } from "./span-record.js";

/**
 * A minimal OTLP/HTTP trace receiver for the demo: accepts `POST /v1/traces` with an OTLP/JSON
 * body (`content-type: application/json`, optionally `content-encoding: gzip`) and keeps the spans
 * in memory. It answers protobuf bodies with 415, so exporters must use
 * `OTEL_EXPORTER_OTLP_PROTOCOL=http/json`. Not for production: no auth, no size-based eviction.
 */
export interface OtlpReceiver {
  /** Base URL for `OTEL_EXPORTER_OTLP_ENDPOINT`, e.g. `http://127.0.0.1:40123` (no path). */
  readonly url: string;
  /** A copy of all spans received so far, in arrival order. */
  spans(): SpanRecord[];
  /** Number of export requests that were rejected (bad body, wrong content type). */
  rejected(): number;
  /** Stops listening and closes open connections. */
  close(): Promise<void>;
}

/** Options of {@link startOtlpReceiver}. */
export interface OtlpReceiverOptions {
  /** Address to listen on. Default `127.0.0.1`. */
  host?: string;
  /** Port to listen on; 0 picks an ephemeral port. Default 0. */
  port?: number;
  /** Largest accepted request body in bytes, after decompression. Default 16 MiB. */
  maxBodyBytes?: number;
}

const gunzipAsync = promisify(gunzip);

/**
 * Starts an OTLP/HTTP JSON receiver.
 *
 * @returns the listening receiver
 * @throws when the address cannot be bound (e.g. `EADDRINUSE`)
 */
export async function startOtlpReceiver(options: OtlpReceiverOptions = {}): Promise<OtlpReceiver> {
  const host = options.host ?? "127.0.0.1";
  const maxBodyBytes = options.maxBodyBytes ?? 16 * 1024 * 1024;
  const received: SpanRecord[] = [];
  let rejected = 0;

  const server = createServer((req, res) => {
    handle(req, maxBodyBytes).then(
      (spans) => {
        received.push(...spans);
        reply(res, 200, {});
      },
      (err: unknown) => {
        rejected++;
        const status = err instanceof ReceiverError ? err.status : 400;
        reply(res, status, { code: status, message: err instanceof Error ? err.message : String(err) });
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const hostInUrl = host.includes(":") ? `[${host}]` : host;
  return {
    url: `http://${hostInUrl}:${port}`,
    spans: () => received.slice(),
    rejected: () => rejected,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

class ReceiverError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

async function handle(req: IncomingMessage, maxBodyBytes: number): Promise<SpanRecord[]> {
  const path = new URL(req.url ?? "/", "http://receiver").pathname;
  if (path !== "/v1/traces") {
    // Drain so that keep-alive connections stay usable.
    req.resume();
    throw new ReceiverError(404, `unknown path ${path}`);
  }
  if (req.method !== "POST") {
    req.resume();
    throw new ReceiverError(405, `method ${req.method} not allowed on /v1/traces`);
  }
  const contentType = (req.headers["content-type"] ?? "").split(";")[0]?.trim();
  if (contentType !== "application/json") {
    req.resume();
    throw new ReceiverError(415, `content type ${contentType || "(none)"} not supported, use OTLP/JSON (http/json)`);
  }
  let body = await readBody(
    req,
    maxBodyBytes,
    () => new ReceiverError(413, `request body larger than ${maxBodyBytes} bytes`),
  );
  const encoding = req.headers["content-encoding"];
  if (encoding === "gzip") {
    body = await gunzipAsync(body, { maxOutputLength: maxBodyBytes });
  } else if (encoding !== undefined && encoding !== "identity") {
    throw new ReceiverError(415, `content encoding ${encoding} not supported`);
  }
  return spansFromOtlpJson(JSON.parse(body.toString("utf8")));
}

function reply(res: ServerResponse, status: number, body: object): void {
  if (res.headersSent || res.destroyed) {
    return;
  }
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
}
