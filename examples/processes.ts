import { type ChildProcess, spawn } from "node:child_process";
import { type AddressInfo, connect, createServer } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";

/**
 * The demos' child processes: TypeScript entry points run by the current Node binary with tsx's
 * loader, or any other program (the polyglot demo's Go binaries and Python scripts), their output
 * kept for a failure report, readiness found by polling their TCP port.
 */

/** A running child process. */
export interface ServiceProcess {
  readonly name: string;
  readonly pid: number | undefined;
  /** The last lines the process wrote to stdout and stderr, interleaved, at most 200. */
  output(): string;
  /** Resolves with the exit code (or the signal name) when the process has exited. */
  readonly exited: Promise<number | string>;
  /**
   * Sends SIGTERM and waits for the exit; sends SIGKILL after `timeoutMs` (default 10000 ms).
   * Resolves with the exit code or signal name.
   */
  stop(timeoutMs?: number): Promise<number | string>;
}

const MAX_OUTPUT_LINES = 200;

/**
 * Starts `node --import tsx <script>` with `env` added to this process's environment, and
 * `EXIT_ON_STDIN_CLOSE=1` with a pipe as standard input.
 *
 * @param name a label for reports, e.g. `gateway`
 * @param script absolute path of the entry point
 * @param cwd working directory, where `tsx` resolves from
 */
export function startProcess(name: string, script: string, env: Record<string, string>, cwd: string): ServiceProcess {
  return startCommand(name, process.execPath, ["--import", "tsx", script], env, cwd);
}

/**
 * Starts `command` with `args`, as {@link startProcess} starts a script: `env` added to this
 * process's environment, `EXIT_ON_STDIN_CLOSE=1` and a pipe as standard input. A command that
 * cannot be started (not found) exits with `spawn-error` and says why in its output.
 *
 * @param name a label for reports, e.g. `gateway`
 * @param command the program, a path or a name found on `PATH`
 * @param cwd working directory
 */
export function startCommand(
  name: string,
  command: string,
  args: readonly string[],
  env: Record<string, string>,
  cwd: string,
): ServiceProcess {
  const child: ChildProcess = spawn(command, args, {
    cwd,
    env: { ...process.env, ...env, EXIT_ON_STDIN_CLOSE: "1" },
    // The child stops when this pipe closes, also when this process dies (see exitOnSignal).
    stdio: ["pipe", "pipe", "pipe"],
  });
  const lines: string[] = [];
  const collect = (stream: NodeJS.ReadableStream | null) => {
    let partial = "";
    stream?.setEncoding("utf8");
    stream?.on("data", (chunk: string) => {
      const parts = (partial + chunk).split("\n");
      partial = parts.pop() ?? "";
      lines.push(...parts);
      lines.splice(0, Math.max(0, lines.length - MAX_OUTPUT_LINES));
    });
    stream?.on("end", () => {
      if (partial !== "") lines.push(partial);
    });
  };
  collect(child.stdout);
  collect(child.stderr);
  const exited = new Promise<number | string>((resolve) => {
    child.once("exit", (code, signal) => resolve(code ?? signal ?? "unknown"));
    child.once("error", (err) => {
      lines.push(`spawn failed: ${err.message}`);
      resolve("spawn-error");
    });
  });
  return {
    name,
    pid: child.pid,
    output: () => lines.map((l) => `[${name}] ${l}`).join("\n"),
    exited,
    async stop(timeoutMs = 10_000) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
      }
      const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

/**
 * Finds a free TCP port on `host` by binding port 0 and releasing it. Another process may take
 * the port before it is used again; the demo accepts that small race for simple configuration.
 */
export function freePort(host = "127.0.0.1"): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, host, () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/**
 * Polls until `host:port` accepts a TCP connection, every 100 ms.
 *
 * @param abandon when it settles first (a process exited), polling stops with an error
 * @throws {Error} `<what> not ready on <host>:<port> after <timeoutMs> ms` on timeout
 */
export async function waitForPort(
  what: string,
  host: string,
  port: number,
  timeoutMs: number,
  abandon?: Promise<unknown>,
): Promise<void> {
  let abandoned = false;
  void abandon?.then(() => {
    abandoned = true;
  });
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (abandoned) {
      throw new Error(`${what} exited before listening on ${host}:${port}`);
    }
    if (await canConnect(host, port)) {
      return;
    }
    await sleep(100);
  }
  throw new Error(`${what} not ready on ${host}:${port} after ${timeoutMs} ms`);
}

function canConnect(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    socket.setTimeout(1000);
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("timeout", () => {
      socket.destroy();
      resolve(false);
    });
    socket.once("error", () => resolve(false));
  });
}
