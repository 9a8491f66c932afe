import type { HistogramPointRecord, MetricPointRecord } from "./metric-record.js";
import type { ScenarioStep } from "./scenario.js";
import type { SpanRecord } from "./span-record.js";
import type { CheckResult } from "./trace-checks.js";

/**
 * The demo's latency table: calls, errors and estimated p50/p95/p99 durations per RPC method, side
 * and service, read from the call-duration histograms that connect-otel records
 * (`rpc.client.call.duration`, `rpc.server.call.duration`) as the demo's OTLP receiver got them,
 * and the checks of those rows against the calls the spans (or the scenario) show. Pure functions;
 * the demo prints their results.
 *
 * ```
 * method                                  side    service          calls  errors       p50       p95       p99  status codes
 * user.v1.UserService/FetchUser           client  gateway              2       1   1.62 ms   2.10 ms   2.14 ms  NOT_FOUND 1, OK 1
 * user.v1.UserService/FetchUser           server  user-service         2       0   0.31 ms   0.52 ms   0.54 ms  NOT_FOUND 1, OK 1
 * ```
 *
 * Each series (one process, one metric, one attribute set) counts with its last cumulative point,
 * or with the sum of its delta points, so a periodic export during the run counts nothing twice.
 * A row merges the series of one method, side and service: different status codes, and the client
 * series of one method toward different servers.
 */

/** Which end of a call a row describes. */
export type Side = "client" | "server";

/** The stable call-duration histograms of semconv v1.45.0 that connect-otel records, by side. */
export const CALL_DURATION_METRICS: Readonly<Record<Side, string>> = {
  client: "rpc.client.call.duration",
  server: "rpc.server.call.duration",
};

/** The percentiles the table shows. */
export const PERCENTILES = [0.5, 0.95, 0.99] as const;

/** Calls of one method on one side, in one service. */
export interface CallCount {
  /** Fully-qualified method, e.g. `user.v1.UserService/FetchUser`. */
  method: string;
  side: Side;
  /** `service.name` of the process. */
  service: string;
  calls: number;
}

/** One row of the table. */
export interface LatencyRow extends CallCount {
  /** Calls whose data points carry `error.type` (client: every code but OK; server: server errors). */
  errors: number;
  /** Calls by `rpc.status_code`, `(none)` for points without one. */
  codes: Record<string, number>;
  /**
   * Estimated durations in ms at {@link PERCENTILES}, in that order; absent when there were no
   * calls or the series of the row have different bucket boundaries.
   */
  percentilesMs?: number[];
}

/** A histogram being summed up: bucket counts over common bounds, with the extremes seen. */
interface Buckets {
  count: number;
  /** The common bucket bounds; undefined once histograms with different bounds were merged. */
  bounds: number[] | undefined;
  counts: number[];
  min: number | undefined;
  max: number | undefined;
}

/**
 * Builds the table's rows from received metric data points: the points of
 * {@link CALL_DURATION_METRICS} (other metrics are ignored), grouped by `rpc.method`, side and
 * `service.name`.
 *
 * @param points every received data point, in arrival order (a later cumulative point of a series
 *   replaces an earlier one)
 * @returns rows sorted by method, side (client first) and service
 */
export function latencyRows(points: readonly MetricPointRecord[]): LatencyRow[] {
  const sideOf = new Map<string, Side>(
    (Object.entries(CALL_DURATION_METRICS) as [Side, string][]).map(([side, name]) => [name, side]),
  );
  // The points that count per series: the last cumulative one, or all deltas.
  const series = new Map<string, { point: HistogramPointRecord; buckets: Buckets }>();
  for (const point of points) {
    if (point.type !== "histogram" || !sideOf.has(point.metric)) {
      continue;
    }
    const key = JSON.stringify([
      point.metric,
      point.scope,
      point.unit,
      sortedEntries(point.resource),
      sortedEntries(point.attributes),
    ]);
    const known = series.get(key);
    if (point.temporality === "DELTA" && known !== undefined) {
      known.buckets = mergeBuckets(known.buckets, bucketsOf(point));
    } else if (known === undefined || point.timeMs >= known.point.timeMs) {
      series.set(key, { point, buckets: bucketsOf(point) });
    }
  }

  const rows = new Map<string, { row: LatencyRow; buckets: Buckets | undefined }>();
  for (const { point, buckets } of series.values()) {
    const side = sideOf.get(point.metric) as Side;
    const method = typeof point.attributes["rpc.method"] === "string" ? point.attributes["rpc.method"] : "(no method)";
    const key = callKey({ method, side, service: point.serviceName });
    let entry = rows.get(key);
    if (entry === undefined) {
      entry = {
        row: { method, side, service: point.serviceName, calls: 0, errors: 0, codes: {} },
        buckets: undefined,
      };
      rows.set(key, entry);
    }
    const inMs = scaledToMs(buckets, point.unit);
    entry.buckets = entry.buckets === undefined ? inMs : mergeBuckets(entry.buckets, inMs);
    entry.row.calls += buckets.count;
    if (point.attributes["error.type"] !== undefined) {
      entry.row.errors += buckets.count;
    }
    const code = point.attributes["rpc.status_code"];
    const codeName = typeof code === "string" ? code : "(none)";
    entry.row.codes[codeName] = (entry.row.codes[codeName] ?? 0) + buckets.count;
  }

  return [...rows.values()]
    .map(({ row, buckets }) => {
      if (buckets?.bounds !== undefined && buckets.count > 0) {
        const { bounds, counts, min, max } = buckets;
        const estimates = PERCENTILES.map((q) => histogramQuantile(q, bounds, counts, min, max));
        if (estimates.every((e): e is number => e !== undefined && Number.isFinite(e))) {
          row.percentilesMs = estimates;
        }
      }
      return row;
    })
    .sort(compareCalls);
}

/**
 * Estimates the `q` quantile of an explicit-bucket histogram: finds the bucket that holds the
 * rank `q × count` and interpolates linearly between its bounds, as if its values were spread
 * evenly. A bucket's range is narrowed to the observed `min`/`max` when given (so one call gives
 * its exact duration); the first bucket starts at 0 (durations are not negative), and the last,
 * unbounded one ends at `max` (or at its lower bound without one).
 *
 * @param q the quantile, in (0, 1]
 * @param bounds the upper bounds of all buckets but the last, ascending
 * @param counts the count of each bucket, `bounds.length + 1` of them
 * @returns the estimate, or undefined when the histogram is empty or its counts do not fit its bounds
 */
export function histogramQuantile(
  q: number,
  bounds: readonly number[],
  counts: readonly number[],
  min?: number,
  max?: number,
): number | undefined {
  const total = counts.reduce((a, b) => a + b, 0);
  if (total === 0 || counts.length !== bounds.length + 1) {
    return undefined;
  }
  const rank = q * total;
  let below = 0;
  for (let i = 0; i < counts.length; i++) {
    const inBucket = counts[i] ?? 0;
    if (inBucket === 0 || below + inBucket < rank) {
      below += inBucket;
      continue;
    }
    let lower = i === 0 ? Math.min(0, bounds[0] ?? 0) : (bounds[i - 1] as number);
    let upper = i < bounds.length ? (bounds[i] as number) : (max ?? lower);
    if (min !== undefined) lower = Math.max(lower, Math.min(min, upper));
    if (max !== undefined) upper = Math.min(upper, Math.max(max, lower));
    return lower + ((upper - lower) * (rank - below)) / inBucket;
  }
  return undefined;
}

/**
 * Renders the rows as a table with a two-line header that says where the numbers come from.
 *
 * @returns the table, each line ending in `\n`
 */
export function renderLatencyTable(rows: readonly LatencyRow[]): string {
  const header = ["method", "side", "service", "calls", "errors", ...PERCENTILES.map(percentileName), "status codes"];
  const lines = rows.map((r) => [
    r.method,
    r.side,
    r.service,
    String(r.calls),
    String(r.errors),
    ...PERCENTILES.map((_, i) => {
      const ms = r.percentilesMs?.[i];
      return ms === undefined ? "-" : `${ms.toFixed(2)} ms`;
    }),
    Object.entries(r.codes)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([code, n]) => `${code} ${n}`)
      .join(", "),
  ]);
  const widths = header.map((h, col) => Math.max(h.length, ...lines.map((l) => (l[col] as string).length)));
  // Left-aligned: method, side, service, status codes; numbers right-aligned.
  const left = new Set([0, 1, 2, header.length - 1]);
  const format = (cells: readonly string[]) =>
    `${cells
      .map((cell, col) => (left.has(col) ? cell.padEnd(widths[col] ?? 0) : cell.padStart(widths[col] ?? 0)))
      .join("  ")
      .trimEnd()}\n`;
  return [
    `RPC calls from the OTLP metrics ${CALL_DURATION_METRICS.client} and ${CALL_DURATION_METRICS.server}, per method, side and service\n`,
    `${PERCENTILES.map(percentileName).join("/")}: estimates from the histogram buckets, interpolated linearly within a bucket (narrowed to the observed min/max)\n`,
    format(header),
    ...lines.map(format),
  ].join("");
}

/**
 * The RPC calls the spans show: one per client or server span that carries a string `rpc.method`
 * (connect-otel's spans in the stable and dup conventions), by method, side and service.
 */
export function callsInSpans(spans: readonly SpanRecord[]): CallCount[] {
  const counts = new Map<string, CallCount>();
  for (const span of spans) {
    const method = span.attributes["rpc.method"];
    if (typeof method !== "string" || (span.kind !== "CLIENT" && span.kind !== "SERVER")) {
      continue;
    }
    const call: CallCount = {
      method,
      side: span.kind === "CLIENT" ? "client" : "server",
      service: span.serviceName,
      calls: 1,
    };
    const known = counts.get(callKey(call));
    if (known === undefined) counts.set(callKey(call), call);
    else known.calls++;
  }
  return [...counts.values()].sort(compareCalls);
}

/**
 * The RPC calls the scenario expects: one per expected client or server span named like a method
 * (`package.Service/Method`), for when the spans went elsewhere.
 */
export function callsInScenario(steps: readonly ScenarioStep[]): CallCount[] {
  const rpcName = /^[\w.]+\/\w+$/;
  const counts = new Map<string, CallCount>();
  for (const expected of steps.flatMap((s) => s.spans)) {
    if (!rpcName.test(expected.name) || (expected.kind !== "CLIENT" && expected.kind !== "SERVER")) {
      continue;
    }
    const call: CallCount = {
      method: expected.name,
      side: expected.kind === "CLIENT" ? "client" : "server",
      service: expected.service,
      calls: 1,
    };
    const known = counts.get(callKey(call));
    if (known === undefined) counts.set(callKey(call), call);
    else known.calls++;
  }
  return [...counts.values()].sort(compareCalls);
}

/**
 * Checks the table against the calls that happened: a row for every method, side and service in
 * `expected` with as many calls, and no row beyond them (untraced methods, such as the health
 * checks, record no metrics either).
 *
 * @param expected from {@link callsInSpans} or {@link callsInScenario}
 * @param source what `expected` was read from, for the check names: `spans`, `scenario`
 */
export function checkCallMetrics(
  rows: readonly LatencyRow[],
  expected: readonly CallCount[],
  source: string,
): CheckResult[] {
  const results: CheckResult[] = [];
  results.push(
    check(
      `metrics: ${CALL_DURATION_METRICS.client} and ${CALL_DURATION_METRICS.server} received`,
      rows.length > 0,
      "no data point of either",
    ),
  );
  const byKey = new Map(rows.map((r) => [callKey(r), r]));
  for (const call of expected) {
    const row = byKey.get(callKey(call));
    const name = `metrics: ${describeCall(call)} has a row with the ${call.calls} call${call.calls === 1 ? "" : "s"} of the ${source}`;
    if (row === undefined) {
      results.push(check(name, false, `missing: no ${CALL_DURATION_METRICS[call.side]} data point for it`));
    } else {
      results.push(check(name, row.calls === call.calls, `the metrics count ${row.calls}`));
    }
  }
  const expectedKeys = new Set(expected.map(callKey));
  const extra = rows.filter((r) => !expectedKeys.has(callKey(r)));
  results.push(
    check(
      `metrics: no row without calls in the ${source}`,
      extra.length === 0,
      extra.map((r) => `${describeCall(r)} with ${r.calls}`).join(", "),
    ),
  );
  return results;
}

function percentileName(q: number): string {
  return `p${Math.round(q * 100)}`;
}

function describeCall(call: CallCount): string {
  return `${call.method} ${call.side} (${call.service})`;
}

function callKey(call: Pick<CallCount, "method" | "side" | "service">): string {
  return JSON.stringify([call.method, call.side, call.service]);
}

function compareCalls(a: CallCount, b: CallCount): number {
  const sideOrder = (s: Side) => (s === "client" ? 0 : 1);
  return (
    compareStrings(a.method, b.method) || sideOrder(a.side) - sideOrder(b.side) || compareStrings(a.service, b.service)
  );
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function check(name: string, ok: boolean, detail: string): CheckResult {
  return ok || detail === "" ? { ok, name } : { ok, name, detail };
}

function sortedEntries(attributes: Readonly<Record<string, unknown>>): [string, unknown][] {
  return Object.entries(attributes).sort(([a], [b]) => compareStrings(a, b));
}

function bucketsOf(point: HistogramPointRecord): Buckets {
  const fits = point.bucketCounts.length === point.explicitBounds.length + 1;
  return {
    count: point.count,
    bounds: fits ? point.explicitBounds : undefined,
    counts: fits ? point.bucketCounts : [],
    min: point.min,
    max: point.max,
  };
}

function mergeBuckets(a: Buckets, b: Buckets): Buckets {
  const same =
    a.bounds !== undefined &&
    b.bounds !== undefined &&
    a.bounds.length === b.bounds.length &&
    a.bounds.every((bound, i) => bound === b.bounds?.[i]);
  return {
    count: a.count + b.count,
    bounds: same ? a.bounds : undefined,
    counts: same ? a.counts.map((n, i) => n + (b.counts[i] ?? 0)) : [],
    min: extreme(Math.min, a, b, "min"),
    max: extreme(Math.max, a, b, "max"),
  };
}

/** The min or max of two histograms; an empty one has none to contribute. */
function extreme(pick: (x: number, y: number) => number, a: Buckets, b: Buckets, key: "min" | "max") {
  const values = [a, b].filter((h) => h.count > 0).map((h) => h[key]);
  if (values.length === 0 || values.some((v) => v === undefined)) {
    return undefined;
  }
  return (values as number[]).reduce((x, y) => pick(x, y));
}

/** The histogram with its bounds and extremes in ms, from a unit of `s` (the stable one) or `ms`. */
function scaledToMs(buckets: Buckets, unit: string): Buckets {
  const factor = unit === "ms" ? 1 : 1000;
  const scale = (v: number | undefined) => (v === undefined ? undefined : v * factor);
  return {
    ...buckets,
    bounds: buckets.bounds?.map((b) => b * factor),
    min: scale(buckets.min),
    max: scale(buckets.max),
  };
}
