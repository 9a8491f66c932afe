import type { ChildProcess } from "node:child_process";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import type { Transport } from "@connectrpc/connect";
import type { Wire } from "./servers.js";
import { HANG_GUARD_MS } from "./signals.js";
import { transportWith } from "./transports.js";

/** The scenario service served by a child process on loopback, for faults a process has: being killed. */
export interface ServerProcess {
  readonly baseUrl: string;
  /** A new transport of the wire's protocol to the child's server. */
  transport(): Transport;
  /** Kills the child with SIGKILL (no cleanup: open connections are reset by the kernel); resolves on exit. */
  kill(): Promise<void>;
}

const main = fileURLToPath(new URL("./server-process-main.ts", import.meta.url));
const root = fileURLToPath(new URL("../..", import.meta.url));

/**
 * Starts `server-process-main.ts` with the running Node (`process.execPath --import tsx`) for
 * `wire` and waits (at most `timeoutMs`, a hang guard, {@link HANG_GUARD_MS} by default) for the
 * line naming its base URL.
 *
 * @throws Error if the child exits or stays silent before it listens.
 */
export async function startServerProcess(wire: Wire, timeoutMs = HANG_GUARD_MS): Promise<ServerProcess> {
  const child = spawn(process.execPath, ["--import", "tsx", main, JSON.stringify(wire)], {
    cwd: root,
    // the child exits when this pipe closes, which it does when this process ends
    stdio: ["pipe", "pipe", "inherit"],
  });
  const exited = once(child, "exit");
  try {
    const baseUrl = await readBaseUrl(child, timeoutMs);
    return {
      baseUrl,
      transport: () => transportWith(wire, baseUrl, []),
      async kill() {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill("SIGKILL");
          await exited;
        }
      },
    };
  } catch (error) {
    child.kill("SIGKILL");
    throw error;
  }
}

function readBaseUrl(child: ChildProcess, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let buffered = "";
    const timer = setTimeout(() => reject(new Error(`server process silent for ${timeoutMs} ms`)), timeoutMs);
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`server process exited before listening (code ${code}, signal ${signal})`));
    });
    child.stdout?.setEncoding("utf8");
    child.stdout?.on("data", (chunk: string) => {
      buffered += chunk;
      const newline = buffered.indexOf("\n");
      if (newline < 0) return;
      clearTimeout(timer);
      resolve((JSON.parse(buffered.slice(0, newline)) as { baseUrl: string }).baseUrl);
    });
  });
}
