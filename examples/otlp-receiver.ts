import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { promisify } from "node:util";
import { gunzip } from "node:zlib";
import { type MetricPointRecord, metricsFromOtlpJson } from "./metric-record.js";
import { metricsFromOtlpProtobuf, spansFromOtlpProtobuf } from "./otlp-protobuf.js";
import { readBody } from "./read-body.js";
import { type SpanRecord, spansFromOtlpJson } from "./span-record.js";

/**
 * The demos' OTLP receiver, a minimal OTLP/HTTP endpoint for traces and metrics: accepts
 * `POST /v1/traces` and `POST /v1/metrics` with an OTLP/JSON body (`content-type:
 * application/json`, the `http/json` protocol) or an OTLP protobuf body (`application/x-protobuf`,
 * `http/protobuf`, what the Go and Python exporters send by default), either optionally
 * `content-encoding: gzip`, and keeps the spans and metric data points in memory. Other paths are
 * answered with 404 (logs, for one), other content types with 415. Not for production: no auth, no
 * size-based eviction.
 */
export interface OtlpReceiver {
  /** Base URL for `OTEL_EXPORTER_OTLP_ENDPOINT`, e.g. `http://127.0.0.1:40123` (no path). */
  readonly url: string;
  /** A copy of all spans received so far, in arrival order. */
  spans(): SpanRecord[];
  /**
   * A copy of all metric data points received so far, in arrival order: every point of every
   * export (a cumulative series appears once per export).
   */
  metrics(): MetricPointRecord[];
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
 * Starts an OTLP/HTTP receiver of JSON and protobuf trace and metric exports.
 *
 * @returns the listening receiver
 * @throws when the address cannot be bound (e.g. `EADDRINUSE`)
 */
export async function startOtlpReceiver(options: OtlpReceiverOptions = {}): Promise<OtlpReceiver> {
  const host = options.host ?? "127.0.0.1";
  const maxBodyBytes = options.maxBodyBytes ?? 16 * 1024 * 1024;
  const received: SpanRecord[] = [];
  const points: MetricPointRecord[] = [];
  let rejected = 0;

  const server = createServer((req, res) => {
    handle(req, maxBodyBytes).then(
      (data) => {
        if (data.signal === "traces") {
          received.push(...data.spans);
        } else {
          points.push(...data.points);
        }
        replySuccess(req, res);
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
    metrics: () => points.slice(),
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

/** What one accepted export request held. */
type Received = { signal: "traces"; spans: SpanRecord[] } | { signal: "metrics"; points: MetricPointRecord[] };

/** The signals by their OTLP/HTTP path. */
const SIGNAL_PATHS: Readonly<Record<string, Received["signal"]>> = { "/v1/traces": "traces", "/v1/metrics": "metrics" };

async function handle(req: IncomingMessage, maxBodyBytes: number): Promise<Received> {
  const path = new URL(req.url ?? "/", "http://receiver").pathname;
  const signal = Object.hasOwn(SIGNAL_PATHS, path) ? SIGNAL_PATHS[path] : undefined;
  if (signal === undefined) {
    // Drain so that keep-alive connections stay usable.
    req.resume();
    throw new ReceiverError(404, `unknown path ${path}`);
  }
  if (req.method !== "POST") {
    req.resume();
    throw new ReceiverError(405, `method ${req.method} not allowed on ${path}`);
  }
  const contentType = (req.headers["content-type"] ?? "").split(";")[0]?.trim().toLowerCase();
  if (contentType !== "application/json" && contentType !== "application/x-protobuf") {
    req.resume();
    throw new ReceiverError(
      415,
      `content type ${contentType || "(none)"} not supported, use application/json or application/x-protobuf`,
    );
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
  try {
    const json = contentType === "application/json" ? (JSON.parse(body.toString("utf8")) as unknown) : undefined;
    if (signal === "traces") {
      return { signal, spans: json !== undefined ? spansFromOtlpJson(json) : spansFromOtlpProtobuf(body) };
    }
    return { signal, points: json !== undefined ? metricsFromOtlpJson(json) : metricsFromOtlpProtobuf(body) };
  } catch (err) {
    throw new ReceiverError(400, `bad ${contentType} body: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/**
 * Answers an accepted export as OTLP/HTTP says: an `ExportTraceServiceResponse` or
 * `ExportMetricsServiceResponse` in the request's encoding, which for a full success is `{}` in
 * JSON and zero bytes in protobuf (exporters parse it).
 */
function replySuccess(req: IncomingMessage, res: ServerResponse): void {
  if (req.headers["content-type"]?.toLowerCase().startsWith("application/x-protobuf")) {
    if (!res.headersSent && !res.destroyed) {
      res.writeHead(200, { "content-type": "application/x-protobuf", "content-length": 0 });
      res.end();
    }
    return;
  }
  reply(res, 200, {});
}

function reply(res: ServerResponse, status: number, body: object): void {
  if (res.headersSent || res.destroyed) {
    return;
  }
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
}
