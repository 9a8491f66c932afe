import { join } from "node:path";
import { LOOPBACK } from "../config.js";
import { type ServiceProcess, startCommand, waitForPort } from "../processes.js";
import { type PolyglotBuild, REPO_ROOT } from "./build.js";
import type { Language } from "./matrix-plan.js";

/**
 * How to run each program of the polyglot system: the Go binaries of ./build.ts, the Python
 * scripts in the virtual environment, and the TypeScript demo's own services and the TypeScript
 * matrix client with tsx, all from the repository root.
 */

/** The servers of the polyglot system. */
export type ServerProgram = "gateway-go" | "services-go" | "services-python" | "user-service-ts" | "payment-service-ts";

/** A command line. */
export interface Command {
  command: string;
  args: string[];
  /** Variables the program needs besides the caller's. */
  env: Record<string, string>;
}

/** The variable in which each server takes its port. */
export const PORT_VARIABLES: Readonly<Record<ServerProgram, string>> = {
  "gateway-go": "GATEWAY_PORT",
  "services-go": "GRPC_PORT",
  "services-python": "GRPC_PORT",
  "user-service-ts": "USER_SERVICE_PORT",
  "payment-service-ts": "PAYMENT_SERVICE_PORT",
};

/** The command line of a server. */
export function serverCommand(build: PolyglotBuild, program: ServerProgram): Command {
  switch (program) {
    case "gateway-go":
      return { command: build.goBinaries.gateway, args: [], env: {} };
    case "services-go":
      return { command: build.goBinaries.services, args: [], env: {} };
    case "services-python":
      return python(build, "services.py");
    case "user-service-ts":
      return tsx("examples/user-service.ts");
    case "payment-service-ts":
      return tsx("examples/payment-service.ts");
  }
}

/** The command line of the matrix client of a language (see ./matrix-plan.ts). */
export function matrixClientCommand(build: PolyglotBuild, language: Language): Command {
  switch (language) {
    case "go":
      return { command: build.goBinaries.matrixClient, args: [], env: {} };
    case "python":
      return python(build, "matrix_client.py");
    case "ts":
      return tsx("examples/polyglot/matrix-client.ts");
  }
}

/**
 * Starts a server on `port` of loopback and waits until it accepts connections.
 *
 * @param name label of the process in reports
 * @param env variables for it (the OpenTelemetry ones, `OTEL_SERVICE_NAME`, upstream URLs)
 * @param started receives the process as soon as it runs, so that the caller can stop it even
 *   when it never listens
 * @throws {Error} when it exits before listening or is not listening after `readyTimeoutMs`
 */
export async function startServer(
  build: PolyglotBuild,
  program: ServerProgram,
  options: { name: string; port: number; env: Record<string, string>; readyTimeoutMs: number },
  started: (process: ServiceProcess) => void,
): Promise<ServiceProcess> {
  const { command, args, env } = serverCommand(build, program);
  const child = startCommand(
    options.name,
    command,
    args,
    { ...options.env, ...env, [PORT_VARIABLES[program]]: String(options.port) },
    REPO_ROOT,
  );
  started(child);
  await waitForPort(options.name, LOOPBACK, options.port, options.readyTimeoutMs, child.exited);
  return child;
}

function python(build: PolyglotBuild, script: string): Command {
  return {
    command: build.python,
    args: [join(REPO_ROOT, "examples", "polyglot", "python", script)],
    // Unbuffered: the output of a process that is killed still shows in a failure report. No
    // __pycache__ beside the sources.
    env: { PYTHONPATH: build.pythonPath, PYTHONUNBUFFERED: "1", PYTHONDONTWRITEBYTECODE: "1" },
  };
}

function tsx(script: string): Command {
  return { command: process.execPath, args: ["--import", "tsx", join(REPO_ROOT, script)], env: {} };
}
