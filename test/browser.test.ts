import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import type * as http from "node:http";
import * as path from "node:path";
import { Code, cors } from "@connectrpc/connect";
import { SpanKind } from "@opentelemetry/api";
import type { ReadableSpan } from "@opentelemetry/sdk-trace";
import type { TracedServiceOptions } from "connect-otel";
import { CORS_ALLOWED_TRACE_HEADERS, CORS_EXPOSED_TRACE_HEADERS } from "connect-otel";
import { build, type Plugin } from "esbuild";
import { afterAll, describe, expect, it } from "vitest";
import { traceUserService } from "../generated/user/v1/user_otel.js";
import { UserService } from "../generated/user/v1/user_pb.js";
import type { BrowserProtocol, PageReport, PropagatedCall, StrictCalls } from "./support/browser-page.js";
import type { CallOutcome } from "./support/call-outcomes.js";
import { makeTmpDir, removeTmpDir, repoRoot, runtimeDir } from "./support/plugin-harness.js";
import type { RequestFilter, TestServer, Wire } from "./support/servers.js";
import { startServer } from "./support/servers.js";
import type { SpanRecorder } from "./support/span-recorder.js";
import { createSpanRecorder } from "./support/span-recorder.js";
import { installTestTracing } from "./support/tracing.js";
import { createUserImpl } from "./support/user-impl.js";

// Traced connect-web clients in headless Chromium (Debian's chromium package) call connect-node servers on
// other loopback origins, over Connect and gRPC-web. The page (test/support/browser-page.ts, bundled with
// esbuild) reports what it saw; the servers record their spans here.

const CHROMIUM = "/usr/bin/chromium";
/** Hang guards for a loaded 2-core machine, never speed checks. */
const REPORT_TIMEOUT_MS = 120_000;
const BROWSER_LIFETIME_S = 600;

const http1: Wire = { name: "http/1.1", protocol: "connect", httpVersion: "1.1" };
const protocols: readonly BrowserProtocol[] = ["connect", "grpc-web"];

installTestTracing();

interface PageRun {
  readonly report: PageReport;
  /** Cross-origin, CORS allows the trace headers and exposes `traceresponse`. */
  readonly allowing: SpanRecorder;
  /** Cross-origin, connect's CORS defaults only. */
  readonly strict: SpanRecorder;
  /** The page's own origin. */
  readonly page: SpanRecorder;
}

const cleanups: (() => Promise<void> | void)[] = [];
let pending: Promise<PageRun> | undefined;

/** Opens the page once for all tests; each test that needs it fails with the reason if it cannot run. */
function pageRun(): Promise<PageRun> {
  pending ??= openPage();
  return pending;
}

afterAll(async () => {
  const errors: unknown[] = [];
  for (const cleanup of cleanups.reverse()) {
    try {
      await cleanup();
    } catch (error) {
      errors.push(error);
    }
  }
  if (errors.length > 0) throw errors[0];
});

/** A CORS answer as `@connectrpc/connect`'s `cors` constants describe it, with these header lists. */
function corsFilter(allowedHeaders: readonly string[], exposedHeaders: readonly string[]): RequestFilter {
  return (req, res) => {
    const origin = req.headers.origin;
    if (origin === undefined) return false;
    const r = res as http.ServerResponse;
    r.setHeader("access-control-allow-origin", origin);
    r.setHeader("vary", "origin");
    if (req.method === "OPTIONS") {
      r.setHeader("access-control-allow-methods", cors.allowedMethods.join(", "));
      r.setHeader("access-control-allow-headers", allowedHeaders.join(", "));
      r.statusCode = 204;
      r.end();
      return true;
    }
    r.setHeader("access-control-expose-headers", exposedHeaders.join(", "));
    return false;
  };
}

/** Serves the page (`/`), its script (`/page.js`) and takes its report (`POST /report`). */
function pageFilter(script: string, onReport: (report: PageReport) => void): RequestFilter {
  return (req, res) => {
    const r = res as http.ServerResponse;
    const url = new URL(req.url ?? "/", "http://page");
    if (req.method === "GET" && url.pathname === "/") {
      r.writeHead(200, { "content-type": "text/html" });
      r.end('<!doctype html><title>connect-otel</title><script type="module" src="/page.js"></script>');
      return true;
    }
    if (req.method === "GET" && url.pathname === "/page.js") {
      r.writeHead(200, { "content-type": "text/javascript" });
      r.end(script);
      return true;
    }
    if (req.method === "POST" && url.pathname === "/report") {
      const chunks: Buffer[] = [];
      (req as http.IncomingMessage).on("data", (chunk: Buffer) => chunks.push(chunk));
      (req as http.IncomingMessage).on("end", () => {
        r.writeHead(204).end();
        onReport(JSON.parse(Buffer.concat(chunks).toString("utf8")) as PageReport);
      });
      return true;
    }
    return false;
  };
}

/** The page has no vitest: the `expect` that test/support/user-calls.ts imports is a stub there. */
const noVitest: Plugin = {
  name: "no-vitest",
  setup(b) {
    b.onResolve({ filter: /^vitest$/ }, () => ({ path: "vitest", namespace: "no-vitest", sideEffects: false }));
    b.onLoad({ filter: /.*/, namespace: "no-vitest" }, () => ({
      contents: 'export function expect() { throw new Error("vitest does not run in the page"); }',
      loader: "js",
    }));
  },
};

/** Bundles the page script for the browser, with the runtime from its sources, as vitest resolves it. */
async function bundlePage(): Promise<string> {
  const result = await build({
    entryPoints: [path.join(repoRoot, "test", "support", "browser-page.ts")],
    bundle: true,
    format: "esm",
    platform: "browser",
    write: false,
    logLevel: "silent",
    alias: { "connect-otel": path.join(runtimeDir, "src", "index.ts") },
    plugins: [noVitest],
  });
  const [output] = result.outputFiles;
  if (output === undefined) throw new Error("esbuild wrote no bundle");
  return output.text;
}

async function startUserServer(
  recorder: SpanRecorder,
  filter: RequestFilter,
  options: TracedServiceOptions<typeof UserService> = {},
): Promise<TestServer> {
  const server = await startServer(
    http1,
    (router) => {
      router.service(
        UserService,
        traceUserService(createUserImpl(), { tracerProvider: recorder.provider, ...options }),
      );
    },
    filter,
  );
  cleanups.push(() => server.close());
  return server;
}

/** Kills the browser's whole process group (the launcher, Chromium and its helpers) and waits for it. */
async function killBrowser(browser: ChildProcess): Promise<void> {
  if (browser.pid === undefined) return;
  const exited = browser.exitCode !== null || browser.signalCode !== null;
  try {
    process.kill(-browser.pid, "SIGKILL");
  } catch {
    // the group is gone already
  }
  if (!exited) await new Promise((resolve) => browser.once("exit", resolve));
}

async function openPage(): Promise<PageRun> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `${CHROMIUM} is missing: this suite runs traced clients in headless Chromium; install Debian's chromium package (apt-get install chromium), as .ci/run does`,
    );
  }
  const script = await bundlePage();
  const recorders = { allowing: createSpanRecorder(), strict: createSpanRecorder(), page: createSpanRecorder() };
  const allowing = await startUserServer(
    recorders.allowing,
    corsFilter(
      [...cors.allowedHeaders, ...CORS_ALLOWED_TRACE_HEADERS],
      [...cors.exposedHeaders, ...CORS_EXPOSED_TRACE_HEADERS],
    ),
    { traceResponse: true },
  );
  const strict = await startUserServer(recorders.strict, corsFilter(cors.allowedHeaders, cors.exposedHeaders));
  let onReport: (report: PageReport) => void = () => {};
  const reported = new Promise<PageReport>((resolve) => {
    onReport = resolve;
  });
  const page = await startUserServer(
    recorders.page,
    pageFilter(script, (report) => onReport(report)),
  );
  const profile = await makeTmpDir("chromium-");
  cleanups.push(() => removeTmpDir(profile));

  const url = `${page.baseUrl}/?allowing=${encodeURIComponent(allowing.baseUrl)}&strict=${encodeURIComponent(strict.baseUrl)}`;
  // GNU timeout kills its process group when the test process could not (a crashed worker)
  const browser = spawn(
    "timeout",
    [
      "--signal=KILL",
      String(BROWSER_LIFETIME_S),
      CHROMIUM,
      "--headless",
      "--no-sandbox",
      "--disable-background-networking",
      "--disable-gpu",
      "--disable-dev-shm-usage",
      "--no-first-run",
      "--no-default-browser-check",
      `--user-data-dir=${profile}`,
      url,
    ],
    { detached: true, stdio: ["ignore", "ignore", "pipe"] },
  );
  cleanups.push(() => killBrowser(browser));
  let stderr = "";
  browser.stderr?.on("data", (chunk: Buffer) => {
    stderr = (stderr + chunk.toString("utf8")).slice(-4000);
  });
  let timer: NodeJS.Timeout | undefined;
  try {
    const report = await Promise.race([
      reported,
      new Promise<never>((_, reject) => {
        browser.once("error", (error) => reject(new Error(`cannot start ${CHROMIUM}: ${error.message}`)));
        browser.once("exit", (code, signal) =>
          reject(new Error(`chromium exited (${code ?? signal}) before the page reported\n${stderr}`)),
        );
        timer = setTimeout(
          () => reject(new Error(`the page did not report within ${REPORT_TIMEOUT_MS} ms\n${stderr}`)),
          REPORT_TIMEOUT_MS,
        );
      }),
    ]);
    if (report.failure !== undefined) throw new Error(`the page failed: ${report.failure}`);
    for (const recorder of Object.values(recorders)) await recorder.settle();
    return { report, ...recorders };
  } finally {
    clearTimeout(timer);
    await killBrowser(browser);
  }
}

function propagatedCall(report: PageReport, protocol: BrowserProtocol, server: PropagatedCall["server"]) {
  const call = report.propagated?.find((c) => c.protocol === protocol && c.server === server);
  if (call === undefined) throw new Error(`the page reported no ${protocol} call to the ${server} server`);
  return call;
}

function strictCalls(report: PageReport, protocol: BrowserProtocol): StrictCalls {
  const calls = report.strict?.find((c) => c.protocol === protocol);
  if (calls === undefined) throw new Error(`the page reported no ${protocol} calls to the strict server`);
  return calls;
}

/** The recorder's SERVER spans of `protocol` (by `rpc.system.name`, which servers set at start). */
function serverSpans(recorder: SpanRecorder, protocol: BrowserProtocol): ReadableSpan[] {
  const system = protocol === "connect" ? "connectrpc" : "grpc";
  return recorder.spans().filter((s) => s.kind === SpanKind.SERVER && s.attributes["rpc.system.name"] === system);
}

/** The value of a response header as the page's `onHeader` saw it, null if hidden or absent. */
function headerSeen(outcome: CallOutcome, name: string): string | null {
  return outcome.headers[0]?.find(([key]) => key === name)?.[1] ?? null;
}

describe("traced connect-web clients in headless Chromium", { timeout: REPORT_TIMEOUT_MS + 60_000 }, () => {
  describe.each(protocols)("%s", (protocol) => {
    it("cross-origin, allow-listed, the server's CORS allows the trace headers: the server span is the child of the browser's client span", async () => {
      const { report, allowing } = await pageRun();
      const call = propagatedCall(report, protocol, "allowing");
      expect(call.outcome.error).toBeUndefined();
      const [server, ...more] = serverSpans(allowing, protocol);
      expect(more).toHaveLength(0);
      expect(server?.spanContext().traceId).toBe(call.clientSpan.traceId);
      expect(server?.parentSpanContext?.spanId).toBe(call.clientSpan.spanId);
      // CORS_EXPOSED_TRACE_HEADERS lets the page read the server's traceresponse
      const sc = server?.spanContext();
      expect(headerSeen(call.outcome, "traceresponse")).toBe(`00-${sc?.traceId}-${sc?.spanId}-01`);
    });

    it("same-origin (relative baseUrl), no allow-list: the server span is the child of the browser's client span", async () => {
      const { report, page } = await pageRun();
      const call = propagatedCall(report, protocol, "page");
      expect(call.outcome.error).toBeUndefined();
      const [server, ...more] = serverSpans(page, protocol);
      expect(more).toHaveLength(0);
      expect(server?.spanContext().traceId).toBe(call.clientSpan.traceId);
      expect(server?.parentSpanContext?.spanId).toBe(call.clientSpan.spanId);
    });

    it("a server whose CORS does not allow the trace headers answers traced clients as it answers an untraced one", async () => {
      const { report } = await pageRun();
      const calls = strictCalls(report, protocol);
      expect(calls.untraced.map((o) => o.error?.code)).toEqual([undefined, undefined, Code.NotFound]);
      expect(calls.untraced[1]?.received).toHaveLength(3);
      expect(calls.traced).toEqual(calls.untraced);
      expect(calls.tracedWithoutBaseUrl).toEqual(calls.untraced);
    });

    it("a server whose CORS does not allow the trace headers: traced calls still have client spans, and server spans start new traces", async () => {
      const { report, strict } = await pageRun();
      const calls = strictCalls(report, protocol);
      expect(calls.tracedSpans).toHaveLength(calls.traced.length + calls.tracedWithoutBaseUrl.length);
      const clientTraces = new Set(calls.tracedSpans.map((s) => s.traceId));
      const servers = serverSpans(strict, protocol);
      expect(servers).toHaveLength(calls.untraced.length + calls.traced.length + calls.tracedWithoutBaseUrl.length);
      for (const server of servers) {
        expect(server.parentSpanContext).toBeUndefined();
        expect(clientTraces.has(server.spanContext().traceId)).toBe(false);
      }
    });

    it("control: a client that allow-lists a server whose CORS does not allow the trace headers fails in the browser", async () => {
      const { report } = await pageRun();
      const { forcedError } = strictCalls(report, protocol);
      expect(forcedError?.code).toBe(Code.Unknown);
      expect(forcedError?.rawMessage).toBe("Failed to fetch");
    });
  });
});
