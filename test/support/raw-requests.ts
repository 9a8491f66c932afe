import * as http from "node:http";
import * as http2 from "node:http2";
import { volatileHeaders } from "./call-outcomes.js";

/** A response as it came off the wire: status, headers (without volatile ones), body text. */
export interface RawResponse {
  readonly status: number;
  /** `[name, value]` pairs, lowercased, sorted, without {@link volatileHeaders} and HTTP/2 pseudo-headers. */
  readonly headers: [string, string][];
  readonly body: string;
}

/** What a raw request ended with: a response, or the error the HTTP client raised (code or message). */
export type RawOutcome = { readonly response: RawResponse } | { readonly error: string };

/**
 * Header lines as sent: a name may repeat (each pair is one header line / HTTP/2 field). Values
 * are strings of code points 0–255, written one byte per code point (latin1) — write raw UTF-8
 * bytes as `Buffer.from(text).toString("latin1")`.
 */
export type RawHeaders = readonly (readonly [string, string])[];

/**
 * POSTs a Connect-protocol unary request with a JSON body (`connectrpc.com/docs/protocol`) to
 * `baseUrl` + `path` over HTTP/1.1 (`node:http`) or h2c (`node:http2`), with `headers` as raw
 * header lines after `content-type`. Never throws for what the server or the HTTP client does:
 * a refused or reset request is an `error` outcome.
 */
export async function postConnectJson(
  baseUrl: string,
  httpVersion: "1.1" | "2",
  path: string,
  body: unknown,
  headers: RawHeaders,
): Promise<RawOutcome> {
  const payload = Buffer.from(JSON.stringify(body));
  try {
    return httpVersion === "2"
      ? await post2(baseUrl, path, payload, headers)
      : await post1(baseUrl, path, payload, headers);
  } catch (error) {
    const e = error as NodeJS.ErrnoException;
    return { error: e.code ?? e.message };
  }
}

function post1(baseUrl: string, path: string, payload: Buffer, headers: RawHeaders): Promise<RawOutcome> {
  const url = new URL(baseUrl);
  // a flat [name, value, name, value, ...] array keeps repeated names as separate lines (and adds no host)
  const lines = ["host", url.host, "content-type", "application/json", "content-length", String(payload.byteLength)];
  for (const [name, value] of headers) lines.push(name, value);
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: url.hostname, port: url.port, path, method: "POST", headers: lines, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () =>
          resolve({
            response: {
              status: res.statusCode ?? 0,
              headers: stable(Object.entries(res.headers)),
              body: Buffer.concat(chunks).toString("utf8"),
            },
          }),
        );
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(payload);
  });
}

function post2(baseUrl: string, path: string, payload: Buffer, headers: RawHeaders): Promise<RawOutcome> {
  const fields: http2.OutgoingHttpHeaders = {
    ":method": "POST",
    ":path": path,
    "content-type": "application/json",
  };
  for (const [name, value] of headers) {
    const prior = fields[name];
    // an array value sends one field per element
    fields[name] = prior === undefined ? value : [...(Array.isArray(prior) ? prior : [String(prior)]), value];
  }
  return new Promise((resolve, reject) => {
    const session = http2.connect(baseUrl);
    const finish = (outcome: RawOutcome | Error) => {
      session.close();
      if (outcome instanceof Error) reject(outcome);
      else resolve(outcome);
    };
    session.on("error", finish);
    const req = session.request(fields);
    let status = 0;
    let responseHeaders: [string, string | string[] | undefined][] = [];
    req.on("response", (h) => {
      status = Number(h[":status"]);
      responseHeaders = Object.entries(h).filter(([k]) => !k.startsWith(":"));
    });
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () =>
      finish({ response: { status, headers: stable(responseHeaders), body: Buffer.concat(chunks).toString("utf8") } }),
    );
    req.on("error", finish);
    req.end(payload);
  });
}

function stable(entries: [string, string | string[] | undefined][]): [string, string][] {
  return entries
    .filter(([k, v]) => v !== undefined && !volatileHeaders.has(k))
    .map(([k, v]): [string, string] => [k, Array.isArray(v) ? v.join(", ") : String(v)])
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}
