import type { MetricPointRecord } from "./metric-record.js";
import type { OtlpReceiver } from "./otlp-receiver.js";
import type { ServiceProcess } from "./processes.js";
import type { ScenarioStep } from "./scenario.js";
import type { SpanRecord } from "./span-record.js";
import type { CheckResult } from "./trace-checks.js";

/**
 * What the demos (./demo.ts, ./polyglot/demo.ts) do with a scenario and its telemetry: send each
 * step to the gateway with plain `fetch` (untraced) and print a line per step, wait for the spans
 * and metrics to arrive, print the checks.
 */

/**
 * Sends one scenario request to the gateway and prints `✓`/`✗`, the request, the answer's status
 * and how long it took.
 *
 * @param timeoutMs bound of the whole request, in ms
 * @returns a problem description, or undefined when the step passed
 */
async function runStep(gatewayUrl: string, step: ScenarioStep, timeoutMs: number): Promise<string | undefined> {
  const started = performance.now();
  let status: number;
  let body: unknown;
  try {
    const init: RequestInit = { method: step.method, signal: AbortSignal.timeout(timeoutMs) };
    if (step.body !== undefined) {
      init.body = JSON.stringify(step.body);
      init.headers = { "content-type": "application/json" };
    }
    const res = await fetch(gatewayUrl + step.path, init);
    status = res.status;
    const text = await res.text();
    try {
      body = JSON.parse(text);
    } catch {
      body = text;
    }
  } catch (err) {
    const problem = `request failed: ${err instanceof Error ? err.message : String(err)}`;
    console.log(`✗ ${step.name.padEnd(14)} ${step.method} ${step.path} → ${problem}`);
    return problem;
  }
  const ms = (performance.now() - started).toFixed(0);
  const problem =
    status !== step.expectStatus
      ? `status ${status}, expected ${step.expectStatus}: ${JSON.stringify(body)}`
      : step.checkBody?.(body);
  console.log(
    `${problem === undefined ? "✓" : "✗"} ${step.name.padEnd(14)} ${step.method} ${step.path} → ${status} (${ms} ms)${problem ? `: ${problem}` : ""}`,
  );
  return problem;
}

/**
 * Sends the scenario's steps to the gateway one after the other (see {@link runStep}).
 * @returns a problem per failed step, named after it
 */
export async function runSteps(
  gatewayUrl: string,
  steps: readonly ScenarioStep[],
  timeoutMs: number,
): Promise<string[]> {
  const problems: string[] = [];
  for (const step of steps) {
    const problem = await runStep(gatewayUrl, step, timeoutMs);
    if (problem !== undefined) problems.push(`${step.name}: ${problem}`);
  }
  return problems;
}

/**
 * Stops the processes with SIGTERM, on which each stops serving and flushes its telemetry first.
 * @returns a problem per process that did not exit 0
 */
export async function stopProcesses(processes: readonly ServiceProcess[]): Promise<string[]> {
  const codes = await Promise.all(processes.map((p) => p.stop()));
  return codes.flatMap((code, i) => (code === 0 ? [] : [`${processes[i]?.name} exited with ${code} after SIGTERM`]));
}

/** Waits until the receiver's span count stops growing for 300 ms, at most `timeoutMs`. */
export async function settledSpans(from: OtlpReceiver, timeoutMs: number): Promise<SpanRecord[]> {
  await settled(() => from.spans().length, timeoutMs);
  return from.spans();
}

/** Waits until the receiver's metric data point count stops growing for 300 ms, at most `timeoutMs`. */
export async function settledMetrics(from: OtlpReceiver, timeoutMs: number): Promise<MetricPointRecord[]> {
  await settled(() => from.metrics().length, timeoutMs);
  return from.metrics();
}

/** Waits until `count()` is above 0 and the same as 300 ms before, at most `timeoutMs`. */
async function settled(count: () => number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = -1;
  while (Date.now() < deadline) {
    const now = count();
    if (now === last && now > 0) {
      return;
    }
    last = now;
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
}

/**
 * Prints one line per check and a summary line.
 *
 * @param what the summary's name for the checks, e.g. `trace checks` (the default)
 * @returns the number of failed checks
 */
export function printChecks(results: readonly CheckResult[], what = "trace checks"): number {
  for (const r of results) {
    console.log(`${r.ok ? "✓" : "✗"} ${r.name}${r.detail !== undefined ? `: ${r.detail}` : ""}`);
  }
  const failed = results.filter((r) => !r.ok).length;
  console.log(`\n${what}: ${results.length - failed} of ${results.length} passed`);
  return failed;
}

/** What a demo holds while it runs, for {@link runToEnd} to release. */
export interface DemoRun {
  readonly processes: readonly ServiceProcess[];
  readonly receiver: OtlpReceiver | undefined;
  readonly watchdog: ReturnType<typeof setTimeout>;
  /** Problems found so far; the body adds to it. */
  readonly failures: string[];
  /** True if the processes' output was printed as it came (`DEMO_VERBOSE=1`). */
  readonly verbose: boolean;
}

/**
 * Runs a demo's body, then stops its processes and receiver and its watchdog, whatever happened;
 * prints `demo ok`, or the problems (and the processes' output unless it was printed already) and
 * sets exit code 1. A body that throws counts as one problem.
 */
export async function runToEnd(run: DemoRun, body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (err) {
    run.failures.push(err instanceof Error ? err.message : String(err));
  } finally {
    await Promise.all(run.processes.map((p) => p.stop()));
    await run.receiver?.close();
    clearTimeout(run.watchdog);
  }
  const { failures } = run;
  if (failures.length === 0) {
    console.log("demo ok");
    return;
  }
  console.log(`demo failed: ${failures.length} problem${failures.length === 1 ? "" : "s"}`);
  for (const f of failures) console.log(`  ✗ ${f}`);
  if (!run.verbose) {
    for (const p of run.processes) console.error(p.output());
  }
  process.exitCode = 1;
}
