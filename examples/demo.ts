/**
 * `npm run demo`: starts the course system (payment-service, user-service, gateway) as three
 * Node processes on loopback, drives the scenario of ./scenario.ts against the gateway with plain
 * `fetch` (untraced), stops the processes (they flush their spans and metrics on SIGTERM), and
 * prints every trace as a waterfall followed by the trace checks, then the latency table of
 * ./latency-table.ts from the RPC call-duration metrics followed by the metrics checks.
 *
 * The demo runs its own OTLP/HTTP receiver (./otlp-receiver.ts) on an ephemeral loopback port and
 * the processes export to it over `http/json`: the traces unless `OTEL_EXPORTER_OTLP_ENDPOINT` or
 * `..._TRACES_ENDPOINT` is set, the metrics unless `OTEL_EXPORTER_OTLP_ENDPOINT` or
 * `..._METRICS_ENDPOINT` is set, or `OTEL_METRICS_EXPORTER` (default `otlp`) leaves OTLP out. A
 * signal with an endpoint goes there and the demo only says so. Exit code 0 when every step and
 * check passed, 1 otherwise. Everything is bounded: the whole run is abandoned after
 * {@link DEMO_TIMEOUT_MS}.
 *
 * `DEMO_VERBOSE=1` prints the processes' output; `DEMO_SPANS_FILE=<path>` also writes the received
 * spans there as a JSON array of ./span-record.ts records, `DEMO_METRICS_FILE=<path>` the received
 * metric data points as one of ./metric-record.ts records.
 */
import { writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { LOOPBACK, loopbackUrl } from "./config.js";
import { printChecks, runSteps, runToEnd, settledMetrics, settledSpans, stopProcesses } from "./demo-steps.js";
import { callsInScenario, callsInSpans, checkCallMetrics, latencyRows, renderLatencyTable } from "./latency-table.js";
import type { MetricPointRecord } from "./metric-record.js";
import { type OtlpReceiver, startOtlpReceiver } from "./otlp-receiver.js";
import { freePort, type ServiceProcess, startProcess, waitForPort } from "./processes.js";
import { SCENARIO, SERVICES } from "./scenario.js";
import type { SpanRecord } from "./span-record.js";
import { type CheckResult, checkScenarioTraces } from "./trace-checks.js";
import { renderWaterfall } from "./waterfall.js";

/** Upper bound of the whole demo, in ms. */
const DEMO_TIMEOUT_MS = 75_000;
/** How long a process may take to listen, in ms (tsx compiles on start). */
const READY_TIMEOUT_MS = 20_000;
/** Timeout of one scenario request, in ms. */
const STEP_TIMEOUT_MS = 10_000;
/** How long to wait for spans and metrics after the processes exited, in ms. */
const SPANS_TIMEOUT_MS = 5_000;

const repoRoot = fileURLToPath(new URL("..", import.meta.url));
const script = (name: string) => fileURLToPath(new URL(`./${name}`, import.meta.url));
const verbose = process.env.DEMO_VERBOSE === "1";

const processes: ServiceProcess[] = [];
const watchdog = setTimeout(() => {
  console.log(`demo failed: not finished after ${DEMO_TIMEOUT_MS} ms`);
  for (const p of processes) {
    void p.stop(0);
  }
  process.exitCode = 1;
  setTimeout(() => process.exit(1), 1000).unref();
}, DEMO_TIMEOUT_MS);
watchdog.unref();

// Each signal goes to the demo's receiver unless an endpoint is configured for it.
const tracesEndpoint = process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
const metricsEndpoint = process.env.OTEL_EXPORTER_OTLP_METRICS_ENDPOINT || process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
const metricsExporter = process.env.OTEL_METRICS_EXPORTER || "otlp";
// As the NodeSDK reads the variable: a list, in which `none` turns metrics off.
const metricsExporters = metricsExporter.split(",").map((e) => e.trim());
const metricsOverOtlp = metricsExporters.includes("otlp") && !metricsExporters.includes("none");
const localTraces = !tracesEndpoint;
const localMetrics = metricsOverOtlp && !metricsEndpoint;
let receiver: OtlpReceiver | undefined;
const telemetryEnv: Record<string, string> = {
  OTEL_TRACES_EXPORTER: process.env.OTEL_TRACES_EXPORTER || "otlp",
  OTEL_METRICS_EXPORTER: metricsExporter,
  OTEL_LOGS_EXPORTER: process.env.OTEL_LOGS_EXPORTER || "none",
};
if (localTraces || localMetrics) {
  receiver = await startOtlpReceiver({ host: LOOPBACK });
}
if (localTraces && receiver !== undefined) {
  Object.assign(telemetryEnv, {
    // A signal's own endpoint variable is the full URL, path included.
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${receiver.url}/v1/traces`,
    OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: "http/json",
    OTEL_TRACES_EXPORTER: "otlp",
    // The checks expect every trace; a sampler from the environment is kept, at their risk.
    OTEL_TRACES_SAMPLER: process.env.OTEL_TRACES_SAMPLER || "parentbased_always_on",
  });
}
if (localMetrics && receiver !== undefined) {
  // Exported every OTEL_METRIC_EXPORT_INTERVAL (60 s by default) and, what the table needs, once
  // more when the SDK shuts down on SIGTERM.
  Object.assign(telemetryEnv, {
    OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: `${receiver.url}/v1/metrics`,
    OTEL_EXPORTER_OTLP_METRICS_PROTOCOL: "http/json",
  });
}

const failures: string[] = [];
await runToEnd({ processes, receiver, watchdog, failures, verbose }, () => runDemo());

async function runDemo(): Promise<void> {
  const ports = new Set<number>();
  while (ports.size < 3) {
    ports.add(await freePort(LOOPBACK));
  }
  const [paymentPort, userPort, gatewayPort] = [...ports] as [number, number, number];
  const paymentUrl = loopbackUrl(paymentPort);
  const userUrl = loopbackUrl(userPort);
  const gatewayUrl = loopbackUrl(gatewayPort);
  const start = (name: string, file: string, env: Record<string, string>, port: number) => {
    const p = startProcess(name, script(file), { ...telemetryEnv, OTEL_SERVICE_NAME: name, ...env }, repoRoot);
    processes.push(p);
    if (verbose) {
      void p.exited.then(() => console.error(p.output()));
    }
    return waitForPort(name, LOOPBACK, port, READY_TIMEOUT_MS, p.exited);
  };
  await Promise.all([
    start(SERVICES.payment, "payment-service.ts", { PAYMENT_SERVICE_PORT: String(paymentPort) }, paymentPort),
    start(
      SERVICES.user,
      "user-service.ts",
      { USER_SERVICE_PORT: String(userPort), PAYMENT_SERVICE_URL: paymentUrl },
      userPort,
    ),
    start(
      SERVICES.gateway,
      "gateway.ts",
      { GATEWAY_PORT: String(gatewayPort), USER_SERVICE_URL: userUrl, PAYMENT_SERVICE_URL: paymentUrl },
      gatewayPort,
    ),
  ]);
  console.log(`course system up: gateway ${gatewayUrl}, user-service ${userUrl}, payment-service ${paymentUrl}`);

  failures.push(...(await runSteps(gatewayUrl, SCENARIO, STEP_TIMEOUT_MS)));
  // SIGTERM: each process closes its server and flushes its spans and metrics before exiting.
  failures.push(...(await stopProcesses(processes)));

  const [spans, points] = await Promise.all([
    localTraces && receiver !== undefined ? settledSpans(receiver, SPANS_TIMEOUT_MS) : undefined,
    localMetrics && receiver !== undefined ? settledMetrics(receiver, SPANS_TIMEOUT_MS) : undefined,
  ]);
  if (spans === undefined) {
    console.log(
      `spans sent to ${tracesEndpoint} (OTLP ${process.env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL || process.env.OTEL_EXPORTER_OTLP_PROTOCOL || "http/protobuf"}); open your tracing backend to see the ${SCENARIO.length} traces`,
    );
  } else {
    if (process.env.DEMO_SPANS_FILE) {
      await writeFile(process.env.DEMO_SPANS_FILE, JSON.stringify(spans));
    }
    console.log(`received ${spans.length} spans\n`);
    process.stdout.write(renderWaterfall(spans));
    console.log();
    report(checkScenarioTraces(spans, SCENARIO, SERVICES.gateway), "trace checks");
  }
  console.log();
  if (points !== undefined) {
    await reportMetrics(points, spans);
  } else if (metricsOverOtlp) {
    console.log(
      `metrics sent to ${metricsEndpoint} (OTLP ${process.env.OTEL_EXPORTER_OTLP_METRICS_PROTOCOL || process.env.OTEL_EXPORTER_OTLP_PROTOCOL || "http/protobuf"}); the latency table needs the demo's own receiver`,
    );
  } else {
    console.log(`no latency table: OTEL_METRICS_EXPORTER=${metricsExporter} sends no metrics over OTLP`);
  }
  if (receiver !== undefined && receiver.rejected() > 0) {
    failures.push(`the receiver rejected ${receiver.rejected()} export requests`);
  }
}

/**
 * Prints the latency table from the received metric data points and checks it against the calls
 * of the spans, or of the scenario when the spans went elsewhere.
 */
async function reportMetrics(points: MetricPointRecord[], spans: SpanRecord[] | undefined): Promise<void> {
  if (process.env.DEMO_METRICS_FILE) {
    await writeFile(process.env.DEMO_METRICS_FILE, JSON.stringify(points));
  }
  const services = [...new Set(points.map((p) => p.serviceName))].join(", ");
  console.log(`received ${points.length} metric data points${services === "" ? "" : ` from ${services}`}\n`);
  const rows = latencyRows(points);
  process.stdout.write(renderLatencyTable(rows));
  console.log();
  const expected = spans !== undefined ? callsInSpans(spans) : callsInScenario(SCENARIO);
  report(checkCallMetrics(rows, expected, spans !== undefined ? "spans" : "scenario"), "metrics checks");
}

function report(results: CheckResult[], what: string): void {
  const failed = printChecks(results, what);
  if (failed > 0) {
    failures.push(`${failed} of ${results.length} ${what} failed`);
  }
}
