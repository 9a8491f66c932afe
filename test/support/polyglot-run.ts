import { LOOPBACK, loopbackUrl } from "../../examples/config.js";
import { settledSpans } from "../../examples/demo-steps.js";
import { type OtlpReceiver, startOtlpReceiver } from "../../examples/otlp-receiver.js";
import { type PolyglotBuild, REPO_ROOT } from "../../examples/polyglot/build.js";
import {
  LANGUAGES,
  type Language,
  type MatrixPlan,
  type MatrixResult,
  type MatrixTarget,
  parseMatrixResults,
} from "../../examples/polyglot/matrix-plan.js";
import {
  type Command,
  matrixClientCommand,
  type ServerProgram,
  startServer,
} from "../../examples/polyglot/programs.js";
import { freePort, type ServiceProcess } from "../../examples/processes.js";
import type { SpanRecord } from "../../examples/span-record.js";
import { runToEnd } from "./plugin-harness.js";

/**
 * One run of the polyglot matrix on loopback: an OTLP receiver, the servers of the three languages
 * (the Go and the Python `services`, which serve UserService and PaymentService on one port, and the
 * TypeScript demo's user-service and payment-service), then the matrix client of each language in
 * turn (see examples/polyglot/matrix-plan.ts), then the servers' shutdown, which flushes their
 * spans. Everything is bounded: the processes' readiness, each client run, the span flush.
 */

/** Where the servers of one language serve. */
export interface LanguageServers {
  userUrl: string;
  paymentUrl: string;
}

/** What {@link runPolyglotMatrix} returns. */
export interface PolyglotRun {
  /** Every client's results, in the order the clients ran (go, python, ts). */
  results: MatrixResult[];
  /** Every span the receiver got. */
  spans: SpanRecord[];
  servers: Record<Language, LanguageServers>;
  /** A URL of loopback where nothing listens: a payment service that is down. */
  deadUrl: string;
  /** Export requests the receiver rejected. */
  rejected: number;
  /** Problems of the run itself (a server that did not exit 0, a client that failed), empty when none. */
  problems: string[];
  /** The processes' output, for a failure report. */
  output: string;
}

/** Options of {@link runPolyglotMatrix}. */
export interface MatrixRunOptions {
  /** `OTEL_SEMCONV_STABILITY_OPT_IN` for every process (empty: each stack's default). */
  semconvOptIn: string;
  /** The targets each client calls, given where the servers are. */
  targets(servers: Record<Language, LanguageServers>, deadUrl: string): MatrixTarget[];
  /** Timeout of the `deadline` calls, ms. */
  deadlineMs: number;
  /** Bursts and calls per burst of untraced control calls (matrix-plan.ts). */
  controlTries: number;
  controlBurst: number;
}

/** How long a server may take to listen, ms: tsx compiles on start, Python imports grpcio; a busy machine. */
const READY_TIMEOUT_MS = 60_000;
/** Hang guard of one client run, ms. */
const CLIENT_TIMEOUT_MS = 180_000;
/** How long to wait for spans after the servers stopped, ms. */
const SPANS_TIMEOUT_MS = 10_000;

/** The servers of each language: program, `service.name`, and whether it is a user or a payment service. */
const SERVERS: readonly {
  language: Language;
  program: ServerProgram;
  name: string;
  serves: "both" | "user" | "payment";
}[] = [
  { language: "go", program: "services-go", name: "server-go", serves: "both" },
  { language: "python", program: "services-python", name: "server-python", serves: "both" },
  { language: "ts", program: "payment-service-ts", name: "server-ts-payment", serves: "payment" },
  { language: "ts", program: "user-service-ts", name: "server-ts-user", serves: "user" },
];

/** `service.name` of each language's servers: for TypeScript, the user-service and the payment-service. */
export const SERVER_NAMES: Readonly<Record<Language, { user: string; payment: string }>> = {
  go: { user: "server-go", payment: "server-go" },
  python: { user: "server-python", payment: "server-python" },
  ts: { user: "server-ts-user", payment: "server-ts-payment" },
};

/** `service.name` of the matrix client of a language. */
export function clientName(language: Language): string {
  return `client-${language}`;
}

/** Runs the matrix once (see above). Stops every process it started, also when it throws. */
export async function runPolyglotMatrix(build: PolyglotBuild, options: MatrixRunOptions): Promise<PolyglotRun> {
  const receiver: OtlpReceiver = await startOtlpReceiver({ host: LOOPBACK });
  const processes: ServiceProcess[] = [];
  const clientOutput: string[] = [];
  const problems: string[] = [];
  try {
    const ports = new Set<number>();
    while (ports.size < SERVERS.length + 1) ports.add(await freePort(LOOPBACK));
    const [deadPort, ...serverPorts] = [...ports] as [number, ...number[]];
    const env: Record<string, string> = {
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_EXPORTER_OTLP_PROTOCOL: "http/protobuf",
      OTEL_TRACES_EXPORTER: "otlp",
      OTEL_METRICS_EXPORTER: "none",
      OTEL_LOGS_EXPORTER: "none",
      OTEL_TRACES_SAMPLER: "parentbased_always_on",
      OTEL_SEMCONV_STABILITY_OPT_IN: options.semconvOptIn,
    };
    const urlOf = (serves: "user" | "payment", language: Language) => {
      const i = SERVERS.findIndex((s) => s.language === language && (s.serves === serves || s.serves === "both"));
      return loopbackUrl(serverPorts[i] as number);
    };
    const servers = Object.fromEntries(
      LANGUAGES.map((l) => [l, { userUrl: urlOf("user", l), paymentUrl: urlOf("payment", l) }]),
    ) as Record<Language, LanguageServers>;
    await Promise.all(
      SERVERS.map((s, i) =>
        startServer(
          build,
          s.program,
          {
            name: s.name,
            port: serverPorts[i] as number,
            // The user services call their own language's payment service from StreamUsers.
            env: { ...env, OTEL_SERVICE_NAME: s.name, PAYMENT_SERVICE_URL: servers[s.language].paymentUrl },
            readyTimeoutMs: READY_TIMEOUT_MS,
          },
          (p) => processes.push(p),
        ),
      ),
    );

    const deadUrl = loopbackUrl(deadPort);
    const results: MatrixResult[] = [];
    for (const client of LANGUAGES) {
      const plan: MatrixPlan = {
        client,
        deadlineMs: options.deadlineMs,
        controlTries: options.controlTries,
        controlBurst: options.controlBurst,
        targets: options.targets(servers, deadUrl),
      };
      const command = matrixClientCommand(build, client);
      const run = await runClient(command, {
        ...env,
        OTEL_SERVICE_NAME: clientName(client),
        MATRIX_PLAN: JSON.stringify(plan),
      });
      clientOutput.push(`[${clientName(client)}] exit ${run.code}\n${run.stdout}${run.stderr}`);
      if (run.code !== 0) problems.push(`${clientName(client)} exited with ${run.code}: ${run.stderr.trim()}`);
      results.push(...parseMatrixResults(run.stdout));
    }

    const codes = await Promise.all(processes.map((p) => p.stop()));
    codes.forEach((code, i) => {
      if (code !== 0) problems.push(`${processes[i]?.name} exited with ${code} after SIGTERM`);
    });
    const spans = await settledSpans(receiver, SPANS_TIMEOUT_MS);
    return {
      results,
      spans,
      servers,
      deadUrl,
      rejected: receiver.rejected(),
      problems,
      output: [...processes.map((p) => p.output()), ...clientOutput].join("\n"),
    };
  } finally {
    await Promise.all(processes.map((p) => p.stop()));
    await receiver.close();
  }
}

/**
 * Runs a matrix client to its end with `env` added, stdin closed; kills it after
 * {@link CLIENT_TIMEOUT_MS}. A client that cannot start ends with code `spawn-error`.
 */
async function runClient(
  command: Command,
  env: Record<string, string>,
): Promise<{ code: number | string; stdout: string; stderr: string }> {
  const ended = await runToEnd(command.command, command.args, {
    cwd: REPO_ROOT,
    env: { ...process.env, ...env, ...command.env },
    timeoutMs: CLIENT_TIMEOUT_MS,
  });
  if (ended.error !== undefined) {
    return { code: "spawn-error", stdout: ended.stdout, stderr: `${ended.stderr}${ended.error}` };
  }
  return { code: ended.code ?? ended.signal ?? "unknown", stdout: ended.stdout, stderr: ended.stderr };
}
