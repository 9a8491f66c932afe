import { register } from "node:module";
import type { Instrumentation } from "@opentelemetry/instrumentation";
import { NodeSDK } from "@opentelemetry/sdk-node";

/**
 * OpenTelemetry set-up shared by the demo's processes: the NodeSDK of `@opentelemetry/sdk-node`,
 * configured from the standard environment variables (`OTEL_SERVICE_NAME`,
 * `OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_PROTOCOL`, `OTEL_TRACES_SAMPLER`,
 * `OTEL_TRACES_EXPORTER`, `OTEL_METRICS_EXPORTER`, `OTEL_PROPAGATORS`, `OTEL_RESOURCE_ATTRIBUTES`,
 * ...; see the SDK's README), exporting OTLP (http/protobuf unless the protocol variable says
 * otherwise). With a metrics exporter configured, the SDK registers the global meter provider that
 * connect-otel records its RPC metrics on, exported every `OTEL_METRIC_EXPORT_INTERVAL` and at
 * shutdown.
 */
export interface Telemetry {
  /**
   * Flushes pending spans, exports the metrics a last time and stops the SDK. Resolves when the
   * exporters are done or after `timeoutMs` (default 5000 ms), whichever comes first; never rejects.
   */
  shutdown(timeoutMs?: number): Promise<void>;
}

/** Options of {@link startTelemetry}. */
export interface TelemetryOptions {
  /** `service.name` when `OTEL_SERVICE_NAME` is unset. */
  serviceName: string;
  /**
   * Auto-instrumentations to enable, e.g. `new HttpInstrumentation()`. With any given, the
   * ESM loader hook of `import-in-the-middle` is registered first, so that modules imported
   * *afterwards* (a dynamic `import("node:http")`) are patched. Modules the caller's file imports
   * statically are loaded before this function runs and stay unpatched.
   */
  instrumentations?: Instrumentation[];
}

/**
 * Starts the OpenTelemetry SDK for this process and registers it globally (tracer provider, meter
 * provider when metrics are exported, W3C trace-context and baggage propagators,
 * AsyncLocalStorage context manager). Call it before creating traced clients and services: they
 * take the global providers when they are created.
 *
 * @returns a handle whose `shutdown` flushes the exporters
 */
export function startTelemetry(options: TelemetryOptions): Telemetry {
  const instrumentations = options.instrumentations ?? [];
  if (instrumentations.length > 0) {
    // OpenTelemetry's documented ESM hook (doc/esm-support.md of opentelemetry-js).
    register("@opentelemetry/instrumentation/hook.mjs", import.meta.url);
  }
  const sdk = new NodeSDK({
    // OTEL_SERVICE_NAME, read by the env resource detector, wins over this default.
    ...(process.env.OTEL_SERVICE_NAME ? {} : { serviceName: options.serviceName }),
    instrumentations,
  });
  // sdk.start() enables the instrumentations, whose hooks patch modules on import.
  sdk.start();
  let done: Promise<void> | undefined;
  return {
    shutdown(timeoutMs = 5000) {
      done ??= Promise.race([
        sdk.shutdown().catch((err: unknown) => {
          console.error(`telemetry shutdown failed: ${err instanceof Error ? err.message : String(err)}`);
        }),
        new Promise<void>((resolve) => setTimeout(resolve, timeoutMs).unref()),
      ]);
      return done;
    },
  };
}

/**
 * Exits the process on SIGTERM or SIGINT after `close` (stop serving) and the telemetry flush,
 * exit code 0. A second signal, or `timeoutMs` (default 8000 ms) passing, exits at once with 1.
 *
 * With `EXIT_ON_STDIN_CLOSE=1` in the environment, the end of standard input counts as SIGTERM:
 * the demo sets it and keeps a pipe open to each child, so a child never outlives the demo, even
 * one killed with SIGKILL.
 *
 * @param telemetry the handle from {@link startTelemetry}
 * @param close stops accepting work; its errors are logged, not thrown
 */
export function exitOnSignal(telemetry: Telemetry, close: () => Promise<void> | void, timeoutMs = 8000): void {
  let stopping = false;
  const stop = (reason: string) => {
    if (stopping) {
      process.exit(1);
    }
    stopping = true;
    setTimeout(() => {
      console.error(`shutdown after ${reason} took over ${timeoutMs} ms`);
      process.exit(1);
    }, timeoutMs).unref();
    Promise.resolve()
      .then(close)
      .catch((err: unknown) => console.error(`close failed: ${err instanceof Error ? err.message : String(err)}`))
      .then(() => telemetry.shutdown())
      .then(() => process.exit(0));
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  if (process.env.EXIT_ON_STDIN_CLOSE === "1") {
    process.stdin.on("end", () => stop("end of stdin"));
    process.stdin.resume();
  }
}
