import type { ChildProcessWithoutNullStreams } from "node:child_process";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { childEnv, repoRoot, run, runOk } from "./plugin-harness.js";
import { HANG_GUARD_MS } from "./signals.js";

/**
 * Test peers written in Go: a module per peer in test/peers/<name>/ (go.mod and go.sum pin every
 * module), built the way the polyglot example builds its Go programs (examples/polyglot/build.ts):
 * modules from the Go module proxy, `GOTOOLCHAIN=local` (a Go older than go.mod's `go` line fails
 * instead of downloading a toolchain), `go build` into the gitignored test/peers/.build/bin/,
 * incremental through Go's build cache. The `go` command is `GO` from the environment, else `go` on
 * `PATH`. Run directly — `tsx test/support/go-peer.ts opencensus-go` — it builds, as .ci/run does
 * before the tests, so that a test's own build finds everything cached.
 */

/** Where the peers' modules are. */
export const PEERS_DIR: string = path.join(repoRoot, "test", "peers");

/** A first build compiles gRPC on a busy 2-core machine; this only guards against a hang. */
const BUILD_TIMEOUT_MS = 15 * 60_000;

/**
 * Builds the peer `name` (test/peers/<name>/) and returns the absolute path of its binary,
 * test/peers/.build/bin/<name>.
 *
 * @throws Error naming what is needed when `go` is missing, or the failed command with its output
 */
export async function buildGoPeer(name: string): Promise<string> {
  const go = process.env.GO || "go";
  const env = childEnv([], { GOTOOLCHAIN: process.env.GOTOOLCHAIN || "local" });
  // from a neutral directory: inside a module, an older go would look at the module's toolchain
  const probe = await run(go, ["env", "GOVERSION"], { cwd: tmpdir(), env, timeoutMs: HANG_GUARD_MS }).catch(
    (error: unknown) => error as Error,
  );
  if (probe instanceof Error || probe.code !== 0) {
    const reason = probe instanceof Error ? probe.message : probe.stderr.trim();
    throw new Error(
      `test peer ${name} needs Go (the go line of test/peers/${name}/go.mod) on PATH or in GO: ${reason}`,
    );
  }
  const binary = path.join(PEERS_DIR, ".build", "bin", name);
  await runOk(go, ["build", "-o", binary, "."], { cwd: path.join(PEERS_DIR, name), env, timeoutMs: BUILD_TIMEOUT_MS });
  return binary;
}

/** A peer process that serves on loopback and writes one line per event on its stdout. */
export interface PeerProcess {
  /** The port it printed in its `listening <port>` line. */
  readonly port: number;
  /** Every stdout line after the `listening` line, so far. */
  readonly lines: readonly string[];
  /** Closes its stdin, which makes it exit; kills it if it has not exited within the hang guard. */
  stop(): Promise<void>;
}

/**
 * Starts `binary args` and waits (bounded by {@link HANG_GUARD_MS}) for its `listening <port>`
 * line. The peer exits when its stdin closes: with {@link PeerProcess.stop}, or when this process
 * ends.
 *
 * @throws Error if it exits or stays silent before listening, with its stderr
 */
export async function startPeerProcess(binary: string, args: readonly string[]): Promise<PeerProcess> {
  const child: ChildProcessWithoutNullStreams = spawn(binary, args, { stdio: ["pipe", "pipe", "pipe"] });
  const exited = once(child, "exit");
  exited.catch(() => {});
  const lines: string[] = [];
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
    stderr = (stderr + chunk).slice(-4000);
  });
  const port = await new Promise<number>((resolve, reject) => {
    let buffered = "";
    let port: number | undefined;
    const timer = setTimeout(
      () => reject(new Error(`${binary} silent for ${HANG_GUARD_MS} ms: ${stderr}`)),
      HANG_GUARD_MS,
    );
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${binary} exited before listening (${code ?? signal}): ${stderr}`));
    });
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      buffered += chunk;
      for (let newline = buffered.indexOf("\n"); newline >= 0; newline = buffered.indexOf("\n")) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        if (port !== undefined) {
          lines.push(line);
          continue;
        }
        const match = /^listening (\d+)$/.exec(line);
        if (match === null) continue;
        port = Number(match[1]);
        clearTimeout(timer);
        resolve(port);
      }
    });
  }).catch((error: unknown) => {
    child.kill("SIGKILL");
    throw error;
  });
  return {
    port,
    lines,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.stdin.end();
      const timer = setTimeout(() => child.kill("SIGKILL"), HANG_GUARD_MS);
      await exited;
      clearTimeout(timer);
    },
  };
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const names = process.argv.slice(2);
  try {
    for (const name of names) console.log(`built ${path.relative(repoRoot, await buildGoPeer(name))}`);
  } catch (error) {
    console.error(error instanceof Error ? error.message : String(error));
    process.exitCode = 1;
  }
}
