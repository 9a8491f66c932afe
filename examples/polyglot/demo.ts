/**
 * `npm run demo:polyglot`: the course system in its own languages. Builds what is missing
 * (./build.ts: Go binaries, Python virtual environment, generated code), starts the Python
 * payment-service (opentelemetry-instrumentation-grpc), our TypeScript user-service (the demo's
 * own, on the generated code of `generated/`) and the Go gateway (otelhttp, otelgrpc) on loopback,
 * drives ./scenario.ts through the gateway with plain `fetch`, stops the processes (they flush
 * their spans on SIGTERM) and prints every trace as a waterfall with each span's language,
 * followed by the trace checks.
 *
 * Needs Go and Python 3 with venv (./toolchains.ts); without them it stops with one line saying
 * what is missing. Without `OTEL_EXPORTER_OTLP_ENDPOINT` (or `..._TRACES_ENDPOINT`) the demo runs
 * its own OTLP receiver, which takes the protobuf that all three languages send; with it, spans go
 * there (an OTLP/HTTP endpoint: the Go and Python exporters here speak no OTLP/gRPC). Exit code 0
 * when every step and check passed, 1 otherwise; the run after the build is abandoned after
 * {@link DEMO_TIMEOUT_MS}.
 *
 * `DEMO_VERBOSE=1` prints the processes' output; `DEMO_SPANS_FILE=<path>` also writes the received
 * spans there as a JSON array of ../span-record.ts records.
 */
import { writeFile } from "node:fs/promises";
import { LOOPBACK, loopbackUrl } from "../config.js";
import { printChecks, runSteps, runToEnd, settledSpans, stopProcesses } from "../demo-steps.js";
import { type OtlpReceiver, startOtlpReceiver } from "../otlp-receiver.js";
import { freePort, type ServiceProcess } from "../processes.js";
import { SERVICES } from "../scenario.js";
import type { AttributeValue, SpanRecord } from "../span-record.js";
import { isNotableAttribute, renderWaterfall } from "../waterfall.js";
import { buildPolyglot, type PolyglotBuild } from "./build.js";
import { startServer } from "./programs.js";
import { anyStackStatusCode } from "./rpc-status.js";
import { POLYGLOT_SCENARIO } from "./scenario.js";
import { labelledWithLanguage } from "./span-language.js";
import { ToolchainError } from "./toolchains.js";
import { checkPolyglotTraces, SERVICE_LANGUAGES } from "./trace-checks.js";

/** Upper bound of the demo after the build, in ms. */
const DEMO_TIMEOUT_MS = 90_000;
/** How long a process may take to listen, in ms (tsx compiles on start, Python imports grpcio). */
const READY_TIMEOUT_MS = 30_000;
/** Timeout of one scenario request, in ms. */
const STEP_TIMEOUT_MS = 10_000;
/** How long to wait for spans after the processes exited, in ms. */
const SPANS_TIMEOUT_MS = 5_000;

/** Peer attributes the waterfall's status column shows already, or routine ones, left out. */
const PEER_ROUTINE_KEYS = new Set([
  "rpc.response.status_code",
  "rpc.grpc.status_code",
  "rpc.user_agent",
  "http.request.body.size",
  "http.response.body.size",
]);

const verbose = process.env.DEMO_VERBOSE === "1";
const processes: ServiceProcess[] = [];
const failures: string[] = [];

const externalEndpoint = process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
const protocol = process.env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL || process.env.OTEL_EXPORTER_OTLP_PROTOCOL;
if (protocol !== undefined && protocol !== "" && protocol !== "http/protobuf") {
  console.log(`demo:polyglot exports OTLP over http/protobuf from all three languages, not ${protocol}`);
  process.exit(1);
}

let build: PolyglotBuild;
try {
  build = await buildPolyglot((line) => console.log(`polyglot: ${line}`));
} catch (err) {
  // A missing toolchain is one line; a failed build names its command and the end of its output.
  const message = err instanceof Error ? err.message : String(err);
  console.log(err instanceof ToolchainError ? `demo:polyglot: ${message}` : `demo:polyglot: build failed: ${message}`);
  process.exit(1);
}

const watchdog = setTimeout(() => {
  console.log(`demo failed: not finished after ${DEMO_TIMEOUT_MS} ms`);
  for (const p of processes) {
    void p.stop(0);
  }
  process.exitCode = 1;
  setTimeout(() => process.exit(1), 1000).unref();
}, DEMO_TIMEOUT_MS);
watchdog.unref();

let receiver: OtlpReceiver | undefined;
const telemetryEnv: Record<string, string> = {
  OTEL_TRACES_EXPORTER: "otlp",
  OTEL_METRICS_EXPORTER: "none",
  OTEL_LOGS_EXPORTER: "none",
  OTEL_EXPORTER_OTLP_PROTOCOL: "http/protobuf",
};
if (externalEndpoint === undefined || externalEndpoint === "") {
  receiver = await startOtlpReceiver({ host: LOOPBACK });
  Object.assign(telemetryEnv, {
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
    // The checks expect every trace; a sampler from the environment is kept, at their risk.
    OTEL_TRACES_SAMPLER: process.env.OTEL_TRACES_SAMPLER || "parentbased_always_on",
  });
}

await runToEnd({ processes, receiver, watchdog, failures, verbose }, () => runDemo(build));

async function runDemo(build: PolyglotBuild): Promise<void> {
  const ports = new Set<number>();
  while (ports.size < 3) {
    ports.add(await freePort(LOOPBACK));
  }
  const [paymentPort, userPort, gatewayPort] = [...ports] as [number, number, number];
  const [paymentUrl, userUrl, gatewayUrl] = [paymentPort, userPort, gatewayPort].map(loopbackUrl) as [
    string,
    string,
    string,
  ];
  const started = (p: ServiceProcess) => {
    processes.push(p);
    if (verbose) {
      void p.exited.then(() => console.error(p.output()));
    }
  };
  const start = (program: Parameters<typeof startServer>[1], name: string, port: number, env: Record<string, string>) =>
    startServer(
      build,
      program,
      { name, port, env: { ...telemetryEnv, OTEL_SERVICE_NAME: name, ...env }, readyTimeoutMs: READY_TIMEOUT_MS },
      started,
    );
  await Promise.all([
    start("services-python", SERVICES.payment, paymentPort, {}),
    start("user-service-ts", SERVICES.user, userPort, { PAYMENT_SERVICE_URL: paymentUrl }),
    start("gateway-go", SERVICES.gateway, gatewayPort, { USER_SERVICE_URL: userUrl, PAYMENT_SERVICE_URL: paymentUrl }),
  ]);
  const up = [
    [SERVICES.gateway, gatewayUrl],
    [SERVICES.user, userUrl],
    [SERVICES.payment, paymentUrl],
  ].map(([name, url]) => `${name} (${SERVICE_LANGUAGES[name as string]}) ${url}`);
  console.log(`course system up: ${up.join(", ")}`);

  failures.push(...(await runSteps(gatewayUrl, POLYGLOT_SCENARIO, STEP_TIMEOUT_MS)));
  // SIGTERM: each process stops serving and flushes its spans before exiting.
  failures.push(...(await stopProcesses(processes)));

  if (receiver === undefined) {
    console.log(
      `spans sent to ${externalEndpoint} (OTLP http/protobuf); open your tracing backend to see the ${POLYGLOT_SCENARIO.length} traces`,
    );
    return;
  }
  const spans = await settledSpans(receiver, SPANS_TIMEOUT_MS);
  if (process.env.DEMO_SPANS_FILE) {
    await writeFile(process.env.DEMO_SPANS_FILE, JSON.stringify(spans));
  }
  console.log(`received ${spans.length} spans\n`);
  process.stdout.write(
    renderWaterfall(labelledWithLanguage(spans), { statusOf: anyStackStatusCode, showAttribute: isShown }),
  );
  console.log();
  const failed = printChecks(checkPolyglotTraces(spans, POLYGLOT_SCENARIO));
  if (failed > 0) {
    failures.push(`${failed} trace checks failed`);
  }
  if (receiver.rejected() > 0) {
    failures.push(`the receiver rejected ${receiver.rejected()} export requests`);
  }
}

function isShown(key: string, value: AttributeValue, span: SpanRecord): boolean {
  return !PEER_ROUTINE_KEYS.has(key) && isNotableAttribute(key, value, span);
}
