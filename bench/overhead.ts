/**
 * What users pay for tracing: throughput of the generated traced client and service wrapper
 * against untraced connect, and of grpc-js with `@opentelemetry/instrumentation-grpc` against
 * untraced grpc-js, measured in one process, the systems alternating.
 *
 * Every system is a client and a server in this process talking gRPC over h2c on 127.0.0.1, each
 * pair on its own port; the traced ones run the SDK pipeline a production user has (see
 * support/sdk-pipeline.ts: a BatchSpanProcessor whose exporter encodes OTLP protobuf and drops it,
 * the AsyncLocalStorage context manager, the W3C propagator). Systems (`--systems`):
 *
 * - `connect`: connect's `createClient` and the plain implementation; the baseline of the connect rows;
 * - `connect-2`: a second, identical untraced pair: its ratio to `connect` is the run's noise floor;
 * - `traced`: `createTracedUserServiceClient` and `traceUserService` with default options (every
 *   span recorded, message events on for all kinds, metrics on the global meter provider, which
 *   is the API's no-op one here: spans only);
 * - `events-off`: as `traced`, with `messageEvents: "none"`;
 * - `sampled-out`: as `traced`, with a parent-based sampler of ratio 0 (nothing recorded);
 * - `metrics`: as `traced`, plus a `meterProvider` with a PeriodicExportingMetricReader whose
 *   exporter encodes OTLP protobuf and drops it; also compared with `traced` (metrics÷traced);
 * - `floor`: untraced connect with the hand-written interceptors of support/floor-interceptors.ts,
 *   which produce the spans `traced` produces and do nothing else (checked before the run); also
 *   compared with `traced` (traced÷floor: what the runtime adds to the cost of its spans);
 * - `floor-sampled-out`: as `floor`, sampled out like `sampled-out` (sampled-out÷floor-sampled-out);
 * - `grpc-js`: grpc-js 1.x with the schema loaded by proto-loader; the baseline of the next;
 * - `grpc-js+otel`: the same with `@opentelemetry/instrumentation-grpc`;
 * - `noop-exporter` (not in the default set): as `traced`, but its exporter drops the spans without
 *   encoding them, the pipeline of the repository's first benchmark.
 *
 * `--transport memory` runs the connect systems over connect's in-memory router transport instead of
 * h2c (the Connect protocol, no sockets, no HTTP/2; grpc-js systems left out): the instrumentation's
 * own cost, without the transport's noise.
 *
 * Scenarios (`--scenarios`): `unary` (FetchUser, one call at a time), `unary-concurrent`
 * (`--concurrency` calls in flight, default 32), `stream-100` and `stream-10000` (StreamUsers of 100
 * and 10,000 messages), `bidi` (a Chat call of 100 messages each way, sent as fast as the stream
 * takes them).
 *
 * How a number is made: for each scenario, every system first runs `--warmup-ms` untimed; then
 * come `--rounds` rounds, in each of which every system runs the scenario for `--duration-ms`, cut
 * into slices of about `--slice-ms` that interleave the systems. The order of the systems in
 * successive slices follows the rows of a Williams design, so that every system runs in every
 * position and after every other system equally often (`--order fixed` keeps one order: the
 * systems then run as blocks, as in the first benchmark, to compare the two). A slice ends when the
 * call under way at its deadline has completed and the system's span and metric pipelines are
 * flushed (timed: a throughput run pays the exporter). No garbage collection is forced: measured
 * here, a `gc()` before each slice raised the CPU time per call of the slice after it by 23–68%.
 * Per round, each system's throughput is divided by its own stack's baseline in the same round;
 * the report gives the median of these ratios over the rounds and their spread (min–max),
 * and the added µs per call or message, 1e6/throughput(system) − 1e6/throughput(baseline) (per call
 * of a one-at-a-time scenario this is the added mean latency; with calls in flight, the added
 * process time per call). Beside it: the same ratio and difference in process CPU time per unit
 * (what a busy machine disturbs least), GC pauses per unit, and, for one-at-a-time scenarios, the
 * added p50, mean and p99 latency of a call.
 *
 * Run: `npm run bench` (also runs plugin-start.ts and long-stream.ts), or alone
 * `node --import tsx bench/overhead.ts [--rounds 8] [--duration-ms 500] [--slice-ms 250]
 * [--warmup-ms 500] [--scenarios unary,stream-100] [--systems traced,grpc-js+otel] [--concurrency 32]
 * [--order williams|fixed] [--transport h2c|memory] [--json]`. Run it with
 * `TSX_TSCONFIG_PATH=bench/tsconfig.json`, as `npm run bench` does, so that connect-otel is its build
 * in dist/ (what users run), not the TypeScript sources the root tsconfig's `paths` point tsx to.
 * `--json` prints one JSON document (settings, summaries, targets, per-round raw figures) on stdout
 * instead of the tables; progress goes to stderr either way. Exits 0 whether the targets are met or
 * not (speed is reported, never asserted), 1 if the floor's spans differ from the traced pair's, 2
 * for a bad flag.
 */
import * as os from "node:os";
import * as path from "node:path";
import { PerformanceObserver } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import type { PairTransport } from "./support/connect-user.js";
import { floorSpanMismatches } from "./support/floor-check.js";
import type { Scenario, ScenarioName } from "./support/scenarios.js";
import { SCENARIO_NAMES, scenarios } from "./support/scenarios.js";
import type { Spread } from "./support/stats.js";
import { Samples, spread } from "./support/stats.js";
import type { System, SystemName } from "./support/systems.js";
import { BASELINE, GRPC_SYSTEMS, SYSTEM_NAMES, systemFactories } from "./support/systems.js";

// ---------------------------------------------------------------------------------------------
// Flags

/** The flags; an unknown flag or a missing value exits 2 with one line. */
const { values: flags } = (() => {
  try {
    return parseArgs({
      options: {
        rounds: { type: "string", default: "8" },
        "duration-ms": { type: "string", default: "500" },
        "warmup-ms": { type: "string", default: "500" },
        "slice-ms": { type: "string", default: "250" },
        order: { type: "string", default: "williams" },
        scenarios: { type: "string" },
        systems: { type: "string" },
        concurrency: { type: "string", default: "32" },
        transport: { type: "string", default: "h2c" },
        json: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
      strict: true,
    });
  } catch (err) {
    console.error(`overhead: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(2);
  }
})();

/** Exits 2 with one line naming the flag. */
function usage(message: string): never {
  console.error(`overhead: ${message}`);
  process.exit(2);
}

/** A positive integer from a flag. */
function positiveInt(name: string, raw: string): number {
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < 1) usage(`--${name} must be an integer >= 1, got ${raw}`);
  return value;
}

/** The names of a comma-separated list flag, each checked against `known`; `all` when the flag is absent. */
function names<T extends string>(flag: string, raw: string | undefined, known: readonly T[], all: readonly T[]): T[] {
  if (raw === undefined) return [...all];
  const picked = raw
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
  for (const name of picked) {
    if (!(known as readonly string[]).includes(name)) usage(`--${flag}: unknown "${name}"; one of ${known.join(", ")}`);
  }
  return known.filter((k) => picked.includes(k));
}

// ---------------------------------------------------------------------------------------------
// Scenarios and systems

const DEFAULT_SYSTEMS = SYSTEM_NAMES.filter((s) => s !== "noop-exporter");

if (flags.help) {
  console.log(
    "usage: node --import tsx bench/overhead.ts [--rounds N] [--duration-ms MS] [--slice-ms MS] [--warmup-ms MS]\n" +
      "       [--scenarios a,b] [--systems a,b] [--concurrency N] [--order williams|fixed] [--transport h2c|memory] [--json]\n" +
      `scenarios: ${SCENARIO_NAMES.join(", ")}\nsystems: ${SYSTEM_NAMES.join(", ")} (baselines are added to the systems given)`,
  );
  process.exit(0);
}

const rounds = positiveInt("rounds", flags.rounds);
const durationMs = positiveInt("duration-ms", flags["duration-ms"]);
const warmupMs = positiveInt("warmup-ms", flags["warmup-ms"]);
const sliceMs = positiveInt("slice-ms", flags["slice-ms"]);
const concurrency = positiveInt("concurrency", flags.concurrency);
if (flags.transport !== "h2c" && flags.transport !== "memory")
  usage(`--transport must be h2c or memory, got ${flags.transport}`);
const pairTransport: PairTransport = flags.transport;
if (flags.order !== "williams" && flags.order !== "fixed")
  usage(`--order must be williams or fixed, got ${flags.order}`);
const scenarioNames = names("scenarios", flags.scenarios, SCENARIO_NAMES, SCENARIO_NAMES);
const requested = names(
  "systems",
  flags.systems,
  SYSTEM_NAMES,
  pairTransport === "memory" ? DEFAULT_SYSTEMS.filter((s) => !GRPC_SYSTEMS.includes(s)) : DEFAULT_SYSTEMS,
);
if (pairTransport === "memory" && requested.some((s) => GRPC_SYSTEMS.includes(s))) {
  usage("--systems: grpc-js and grpc-js+otel run over h2c only, not with --transport memory");
}
const systemNames = SYSTEM_NAMES.filter((s) => requested.includes(s) || requested.some((r) => BASELINE[r] === s));

const SCENARIOS = scenarios(concurrency);
const FACTORIES = systemFactories(pairTransport);

// ---------------------------------------------------------------------------------------------
// Measuring

/** Garbage-collection pauses seen by a PerformanceObserver: start and duration, in ms. */
const gcPauses: { start: number; duration: number }[] = [];
const gcObserver = new PerformanceObserver((list) => {
  for (const e of list.getEntries()) gcPauses.push({ start: e.startTime, duration: e.duration });
});
gcObserver.observe({ entryTypes: ["gc"] });

/** Total GC pause time in [from, to), in ms; forgets the pauses before `to`. */
function gcPauseMs(from: number, to: number): number {
  for (const e of gcObserver.takeRecords()) gcPauses.push({ start: e.startTime, duration: e.duration });
  let total = 0;
  for (const p of gcPauses) if (p.start >= from && p.start < to) total += p.duration;
  const keep = gcPauses.filter((p) => p.start >= to);
  gcPauses.length = 0;
  gcPauses.push(...keep);
  return total;
}

/** What one system did in one round: the sums of its slices. */
interface Phase {
  /** Units completed (calls, messages or pairs). */
  readonly units: number;
  readonly calls: number;
  /** Wall time of the slices, each from its first call to the end of its flush, in ms. */
  readonly ms: number;
  /** Of which the flushes of the span and metric pipelines, in ms. */
  readonly flushMs: number;
  /** Process CPU time (user + system, all threads), in ms. */
  readonly cpuMs: number;
  /** GC pause time observed during the slices, in ms. */
  readonly gcMs: number;
  /** Spans exported during the slices. */
  readonly spans: number;
  /** Bytes of OTLP protobuf encoded during the slices. */
  readonly otlpBytes: number;
  /** Latency of the calls in µs (one-at-a-time scenarios only). */
  readonly latencyUs?: { p50: number; mean: number; p99: number };
}

/** Running sums of one system's slices in one round. */
interface PhaseSums {
  units: number;
  calls: number;
  ms: number;
  flushMs: number;
  cpuMs: number;
  gcMs: number;
  spans: number;
  otlpBytes: number;
  /** Latencies of the calls in µs (one-at-a-time scenarios). */
  readonly latencies: Samples;
}

/** Latency lists, one per system, reused from round to round. */
const latencyLists = new Map<SystemName, Samples>();

function emptySums(name: SystemName): PhaseSums {
  const latencies = latencyLists.get(name) ?? new Samples();
  latencyLists.set(name, latencies);
  latencies.clear();
  return { units: 0, calls: 0, ms: 0, flushMs: 0, cpuMs: 0, gcMs: 0, spans: 0, otlpBytes: 0, latencies };
}

/**
 * Runs `scenario` on `system` for `ms` (the call under way at the deadline completes), then
 * flushes the system's telemetry, and adds what it measured, flush included, to `sums`.
 */
async function slice(system: System, scenario: Scenario, ms: number, sums: PhaseSums): Promise<void> {
  const spans0 = system.spans.items;
  const bytes0 = system.spans.bytes;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const end = t0 + ms;
  let units = 0;
  let calls = 0;
  if (scenario.concurrency === 1) {
    let now = t0;
    while (now < end) {
      const done = await scenario.call(system.calls);
      units += done;
      const after = performance.now();
      sums.latencies.push((after - now) * 1000);
      now = after;
      calls++;
    }
  } else {
    const worker = async (): Promise<void> => {
      while (performance.now() < end) {
        // Not `units += await ...`: that reads `units` before the await and loses the other workers' updates.
        const done = await scenario.call(system.calls);
        units += done;
        calls++;
      }
    };
    await Promise.all(Array.from({ length: scenario.concurrency }, worker));
  }
  const f0 = performance.now();
  await system.flush();
  const t1 = performance.now();
  const cpu = process.cpuUsage(cpu0);
  // Node queues GC entries for observers on the event loop's next turn: without this untimed turn,
  // a slice that never yields to the loop (the in-memory transport) would see none of its pauses
  await new Promise((resolve) => setImmediate(resolve));
  sums.units += units;
  sums.calls += calls;
  sums.ms += t1 - t0;
  sums.flushMs += t1 - f0;
  sums.cpuMs += (cpu.user + cpu.system) / 1000;
  sums.gcMs += gcPauseMs(t0, t1);
  sums.spans += system.spans.items - spans0;
  sums.otlpBytes += system.spans.bytes - bytes0;
}

/** The phase that a round's slices of one system add up to. */
function toPhase(sums: PhaseSums, sequential: boolean): Phase {
  const { latencies, ...rest } = sums;
  return { ...rest, ...(sequential ? { latencyUs: latencies.summary() } : {}) };
}

/** Throughput of a phase in units per second. */
const rate = (p: Phase): number => (p.units / p.ms) * 1000;

/**
 * Where `connect-otel` resolved: the build a user runs (`dist/`), or the TypeScript sources when tsx
 * applies the root tsconfig's `paths` (npm run bench sets TSX_TSCONFIG_PATH=bench/tsconfig.json,
 * which has none).
 */
const runtimeModule = import.meta.resolve("connect-otel");
if (!runtimeModule.includes("/dist/")) {
  console.error(
    `overhead: connect-otel resolved to ${runtimeModule}, not its build; run with TSX_TSCONFIG_PATH=bench/tsconfig.json (as npm run bench does) to measure what users run`,
  );
}

if (systemNames.some((s) => s.startsWith("floor"))) {
  const mismatches = await floorSpanMismatches(pairTransport);
  if (mismatches.length > 0) {
    console.error(`overhead: the floor system's spans differ from the traced pair's:\n${mismatches.join("\n")}`);
    process.exit(1);
  }
}

const loadAtStart = os.loadavg();
const started = performance.now();
const systems = new Map<SystemName, System>();
for (const name of systemNames) systems.set(name, await FACTORIES[name]());

/**
 * The orders of the systems in successive slices: the rows of a Williams design (a Latin square in
 * which every system also follows every other one equally often; for an odd count, the rows and
 * their reverses). A fixed cyclic order, even rotated, would have each system always follow the same
 * one and inherit what it leaves behind (garbage, caches): in four runs with a rotated order, of two
 * identical untraced pairs the one that always ran right after the other was 3–8% faster.
 */
function williamsOrders(n: number): number[][] {
  const first: number[] = [];
  for (let i = 0, lo = 1, hi = n - 1; i < n; i++) {
    if (i === 0) first.push(0);
    else if (i % 2 === 1) first.push(lo++);
    else first.push(hi--);
  }
  const rows = Array.from({ length: n }, (_, r) => first.map((v) => (v + r) % n));
  return n % 2 === 0 ? rows : [...rows, ...rows.map((row) => [...row].reverse())];
}
const orders = flags.order === "fixed" ? [systemNames.map((_, i) => i)] : williamsOrders(systemNames.length);

/** Slices per system and round, and the length of one. */
const slices = Math.max(1, Math.round(durationMs / sliceMs));
const sliceDuration = durationMs / slices;

/** Per scenario, per round, per system: the phase. */
const raw = new Map<ScenarioName, Map<SystemName, Phase>[]>();
for (const scenarioName of scenarioNames) {
  const scenario = SCENARIOS[scenarioName];
  for (const name of systemNames) await slice(systems.get(name) as System, scenario, warmupMs, emptySums(name));
  const perRound: Map<SystemName, Phase>[] = [];
  for (let round = 0; round < rounds; round++) {
    const sums = new Map(systemNames.map((name) => [name, emptySums(name)] as const));
    for (let k = 0; k < slices; k++) {
      const order = orders[(round * slices + k) % orders.length] as number[];
      for (const i of order) {
        const name = systemNames[i] as SystemName;
        await slice(systems.get(name) as System, scenario, sliceDuration, sums.get(name) as PhaseSums);
      }
    }
    const phases = new Map([...sums].map(([name, s]) => [name, toPhase(s, scenario.concurrency === 1)] as const));
    perRound.push(phases);
    const base = phases.get("connect");
    const traced = phases.get("traced");
    const hint = base && traced ? `, traced/connect ${(rate(traced) / rate(base)).toFixed(3)}` : "";
    console.error(`overhead: ${scenarioName} round ${round + 1}/${rounds}${hint}`);
  }
  raw.set(scenarioName, perRound);
}
const elapsedS = (performance.now() - started) / 1000;
const loadAtEnd = os.loadavg();
for (const system of systems.values()) await system.close();

// ---------------------------------------------------------------------------------------------
// Summaries

/** The summary of one system in one scenario, against a reference system of the same rounds. */
interface Comparison {
  readonly system: SystemName;
  readonly against: SystemName;
  /** Throughput in units per second, over the rounds. */
  readonly rate: Spread;
  /** Throughput divided by the reference's in the same round. */
  readonly ratio: Spread;
  /** µs added per unit: 1e6/rate − 1e6/rate(reference), per round. */
  readonly addedUs: Spread;
  /** Process CPU µs added per unit, per round. */
  readonly addedCpuUs: Spread;
  /** The reference's process CPU time per unit divided by the system's, per round: a throughput ratio if both were CPU-bound. */
  readonly cpuRatio: Spread;
  /** Process CPU µs per unit of the system itself. */
  readonly cpuUs: Spread;
  /** GC pause µs per unit of the system itself. */
  readonly gcUs: Spread;
  /** Spans exported per call (median over rounds). */
  readonly spansPerCall: number;
  /** Added latency per call in µs at p50, mean and p99 (one-at-a-time scenarios). */
  readonly addedLatencyUs?: { p50: Spread; mean: Spread; p99: Spread };
}

function compare(perRound: Map<SystemName, Phase>[], system: SystemName, against: SystemName): Comparison {
  const pairs = perRound.map((r) => [r.get(system) as Phase, r.get(against) as Phase] as const);
  const perUnit = (p: Phase, v: number): number => (v * 1000) / p.units;
  const latency = pairs.every(([s, a]) => s.latencyUs && a.latencyUs)
    ? {
        p50: spread(pairs.map(([s, a]) => (s.latencyUs?.p50 ?? 0) - (a.latencyUs?.p50 ?? 0))),
        mean: spread(pairs.map(([s, a]) => (s.latencyUs?.mean ?? 0) - (a.latencyUs?.mean ?? 0))),
        p99: spread(pairs.map(([s, a]) => (s.latencyUs?.p99 ?? 0) - (a.latencyUs?.p99 ?? 0))),
      }
    : undefined;
  return {
    system,
    against,
    rate: spread(pairs.map(([s]) => rate(s))),
    ratio: spread(pairs.map(([s, a]) => rate(s) / rate(a))),
    addedUs: spread(pairs.map(([s, a]) => 1e6 / rate(s) - 1e6 / rate(a))),
    addedCpuUs: spread(pairs.map(([s, a]) => perUnit(s, s.cpuMs) - perUnit(a, a.cpuMs))),
    cpuRatio: spread(pairs.map(([s, a]) => perUnit(a, a.cpuMs) / perUnit(s, s.cpuMs))),
    cpuUs: spread(pairs.map(([s]) => perUnit(s, s.cpuMs))),
    gcUs: spread(pairs.map(([s]) => perUnit(s, s.gcMs))),
    spansPerCall: spread(pairs.map(([s]) => s.spans / s.calls)).median,
    ...(latency ? { addedLatencyUs: latency } : {}),
  };
}

interface ScenarioSummary {
  readonly scenario: ScenarioName;
  readonly title: string;
  readonly unit: Scenario["unit"];
  readonly comparisons: Comparison[];
  /** `metrics` against `traced` (spans only), when both ran. */
  readonly metricsOverSpans?: Comparison;
  /** `traced` against `floor`, and `sampled-out` against `floor-sampled-out`, when both ran: what the runtime adds to the spans' own cost. */
  readonly overFloor: Comparison[];
}

/** The comparisons of one system with another than its baseline, as [system, against], when both ran. */
const FLOOR_PAIRS: [SystemName, SystemName][] = [
  ["traced", "floor"],
  ["sampled-out", "floor-sampled-out"],
];

const summaries: ScenarioSummary[] = scenarioNames.map((name) => {
  const perRound = raw.get(name) as Map<SystemName, Phase>[];
  const scenario = SCENARIOS[name];
  return {
    scenario: name,
    title: scenario.title,
    unit: scenario.unit,
    comparisons: systemNames.map((s) => compare(perRound, s, BASELINE[s])),
    ...(systemNames.includes("metrics") && systemNames.includes("traced")
      ? { metricsOverSpans: compare(perRound, "metrics", "traced") }
      : {}),
    overFloor: FLOOR_PAIRS.filter(([a, b]) => systemNames.includes(a) && systemNames.includes(b)).map(([a, b]) =>
      compare(perRound, a, b),
    ),
  };
});

/**
 * A target of issue 12, judged on the medians of this run: on throughput, as the issue states
 * them, and on process CPU time per unit, which a busy machine disturbs less.
 */
interface Target {
  readonly target: string;
  readonly value: string;
  /** By throughput; undefined when the scenario or a system it needs did not run. */
  readonly met: boolean | undefined;
  /** The same test on the CPU-time ratio or added CPU µs. */
  readonly metByCpu: boolean | undefined;
}

function find(scenario: ScenarioName, system: SystemName): Comparison | undefined {
  return summaries.find((s) => s.scenario === scenario)?.comparisons.find((c) => c.system === system);
}

function ratioTarget(label: string, c: Comparison | undefined, min: number): Target {
  return {
    target: `${label} ≥ ${min}×`,
    value: c
      ? `${c.ratio.median.toFixed(3)}× ${range(c.ratio, (v) => v.toFixed(2))}; cpu ${c.cpuRatio.median.toFixed(3)}× ${range(c.cpuRatio, (v) => v.toFixed(2))}`
      : "not run",
    met: c ? c.ratio.median >= min : undefined,
    metByCpu: c ? c.cpuRatio.median >= min : undefined,
  };
}

const tracedUnary = find("unary", "traced");
const grpcUnary = find("unary", "grpc-js+otel");
const targets: Target[] = [
  ratioTarget("unary, recording, default options: traced ÷ connect", tracedUnary, 0.96),
  {
    target: "unary, recording, default options: added µs ≤ ⅕ of grpc-js+otel's over grpc-js",
    value:
      tracedUnary && grpcUnary
        ? `${signed(tracedUnary.addedUs.median)} vs ⅕ × ${signed(grpcUnary.addedUs.median)} = ${signed(grpcUnary.addedUs.median / 5)} µs; ` +
          `cpu ${signed(tracedUnary.addedCpuUs.median)} vs ⅕ × ${signed(grpcUnary.addedCpuUs.median)} = ${signed(grpcUnary.addedCpuUs.median / 5)} µs`
        : "not run",
    met: tracedUnary && grpcUnary ? tracedUnary.addedUs.median <= grpcUnary.addedUs.median / 5 : undefined,
    metByCpu: tracedUnary && grpcUnary ? tracedUnary.addedCpuUs.median <= grpcUnary.addedCpuUs.median / 5 : undefined,
  },
  ratioTarget("unary, sampled out: sampled-out ÷ connect", find("unary", "sampled-out"), 0.99),
  ratioTarget("stream of 100, events on: traced ÷ connect", find("stream-100", "traced"), 0.95),
  // "1.00×" to two places.
  ratioTarget("stream of 100, events off: events-off ÷ connect", find("stream-100", "events-off"), 0.995),
  ratioTarget(
    "unary, metrics on top of spans: metrics ÷ traced",
    summaries.find((s) => s.scenario === "unary")?.metricsOverSpans,
    0.98,
  ),
];

// ---------------------------------------------------------------------------------------------
// Output

function signed(v: number, digits = 1): string {
  return `${v >= 0 ? "+" : "−"}${Math.abs(v).toFixed(digits)}`;
}

function range(s: Spread, format: (v: number) => string): string {
  return `[${format(s.min)} … ${format(s.max)}]`;
}

const settings = {
  node: process.version,
  platform: `${os.platform()} ${os.arch()}`,
  cpus: os.cpus().length,
  cpuModel: os.cpus()[0]?.model ?? "unknown",
  loadAverageAtStart: loadAtStart,
  loadAverageAtEnd: loadAtEnd,
  transport: pairTransport,
  runtime: runtimeModule,
  rounds,
  durationMs,
  warmupMs,
  order: flags.order,
  sliceMs: sliceDuration,
  slicesPerRound: slices,
  concurrency,
  scenarios: scenarioNames,
  systems: systemNames,
  elapsedSeconds: Math.round(elapsedS),
};

if (flags.json) {
  const rawOut = Object.fromEntries(
    [...raw].map(([scenario, perRound]) => [scenario, perRound.map((r) => Object.fromEntries(r))]),
  );
  console.log(JSON.stringify({ settings, summaries, targets, rounds: rawOut }, null, 2));
  process.exit(0);
}

const load = (l: number[]): string => l.map((v) => v.toFixed(2)).join(" ");
console.log(
  `connect-otel overhead: node ${settings.node}, ${settings.platform}, ${settings.cpus} × ${settings.cpuModel}; ` +
    `load average ${load(loadAtStart)} at start, ${load(loadAtEnd)} at end; ${Math.round(elapsedS)} s`,
);
console.log(
  `connect pairs ${pairTransport === "h2c" ? "over h2c on 127.0.0.1 (gRPC)" : "in memory (connect's router transport, Connect protocol; no sockets)"}; ` +
    `connect-otel from ${path.relative(process.cwd(), fileURLToPath(runtimeModule))}`,
);
console.log(
  `${rounds} rounds × ${durationMs} ms per system and scenario, ${slices} slice(s) of ${Math.round(sliceDuration)} ms each, ` +
    `${flags.order === "fixed" ? "systems in one fixed order" : "systems interleaved in Williams-design order"}, ` +
    `after ${warmupMs} ms warm-up. Medians over the rounds, [min … max] across rounds.`,
);
console.log(
  "  ratio: throughput ÷ its baseline's (connect or grpc-js) in the same round; added: 1e6/throughput − the baseline's, µs per unit;\n" +
    "  cpu ratio: the baseline's process CPU time per unit ÷ the system's; cpu µs, +cpu µs: process CPU time per unit, and added;\n" +
    "  gc µs: GC pauses per unit; spans: spans exported per call.",
);

const pad = (s: string, n: number): string => s.padEnd(n);
const labelOf = (c: Comparison): string => (c.against === BASELINE[c.system] ? c.system : `${c.system}÷${c.against}`);
const labelWidth = Math.max(15, ...summaries.flatMap((s) => s.overFloor.map((c) => labelOf(c).length + 2)));
const lpad = (s: string, n: number): string => s.padStart(n);
for (const s of summaries) {
  console.log(`\n${s.scenario}: ${s.title}, per ${s.unit}`);
  console.log(
    `  ${pad("system", labelWidth)}${lpad(`${s.unit}s/s`, 9)}  ${pad("ratio [min … max]", 22)}${pad(`added µs/${s.unit} [min … max]`, 32)}` +
      `${lpad("cpu ratio", 9)}${lpad("cpu µs", 9)}${lpad("+cpu µs", 9)}${lpad("gc µs", 8)}${lpad("spans", 7)}`,
  );
  const rows = [...s.comparisons, ...(s.metricsOverSpans ? [s.metricsOverSpans] : []), ...s.overFloor];
  for (const c of rows) {
    const isBase = c.system === c.against;
    const label = labelOf(c);
    const ratioCell = isBase ? "baseline" : `${c.ratio.median.toFixed(3)} ${range(c.ratio, (v) => v.toFixed(2))}`;
    const addedCell = isBase
      ? `(${(1e6 / c.rate.median).toFixed(1)} µs/${s.unit})`
      : `${signed(c.addedUs.median, 2)} ${range(c.addedUs, (v) => signed(v, 1))}`;
    console.log(
      `  ${pad(label, labelWidth)}${lpad(Math.round(c.rate.median).toLocaleString("en-US"), 9)}  ${pad(ratioCell, 22)}${pad(addedCell, 32)}` +
        `${lpad(isBase ? "" : c.cpuRatio.median.toFixed(3), 9)}${lpad(c.cpuUs.median.toFixed(1), 9)}` +
        `${lpad(isBase ? "" : signed(c.addedCpuUs.median, 1), 9)}${lpad(c.gcUs.median.toFixed(1), 8)}${lpad(c.spansPerCall.toFixed(1), 7)}`,
    );
  }
  const withLatency = s.comparisons.filter((c) => c.addedLatencyUs && c.system !== c.against);
  if (withLatency.length > 0) {
    console.log("  latency of a call, added over the baseline in µs (medians over rounds; [min … max] of p50):");
    for (const c of withLatency) {
      const l = c.addedLatencyUs as NonNullable<Comparison["addedLatencyUs"]>;
      console.log(
        `    ${pad(c.system, labelWidth)}p50 ${lpad(signed(l.p50.median), 9)}   mean ${lpad(signed(l.mean.median), 9)}   p99 ${lpad(signed(l.p99.median), 9)}   ${range(l.p50, (v) => signed(v))}`,
      );
    }
  }
}

console.log("\ntargets (issue 12) on this run's medians, judged by throughput (as stated) and by CPU time:");
console.log(`  ${pad("tput", 8)} ${pad("cpu", 8)} target: throughput [min … max]; cpu [min … max]`);
const verdict = (met: boolean | undefined): string => (met === undefined ? "not run" : met ? "met" : "NOT MET");
for (const t of targets) {
  console.log(`  ${pad(verdict(t.met), 8)} ${pad(verdict(t.metByCpu), 8)} ${t.target}: ${t.value}`);
}
const noise = find("unary", "connect-2");
if (noise) {
  console.log(
    `noise floor, unary, connect-2 ÷ connect (two identical untraced pairs): ${noise.ratio.median.toFixed(3)}× ${range(noise.ratio, (v) => v.toFixed(2))}; ` +
      `cpu ${noise.cpuRatio.median.toFixed(3)}× ${range(noise.cpuRatio, (v) => v.toFixed(2))}. A target nearer to 1 than this noise ` +
      "is not decided by this run: rerun with more --rounds, on a quieter machine.",
  );
}
process.exit(0);
