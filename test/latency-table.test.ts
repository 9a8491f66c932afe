import { describe, expect, it } from "vitest";
import {
  CALL_DURATION_METRICS,
  callsInScenario,
  callsInSpans,
  checkCallMetrics,
  histogramQuantile,
  latencyRows,
  renderLatencyTable,
} from "../examples/latency-table.js";
import { metricsFromOtlpJson } from "../examples/metric-record.js";
import { SCENARIO, SERVICES } from "../examples/scenario.js";
import type { SpanRecord } from "../examples/span-record.js";

// The demo's latency table and its checks on hand-made OTLP/JSON metric exports, decoded as the
// receiver decodes them: bucket interpolation, last cumulative point per series, delta sums,
// errors by error.type, and the checks failing when a method the spans show has no row.

/** The advised buckets of the stable call-duration histograms, in s. */
const BOUNDS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10];
const T0 = 1_700_000_000_000_000_000n;
const FETCH_USER = "user.v1.UserService/FetchUser";
const GET_BALANCE = "payment.v1.PaymentService/GetBalance";

/** An OTLP/JSON histogram data point with its durations (s) put into {@link BOUNDS}. */
function point(attrs: Record<string, string>, durations: number[], atNs = T0 + 1_000_000n) {
  const bucketCounts = new Array(BOUNDS.length + 1).fill(0);
  for (const d of durations) {
    const i = BOUNDS.findIndex((b) => d <= b);
    bucketCounts[i === -1 ? BOUNDS.length : i]++;
  }
  return {
    attributes: Object.entries(attrs).map(([key, value]) => ({ key, value: { stringValue: value } })),
    startTimeUnixNano: String(T0),
    timeUnixNano: String(atNs),
    count: String(durations.length), // 64-bit integers come as strings or numbers
    sum: durations.reduce((a, b) => a + b, 0),
    min: Math.min(...durations),
    max: Math.max(...durations),
    bucketCounts,
    explicitBounds: BOUNDS,
  };
}

/** One process's OTLP/JSON `ExportMetricsServiceRequest` of the call-duration histograms. */
function exportOf(
  service: string,
  metrics: { side: "client" | "server"; points: ReturnType<typeof point>[] }[],
  temporality: number | string = 2, // AGGREGATION_TEMPORALITY_CUMULATIVE
) {
  return {
    resourceMetrics: [
      {
        resource: { attributes: [{ key: "service.name", value: { stringValue: service } }] },
        scopeMetrics: [
          {
            scope: { name: "connect-otel", version: "0.1.0" },
            metrics: [
              // Another metric of the same process, which the table leaves out.
              {
                name: "http.server.request.duration",
                unit: "s",
                histogram: { aggregationTemporality: 2, dataPoints: [point({}, [0.002])] },
              },
              ...metrics.map(({ side, points }) => ({
                name: CALL_DURATION_METRICS[side],
                unit: "s",
                histogram: { aggregationTemporality: temporality, dataPoints: points },
              })),
            ],
          },
        ],
      },
    ],
  };
}

const ok = (method: string) => ({ "rpc.system.name": "grpc", "rpc.method": method, "rpc.status_code": "OK" });
const failed = (method: string, code: string) => ({ ...ok(method), "rpc.status_code": code, "error.type": code });

/** What the demo's three processes would export for a profile and an unknown user. */
function demoExports() {
  return [
    exportOf("gateway", [
      {
        side: "client",
        points: [
          point(ok(FETCH_USER), [0.004]),
          point(failed(FETCH_USER, "NOT_FOUND"), [0.003]),
          point(ok(GET_BALANCE), [0.006]),
        ],
      },
    ]),
    exportOf("user-service", [
      {
        side: "server",
        points: [point(ok(FETCH_USER), [0.001]), point({ ...ok(FETCH_USER), "rpc.status_code": "NOT_FOUND" }, [0.002])],
      },
    ]),
    exportOf("payment-service", [{ side: "server", points: [point(ok(GET_BALANCE), [0.0005])] }]),
  ];
}

function rpcSpan(method: string, kind: "CLIENT" | "SERVER", serviceName: string, n: number): SpanRecord {
  return {
    traceId: "0af7651916cd43dd8448eb211c80319c",
    spanId: n.toString(16).padStart(16, "0"),
    name: method,
    kind,
    startMs: 0,
    endMs: 1,
    status: { code: "UNSET" },
    attributes: { "rpc.method": method },
    events: [],
    serviceName,
    resource: {},
  };
}

/** The spans of the same calls, and the gateway's HTTP spans, which carry no `rpc.method`. */
const SPANS: SpanRecord[] = [
  { ...rpcSpan("GET /api/user/{id}", "SERVER", "gateway", 1), attributes: {} },
  rpcSpan(FETCH_USER, "CLIENT", "gateway", 2),
  rpcSpan(FETCH_USER, "CLIENT", "gateway", 3),
  rpcSpan(FETCH_USER, "SERVER", "user-service", 4),
  rpcSpan(FETCH_USER, "SERVER", "user-service", 5),
  rpcSpan(GET_BALANCE, "CLIENT", "gateway", 6),
  rpcSpan(GET_BALANCE, "SERVER", "payment-service", 7),
];

describe("histogramQuantile", () => {
  it("interpolates linearly within the bucket that holds the rank", () => {
    // 10 values in (10, 20]: p50 is halfway through the bucket.
    expect(histogramQuantile(0.5, [10, 20, 30], [0, 10, 0, 0])).toBeCloseTo(15);
    expect(histogramQuantile(0.95, [10, 20, 30], [0, 10, 0, 0])).toBeCloseTo(19.5);
    // 4 below 10, 4 in (10, 20]: p75 is the 6th value, halfway into the second bucket.
    expect(histogramQuantile(0.75, [10, 20, 30], [4, 4, 0, 0])).toBeCloseTo(15);
    // The first bucket starts at 0.
    expect(histogramQuantile(0.5, [10, 20], [2, 0, 0])).toBeCloseTo(5);
  });

  it("narrows the bucket to the observed min and max, so one value is exact", () => {
    expect(histogramQuantile(0.5, BOUNDS, point({}, [0.3017]).bucketCounts, 0.3017, 0.3017)).toBeCloseTo(0.3017, 10);
    expect(histogramQuantile(0.5, [10, 20], [0, 2, 0], 12, 14)).toBeCloseTo(13);
    // The last, unbounded bucket ends at the max.
    expect(histogramQuantile(0.5, [10, 20], [0, 0, 2], undefined, 40)).toBeCloseTo(30);
  });

  it("gives undefined for an empty histogram or counts that do not fit the bounds", () => {
    expect(histogramQuantile(0.5, [10, 20], [0, 0, 0])).toBeUndefined();
    expect(histogramQuantile(0.5, [10, 20], [1, 1])).toBeUndefined();
  });
});

describe("latencyRows", () => {
  it("has a row per method, side and service with calls, errors, codes and percentiles", () => {
    const rows = latencyRows(demoExports().flatMap(metricsFromOtlpJson));
    expect(rows.map((r) => [r.method, r.side, r.service, r.calls, r.errors, r.codes])).toEqual([
      [GET_BALANCE, "client", "gateway", 1, 0, { OK: 1 }],
      [GET_BALANCE, "server", "payment-service", 1, 0, { OK: 1 }],
      [FETCH_USER, "client", "gateway", 2, 1, { NOT_FOUND: 1, OK: 1 }],
      // NOT_FOUND is no server error: that point carries no error.type.
      [FETCH_USER, "server", "user-service", 2, 0, { NOT_FOUND: 1, OK: 1 }],
    ]);
    // ms, from s; two values 3 and 4 ms in one bucket: p50 halfway between them.
    const fetchClient = rows.find((r) => r.method === FETCH_USER && r.side === "client");
    expect(fetchClient?.percentilesMs?.[0]).toBeCloseTo(3.5);
    expect(fetchClient?.percentilesMs?.[2]).toBeCloseTo(3.99);
    expect(rows.find((r) => r.method === GET_BALANCE && r.side === "client")?.percentilesMs?.[0]).toBeCloseTo(6);
  });

  it("counts a cumulative series with its last point, not once per export", () => {
    const first = exportOf("gateway", [{ side: "client", points: [point(ok(FETCH_USER), [0.004], T0 + 1_000_000n)] }]);
    const last = exportOf("gateway", [
      { side: "client", points: [point(ok(FETCH_USER), [0.004, 0.02], T0 + 2_000_000n)] },
    ]);
    // Arrival order does not matter; the point's time does.
    for (const order of [
      [first, last],
      [last, first],
    ]) {
      const rows = latencyRows(order.flatMap(metricsFromOtlpJson));
      expect(rows.map((r) => [r.method, r.calls])).toEqual([[FETCH_USER, 2]]);
    }
  });

  it("sums the points of a delta series", () => {
    const deltas = [
      exportOf("gateway", [{ side: "client", points: [point(ok(FETCH_USER), [0.004], T0 + 1n)] }], 1),
      exportOf("gateway", [{ side: "client", points: [point(ok(FETCH_USER), [0.02, 0.03], T0 + 2n)] }], 1),
    ];
    const [row] = latencyRows(deltas.flatMap(metricsFromOtlpJson));
    expect(row?.calls).toBe(3);
    expect(row?.percentilesMs?.[0]).toBeGreaterThan(10);
  });

  it("keeps one process's series apart from another's with the same attributes", () => {
    const rows = latencyRows(
      [
        exportOf("user-service", [{ side: "client", points: [point(ok(GET_BALANCE), [0.01])] }]),
        exportOf("gateway", [{ side: "client", points: [point(ok(GET_BALANCE), [0.02])] }]),
      ].flatMap(metricsFromOtlpJson),
    );
    expect(rows.map((r) => [r.service, r.calls])).toEqual([
      ["gateway", 1],
      ["user-service", 1],
    ]);
  });

  it("renders a header that says the percentiles are bucket estimates, and a line per row", () => {
    const table = renderLatencyTable(latencyRows(demoExports().flatMap(metricsFromOtlpJson)));
    const lines = table.trimEnd().split("\n");
    expect(lines[0]).toContain("rpc.client.call.duration and rpc.server.call.duration");
    expect(lines[1]).toMatch(/^p50\/p95\/p99: estimates from the histogram buckets, interpolated linearly/);
    expect(lines[2]).toMatch(/^method +side +service +calls +errors +p50 +p95 +p99 +status codes$/);
    expect(lines.slice(3)).toHaveLength(4);
    expect(table).toMatch(/user\.v1\.UserService\/FetchUser +client +gateway +2 +1 +3\.50 ms .* NOT_FOUND 1, OK 1\n/);
  });
});

describe("checkCallMetrics", () => {
  it("passes when every method and side of the spans has a row with as many calls", () => {
    const rows = latencyRows(demoExports().flatMap(metricsFromOtlpJson));
    const results = checkCallMetrics(rows, callsInSpans(SPANS), "spans");
    expect(results.filter((r) => !r.ok)).toEqual([]);
    expect(results).toHaveLength(1 + 4 + 1);
  });

  it("fails, naming it, when a method of the spans is missing from the metrics", () => {
    // payment-service exported nothing: its GetBalance server calls are missing.
    const [gateway, user] = demoExports();
    const rows = latencyRows([gateway, user].flatMap(metricsFromOtlpJson));
    const failures = checkCallMetrics(rows, callsInSpans(SPANS), "spans").filter((r) => !r.ok);
    expect(failures).toEqual([
      {
        ok: false,
        name: "metrics: payment.v1.PaymentService/GetBalance server (payment-service) has a row with the 1 call of the spans",
        detail: "missing: no rpc.server.call.duration data point for it",
      },
    ]);
  });

  it("fails when the counts differ, and on a row with no calls in the spans", () => {
    const rows = latencyRows(demoExports().flatMap(metricsFromOtlpJson));
    const spans = SPANS.filter((s) => s.spanId !== "0000000000000003" && s.name !== GET_BALANCE);
    const failures = checkCallMetrics(rows, callsInSpans(spans), "spans").filter((r) => !r.ok);
    expect(failures.map((r) => [r.name, r.detail])).toEqual([
      [
        "metrics: user.v1.UserService/FetchUser client (gateway) has a row with the 1 call of the spans",
        "the metrics count 2",
      ],
      [
        "metrics: no row without calls in the spans",
        "payment.v1.PaymentService/GetBalance client (gateway) with 1, payment.v1.PaymentService/GetBalance server (payment-service) with 1",
      ],
    ]);
  });

  it("fails when no call-duration metric arrived at all", () => {
    const failures = checkCallMetrics([], callsInSpans(SPANS), "spans").filter((r) => !r.ok);
    expect(failures[0]?.name).toBe("metrics: rpc.client.call.duration and rpc.server.call.duration received");
    expect(failures).toHaveLength(1 + 4);
  });
});

describe("callsInScenario", () => {
  it("counts the RPC spans the demo's scenario expects, leaving out the HTTP ones", () => {
    const calls = callsInScenario(SCENARIO);
    expect(calls.find((c) => c.method === GET_BALANCE && c.side === "server")).toEqual({
      method: GET_BALANCE,
      side: "server",
      service: SERVICES.payment,
      calls: 2,
    });
    expect(calls.every((c) => c.method.includes("/") && !c.method.includes(" "))).toBe(true);
    expect(calls.reduce((n, c) => n + c.calls, 0)).toBe(
      SCENARIO.flatMap((s) => s.spans).filter((s) => !s.id.startsWith("http")).length,
    );
  });
});
