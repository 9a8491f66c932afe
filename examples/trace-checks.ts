import type { ExpectedSpan, ScenarioStep } from "./scenario.js";
import { rpcStatusCode, type SpanRecord } from "./span-record.js";
import { groupByTrace } from "./waterfall.js";

/**
 * Checks of the received spans against the scenario: one trace per step, each connected (one
 * root, no span whose parent is missing), holding exactly the expected spans with the expected
 * parents and status codes. Pure functions; the demo prints their results.
 */

/** The outcome of one check. */
export interface CheckResult {
  ok: boolean;
  /** What was checked, e.g. `profile: FetchUser server is a child of FetchUser client`. */
  name: string;
  /** Why it failed; absent when ok. */
  detail?: string;
}

/**
 * Finds the trace of a scenario step: the one whose root is the gateway's HTTP server span for
 * the step's method, path and query (`http.request.method`, `url.path`, `url.query` of the HTTP
 * instrumentation). With `queryRecorded` false (Go's otelhttp records no `url.query`), a root
 * without `url.query` matches any query.
 *
 * @returns the spans of that trace, or undefined when none matches
 */
export function findStepTrace(
  traces: readonly SpanRecord[][],
  step: ScenarioStep,
  gatewayService: string,
  queryRecorded = true,
): SpanRecord[] | undefined {
  const url = new URL(step.path, "http://gateway");
  const query = url.search.replace(/^\?/, "");
  const queryMatches = (recorded: unknown): boolean =>
    recorded === undefined ? !queryRecorded || query === "" : recorded === query;
  return traces.find((spans) =>
    spans.some(
      (s) =>
        s.parentSpanId === undefined &&
        s.kind === "SERVER" &&
        s.serviceName === gatewayService &&
        s.attributes["http.request.method"] === step.method &&
        s.attributes["url.path"] === url.pathname &&
        queryMatches(s.attributes["url.query"]),
    ),
  );
}

/**
 * Checks all received spans against the scenario.
 *
 * @param spans every span received
 * @param steps the scenario
 * @param gatewayService `service.name` of the gateway
 */
export function checkScenarioTraces(
  spans: readonly SpanRecord[],
  steps: readonly ScenarioStep[],
  gatewayService: string,
): CheckResult[] {
  const traces = groupByTrace(spans);
  const results: CheckResult[] = [
    result(
      `one trace per scenario step (${steps.length})`,
      traces.length === steps.length,
      `received ${traces.length} traces: ${traces.map(describeRoots).join("; ")}`,
    ),
  ];
  const leaks = spans.filter(recordsEmail);
  results.push(
    result(
      "no span records an email address (fields marked debug_redact)",
      leaks.length === 0,
      `found in ${leaks.map(describe).join(", ")}`,
    ),
  );
  for (const step of steps) {
    const trace = findStepTrace(traces, step, gatewayService);
    if (trace === undefined) {
      results.push(
        result(
          `${step.name}: trace of ${step.method} ${step.path} received`,
          false,
          "no trace has that request as its root",
        ),
      );
      continue;
    }
    results.push(...checkStepTrace(step, trace));
  }
  return results;
}

/**
 * Checks the trace of one step: connected, exactly the expected spans, parents and codes.
 *
 * @param statusOf reads the RPC status code that `rpcStatus` expectations are checked against;
 *   default {@link rpcStatusCode}, what connect-otel records (other instrumentations record theirs
 *   elsewhere)
 */
export function checkStepTrace(
  step: ScenarioStep,
  trace: readonly SpanRecord[],
  statusOf: (span: SpanRecord) => string | undefined = rpcStatusCode,
): CheckResult[] {
  const results: CheckResult[] = [];
  const ids = new Set(trace.map((s) => s.spanId));
  const roots = trace.filter((s) => s.parentSpanId === undefined);
  const orphans = trace.filter((s) => s.parentSpanId !== undefined && !ids.has(s.parentSpanId));
  results.push(
    result(
      `${step.name}: trace is connected across services`,
      roots.length === 1 && orphans.length === 0,
      `${roots.length} roots, ${orphans.length} spans with a parent outside the trace (${orphans.map(describe).join(", ")})`,
    ),
  );
  results.push(
    result(
      `${step.name}: trace has ${step.spans.length} spans`,
      trace.length === step.spans.length,
      `it has ${trace.length}: ${trace.map(describe).join(", ")}`,
    ),
  );

  const assigned = new Map<string, SpanRecord>();
  for (const expected of step.spans) {
    const candidates = trace
      .filter((s) => s.serviceName === expected.service && s.kind === expected.kind && s.name === expected.name)
      .filter((s) => ![...assigned.values()].includes(s))
      .sort((a, b) => a.startMs - b.startMs);
    const parent = expected.parent === undefined ? undefined : assigned.get(expected.parent);
    const match = candidates.find((s) =>
      expected.parent === undefined ? s.parentSpanId === undefined : s.parentSpanId === parent?.spanId,
    );
    const relation = expected.parent === undefined ? "is the root" : `is a child of ${expected.parent}`;
    const label = [`${step.name}: ${expected.id} (${expected.service}) ${relation}`, ...expectationsOf(expected)].join(
      ", ",
    );
    if (match === undefined) {
      const detail =
        candidates.length === 0
          ? `no ${expected.service} ${expected.kind.toLowerCase()} span ${expected.name}`
          : `its parent is ${describeParent(candidates[0] as SpanRecord, trace)}`;
      results.push(result(label, false, detail));
      continue;
    }
    assigned.set(expected.id, match);
    const problems = problemsOf(expected, match, statusOf);
    results.push(result(label, problems.length === 0, problems.join(", ")));
  }
  return results;
}

/** What a span is expected to carry besides its parent, e.g. `NOT_FOUND`, `status ERROR`. */
function expectationsOf(expected: ExpectedSpan): string[] {
  const out: string[] = [];
  if (expected.rpcStatus !== undefined) {
    out.push(allowedCodes(expected.rpcStatus).join(" or "));
  }
  if (expected.status !== undefined) {
    out.push(`status ${expected.status}`);
  }
  if (expected.durationMs !== undefined) {
    out.push(`lasting ${expected.durationMs.min}..${expected.durationMs.max} ms`);
  }
  for (const [key, value] of Object.entries(expected.attributes ?? {})) {
    out.push(`${key}=${JSON.stringify(value)}`);
  }
  return out;
}

/** How a matched span differs from {@link expectationsOf}; empty when it does not. */
function problemsOf(
  expected: ExpectedSpan,
  span: SpanRecord,
  statusOf: (span: SpanRecord) => string | undefined,
): string[] {
  const problems: string[] = [];
  const code = statusOf(span);
  if (expected.rpcStatus !== undefined && (code === undefined || !allowedCodes(expected.rpcStatus).includes(code))) {
    problems.push(`rpc status code is ${JSON.stringify(code)}`);
  }
  if (expected.status !== undefined && span.status.code !== expected.status) {
    problems.push(`status is ${span.status.code}`);
  }
  const duration = span.endMs - span.startMs;
  if (
    expected.durationMs !== undefined &&
    !(duration >= expected.durationMs.min && duration <= expected.durationMs.max)
  ) {
    problems.push(`it lasts ${duration.toFixed(1)} ms`);
  }
  for (const [key, value] of Object.entries(expected.attributes ?? {})) {
    if (JSON.stringify(span.attributes[key]) !== JSON.stringify(value)) {
      problems.push(`${key} is ${JSON.stringify(span.attributes[key])}`);
    }
  }
  return problems;
}

function allowedCodes(rpcStatus: string | readonly string[]): readonly string[] {
  return typeof rpcStatus === "string" ? [rpcStatus] : rpcStatus;
}

/**
 * True if an attribute of the span or of one of its events holds an email address of the course
 * system (all at example.com, see ./course-data.ts and the scenario).
 */
function recordsEmail(span: SpanRecord): boolean {
  const email = /[\w.+-]+@example\.com/i;
  const values = [span.attributes, ...span.events.map((e) => e.attributes)].flatMap((attrs) =>
    Object.values(attrs).flat(),
  );
  return values.some((v) => typeof v === "string" && email.test(v));
}

function result(name: string, ok: boolean, detail?: string): CheckResult {
  return ok || detail === undefined || detail === "" ? { ok, name } : { ok, name, detail };
}

function describe(span: SpanRecord): string {
  return `${span.serviceName} ${span.kind.toLowerCase()} ${span.name}`;
}

function describeParent(span: SpanRecord, trace: readonly SpanRecord[]): string {
  if (span.parentSpanId === undefined) {
    return "none (root)";
  }
  const parent = trace.find((s) => s.spanId === span.parentSpanId);
  return parent === undefined ? `${span.parentSpanId} (not received)` : describe(parent);
}

function describeRoots(trace: readonly SpanRecord[]): string {
  const roots = trace.filter((s) => s.parentSpanId === undefined);
  const path = roots.map(
    (r) => `${describe(r)}${typeof r.attributes["url.path"] === "string" ? ` ${r.attributes["url.path"]}` : ""}`,
  );
  return path.length > 0 ? path.join(" + ") : `${trace.length} spans without a root`;
}
