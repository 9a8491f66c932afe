import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { callsInSpans, latencyRows, renderLatencyTable } from "../examples/latency-table.js";
import type { MetricPointRecord } from "../examples/metric-record.js";
import { ABORTED_PAYMENT_MAX_MS, SCENARIO, SERVICES } from "../examples/scenario.js";
import type { SpanRecord } from "../examples/span-record.js";
import { checkStepTrace } from "../examples/trace-checks.js";
import { groupByTrace } from "../examples/waterfall.js";
import { repoRoot, runToEnd } from "./support/plugin-harness.js";

// The whole demo as a child process (three services, own OTLP receiver, loopback only), then
// assertions on its output and on the spans and metric data points it received.

const DEMO_TIMEOUT_MS = 90_000;

interface DemoRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  spans: SpanRecord[];
  metrics: MetricPointRecord[];
}

async function runDemo(): Promise<DemoRun> {
  const dir = await mkdtemp(join(tmpdir(), "connect-otel-demo-"));
  const spansFile = join(dir, "spans.json");
  const metricsFile = join(dir, "metrics.json");
  const env: NodeJS.ProcessEnv = { ...process.env, DEMO_SPANS_FILE: spansFile, DEMO_METRICS_FILE: metricsFile };
  // The demo must use its own receiver.
  for (const key of Object.keys(env)) {
    if (key.startsWith("OTEL_")) delete env[key];
  }
  try {
    const { code, signal, stdout, stderr } = await runToEnd(process.execPath, ["--import", "tsx", "examples/demo.ts"], {
      cwd: repoRoot,
      env,
      timeoutMs: DEMO_TIMEOUT_MS - 5_000,
    });
    const spans = await readFile(spansFile, "utf8").then(
      (text) => JSON.parse(text) as SpanRecord[],
      () => [],
    );
    const metrics = await readFile(metricsFile, "utf8").then(
      (text) => JSON.parse(text) as MetricPointRecord[],
      () => [],
    );
    return { code, signal, stdout, stderr, spans, metrics };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function traceOfPath(spans: SpanRecord[], path: string): SpanRecord[] {
  const url = new URL(path, "http://gateway");
  const root = spans.find(
    (s) =>
      s.parentSpanId === undefined &&
      s.serviceName === SERVICES.gateway &&
      s.attributes["url.path"] === url.pathname &&
      (s.attributes["url.query"] ?? "") === url.search.replace(/^\?/, ""),
  );
  expect(root, `root span of ${path}`).toBeDefined();
  return spans.filter((s) => s.traceId === root?.traceId);
}

function one(spans: SpanRecord[], service: string, kind: SpanRecord["kind"], name: string): SpanRecord {
  const found = spans.filter((s) => s.serviceName === service && s.kind === kind && s.name === name);
  expect(found, `${service} ${kind} ${name}`).toHaveLength(1);
  return found[0] as SpanRecord;
}

describe("npm run demo", () => {
  let run: DemoRun;
  beforeAll(async () => {
    run = await runDemo();
  }, DEMO_TIMEOUT_MS);
  afterAll(() => {
    if (run !== undefined && run.code !== 0) {
      // Shown only when something failed: the demo's report and its processes' output.
      console.log(run.stdout, run.stderr);
    }
  });

  it("exits 0 and reports success", () => {
    expect(run.signal).toBeNull();
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^demo ok$/m);
    expect(run.stdout).not.toContain("✗");
  });

  it("prints one waterfall per scenario step", () => {
    const headers = run.stdout.split("\n").filter((l) => /^trace [0-9a-f]{32} · \d+ spans? · /.test(l));
    expect(headers).toHaveLength(SCENARIO.length);
    expect(groupByTrace(run.spans)).toHaveLength(SCENARIO.length);
  });

  it("prints, after the waterfalls, the latency table of the OTLP metrics it received, a row per method and side of the spans", () => {
    const rows = latencyRows(run.metrics);
    // The table printed is the one of the metric data points that reached the receiver.
    const table = renderLatencyTable(rows);
    expect(run.stdout).toContain(table);
    const waterfalls = [...run.stdout.matchAll(/^trace [0-9a-f]{32} · /gm)].map((m) => m.index);
    expect(waterfalls).toHaveLength(SCENARIO.length);
    expect(run.stdout.indexOf(table)).toBeGreaterThan(Math.max(...waterfalls));
    expect(table).toMatch(
      /^p50\/p95\/p99: estimates from the histogram buckets, interpolated linearly within a bucket/m,
    );
    // Every method of the scenario, client and server, with the calls of the spans.
    expect(rows.map((r) => [r.method, r.side, r.service, r.calls])).toEqual(
      callsInSpans(run.spans).map((c) => [c.method, c.side, c.service, c.calls]),
    );
    const methods = new Set(rows.map((r) => r.method.replace(/^.*\//, "")));
    expect([...methods].sort()).toEqual([
      "Chat",
      "CreateUsers",
      "FetchUser",
      "GetBalance",
      "ProcessPayment",
      "StreamUsers",
    ]);
    expect(rows.every((r) => r.percentilesMs !== undefined)).toBe(true);
    // The health checks are untraced and record no metrics.
    expect(rows.filter((r) => r.method.startsWith("grpc.health."))).toEqual([]);
    expect(run.stdout).toMatch(/^metrics checks: (\d+) of \1 passed$/m);
  });

  it("counts the failed calls and times the slow payment in the metrics as in the spans", () => {
    const rows = latencyRows(run.metrics);
    const row = (method: string, side: "client" | "server") => {
      const found = rows.filter((r) => r.method === method && r.side === side);
      expect(found, `${method} ${side}`).toHaveLength(1);
      return found[0];
    };
    expect(row("user.v1.UserService/FetchUser", "client")).toMatchObject({
      calls: 2,
      errors: 1,
      codes: { OK: 1, NOT_FOUND: 1 },
    });
    // NOT_FOUND is the caller's problem: no server error.
    expect(row("user.v1.UserService/FetchUser", "server")).toMatchObject({ calls: 2, errors: 0 });
    const payment = row("payment.v1.PaymentService/ProcessPayment", "client");
    expect(payment).toMatchObject({ calls: 1, errors: 1, codes: { DEADLINE_EXCEEDED: 1 } });
    // One call: the estimate is its duration, which the metric takes from the span's clock readings.
    const span = one(run.spans, SERVICES.gateway, "CLIENT", "payment.v1.PaymentService/ProcessPayment");
    expect(payment?.percentilesMs?.[0]).toBeCloseTo(span.endMs - span.startMs, 1);
  });

  it("gives the HTTP request of every step a gateway server span as its trace root", () => {
    for (const step of SCENARIO) {
      const trace = traceOfPath(run.spans, step.path);
      const roots = trace.filter((s) => s.parentSpanId === undefined);
      expect(roots, step.name).toHaveLength(1);
      expect(roots[0]?.kind).toBe("SERVER");
    }
  });

  it("makes the FetchUser server span the child of the gateway's client span", () => {
    const trace = traceOfPath(run.spans, "/api/user/42");
    const root = trace.find((s) => s.parentSpanId === undefined);
    const client = one(trace, SERVICES.gateway, "CLIENT", "user.v1.UserService/FetchUser");
    const server = one(trace, SERVICES.user, "SERVER", "user.v1.UserService/FetchUser");
    expect(client.parentSpanId).toBe(root?.spanId);
    expect(server.parentSpanId).toBe(client.spanId);
    expect(server.attributes["rpc.status_code"]).toBe("OK");
    const balanceClient = one(trace, SERVICES.gateway, "CLIENT", "payment.v1.PaymentService/GetBalance");
    const balanceServer = one(trace, SERVICES.payment, "SERVER", "payment.v1.PaymentService/GetBalance");
    expect(balanceServer.parentSpanId).toBe(balanceClient.spanId);
  });

  it("records annotated request fields and never a debug_redact one", () => {
    const trace = traceOfPath(run.spans, "/api/user/42");
    for (const [service, kind] of [
      [SERVICES.gateway, "CLIENT"],
      [SERVICES.user, "SERVER"],
    ] as const) {
      expect(one(trace, service, kind, "user.v1.UserService/FetchUser").attributes["app.user.id"]).toBe(42);
    }
    const everything = JSON.stringify(run.spans.map((s) => [s.attributes, s.events]));
    expect(everything).not.toMatch(/[\w.+-]+@example\.com/);
  });

  it("leaves the health checks untraced: the /healthz trace is the gateway's HTTP span alone", () => {
    const trace = traceOfPath(run.spans, "/healthz");
    expect(trace.map((s) => `${s.serviceName} ${s.kind} ${s.name}`)).toEqual(["gateway SERVER GET /healthz"]);
    expect(run.spans.filter((s) => s.name.startsWith("grpc.health.v1.Health/"))).toEqual([]);
  });

  it("keeps the GetBalance call made inside the StreamUsers handler in the StreamUsers trace", () => {
    const trace = traceOfPath(run.spans, "/api/users?page_size=100");
    const streamServer = one(trace, SERVICES.user, "SERVER", "user.v1.UserService/StreamUsers");
    const nestedClient = one(trace, SERVICES.user, "CLIENT", "payment.v1.PaymentService/GetBalance");
    const nestedServer = one(trace, SERVICES.payment, "SERVER", "payment.v1.PaymentService/GetBalance");
    expect(nestedClient.parentSpanId).toBe(streamServer.spanId);
    expect(nestedServer.parentSpanId).toBe(nestedClient.spanId);
    // No stray trace started by the nested call.
    const elsewhere = run.spans.filter(
      (s) =>
        s.name === "payment.v1.PaymentService/GetBalance" &&
        s.serviceName === SERVICES.user &&
        s.traceId !== streamServer.traceId,
    );
    expect(elsewhere).toEqual([]);
  });

  it("shows NOT_FOUND for the unknown user", () => {
    const trace = traceOfPath(run.spans, "/api/user/999999");
    const client = one(trace, SERVICES.gateway, "CLIENT", "user.v1.UserService/FetchUser");
    expect(client.attributes["rpc.status_code"]).toBe("NOT_FOUND");
    expect(client.status.code).toBe("ERROR");
    expect(run.stdout).toMatch(/└─ user\.v1\.UserService\/FetchUser .* ERROR NOT_FOUND /);
    expect(run.stdout).toContain('error="user 999999 not found"');
  });

  it("shows DEADLINE_EXCEEDED for the payment that outlives its timeout, the client span lasting about the timeout", () => {
    const trace = traceOfPath(run.spans, "/api/pay/42");
    const client = one(trace, SERVICES.gateway, "CLIENT", "payment.v1.PaymentService/ProcessPayment");
    expect(client.attributes["rpc.status_code"]).toBe("DEADLINE_EXCEEDED");
    expect(client.status.code).toBe("ERROR");
    const duration = client.endMs - client.startMs;
    expect(duration).toBeGreaterThanOrEqual(270);
    expect(duration).toBeLessThan(ABORTED_PAYMENT_MAX_MS);
    const server = one(trace, SERVICES.payment, "SERVER", "payment.v1.PaymentService/ProcessPayment");
    expect(server.parentSpanId).toBe(client.spanId);
    // The handler honours its call's abort signal instead of sleeping on.
    expect(server.endMs - server.startMs).toBeLessThan(ABORTED_PAYMENT_MAX_MS);
    expect(run.stdout).toMatch(/ProcessPayment .* ERROR DEADLINE_EXCEEDED /);
  });
});

describe("demo trace checks", () => {
  const step = SCENARIO.find((s) => s.name === "profile");
  const at = (ms: number) => 1_700_000_000_000 + ms;
  const base = {
    traceId: "0af7651916cd43dd8448eb211c80319c",
    status: { code: "UNSET" as const },
    events: [],
    resource: {},
  };
  const spans: SpanRecord[] = [
    {
      ...base,
      spanId: "0000000000000001",
      name: "GET /api/user/{id}",
      kind: "SERVER",
      serviceName: "gateway",
      startMs: at(0),
      endMs: at(10),
      attributes: {},
    },
    ...[
      ["2", "3", "user.v1.UserService/FetchUser", "user-service"],
      ["4", "5", "payment.v1.PaymentService/GetBalance", "payment-service"],
    ].flatMap(([clientId, serverId, name, service]): SpanRecord[] => [
      {
        ...base,
        spanId: `000000000000000${clientId}`,
        parentSpanId: "0000000000000001",
        name: name as string,
        kind: "CLIENT",
        serviceName: "gateway",
        startMs: at(1),
        endMs: at(4),
        attributes: { "rpc.status_code": "OK", "app.user.id": 42 },
      },
      {
        ...base,
        spanId: `000000000000000${serverId}`,
        parentSpanId: `000000000000000${clientId}`,
        name: name as string,
        kind: "SERVER",
        serviceName: service as string,
        startMs: at(2),
        endMs: at(3),
        attributes: { "rpc.status_code": "OK", "app.user.id": 42 },
      },
    ]),
  ];

  it("pass on a correct trace", () => {
    expect(step).toBeDefined();
    const results = checkStepTrace(step as (typeof SCENARIO)[number], spans);
    expect(results.filter((r) => !r.ok)).toEqual([]);
  });

  it("fail when the server span is not the child of the client span", () => {
    const broken = spans.map((s) => (s.spanId === "0000000000000003" ? { ...s, parentSpanId: "0000000000000001" } : s));
    const failed = checkStepTrace(step as (typeof SCENARIO)[number], broken).filter((r) => !r.ok);
    expect(failed.map((r) => r.name)).toEqual([
      "profile: FetchUser server (user-service) is a child of FetchUser client, OK, app.user.id=42",
    ]);
    expect(failed[0]?.detail).toBe("its parent is gateway server GET /api/user/{id}");
  });

  it("fail when a span lacks an attribute recorded from an annotated field", () => {
    const broken = spans.map((s) =>
      s.spanId === "0000000000000003" ? { ...s, attributes: { "rpc.status_code": "OK" } } : s,
    );
    const failed = checkStepTrace(step as (typeof SCENARIO)[number], broken).filter((r) => !r.ok);
    expect(failed.map((r) => r.detail)).toEqual(["app.user.id is undefined"]);
  });

  it("fail when a span's parent is in another trace", () => {
    const broken = spans.map((s) => (s.spanId === "0000000000000003" ? { ...s, parentSpanId: "00000000000000ff" } : s));
    const failed = checkStepTrace(step as (typeof SCENARIO)[number], broken).filter((r) => !r.ok);
    expect(failed.map((r) => r.name)).toContain("profile: trace is connected across services");
  });
});
