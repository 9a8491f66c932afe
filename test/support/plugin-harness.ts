import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import * as path from "node:path";
import { fileURLToPath } from "node:url";

/** Absolute path of the repository root (this file lives in `<repo>/test/support/`). */
export const repoRoot: string = fileURLToPath(new URL("../../", import.meta.url)).replace(/[\\/]$/, "");

/** The repository's `node_modules/.bin`, where buf, protoc-gen-es, tsc and Node 24 live. */
export const repoBin: string = path.join(repoRoot, "node_modules", ".bin");

/** The buf CLI of the repository's `@bufbuild/buf` dependency. */
export const bufBin: string = path.join(repoBin, "buf");

/** protoc-gen-es of the repository's `@bufbuild/protoc-gen-es` dependency. */
export const protocGenEsBin: string = path.join(repoBin, "protoc-gen-es");

/** The workspace of the runtime package `connect-otel`. */
export const runtimeDir: string = path.join(repoRoot, "src", "connect-otel");

/** The workspace of the plugin package `protoc-gen-connect-otel`. */
export const pluginDir: string = path.join(repoRoot, "src", "protoc-gen-connect-otel");

/** The built plugin executable, the `bin` of the plugin package. */
export const pluginBin: string = path.join(pluginDir, "dist", "bin", "protoc-gen-connect-otel.js");

/** Declarations of the runtime's ESM build, which type checks of generated code resolve `connect-otel` to. */
export const runtimeTypes: string = path.join(runtimeDir, "dist", "esm", "index.d.ts");

/**
 * Throws a message that says what to do when a package's `dist/` is missing: the plugin binary and the
 * `.d.ts` of the runtime are read from there, and `npm test` builds them before vitest runs.
 */
export function requireDist(): void {
  const needed = [pluginBin, path.join(runtimeDir, "dist", "esm", "index.js"), runtimeTypes];
  const missing = needed.filter((p) => !existsSync(p));
  if (missing.length > 0) {
    throw new Error(
      `the packages are not built (missing ${missing.map((p) => path.relative(repoRoot, p)).join(", ")}): run \`npm run build\` first (\`npm test\` does)`,
    );
  }
}

/**
 * Environment for child processes: the repository's `node_modules/.bin` first on PATH, so that
 * `node` is the repository's Node 24 and buf finds `protoc-gen-es` without relying on the caller's
 * PATH. `extraPath` entries go before it.
 */
export function childEnv(extraPath: readonly string[] = [], extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  env.PATH = [...extraPath, repoBin, path.dirname(process.execPath), process.env.PATH ?? ""].join(path.delimiter);
  return env;
}

/**
 * How long a child process of a test (buf, protoc, a plugin, tsc, node, npm) may run before the
 * test calls it hung: sized for a first run on a 2-core machine that runs other CPU-heavy work at
 * the same time. A guard against hangs, never a speed check: processes end when they are done.
 */
export const PROCESS_HANG_GUARD_MS = 10 * 60_000;

/**
 * Timeout of a vitest test or hook whose work runs child processes one after another (a few at
 * most): the process guard plus a margin, so that a hung process is reported by the process guard,
 * with its output, rather than by vitest.
 */
export const PROCESS_TEST_TIMEOUT_MS = 2 * PROCESS_HANG_GUARD_MS + 60_000;

/** What a finished child process left behind. */
export interface RunResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  /** stdout as bytes, for binary output such as a CodeGeneratorResponse. */
  readonly stdoutBytes: Uint8Array;
  readonly stderr: string;
}

export interface RunOptions {
  readonly cwd?: string;
  readonly env?: NodeJS.ProcessEnv;
  /** Kill the process (SIGKILL) after this many milliseconds, a hang guard. Default {@link PROCESS_HANG_GUARD_MS}. */
  readonly timeoutMs?: number;
  readonly input?: Uint8Array;
}

/** Runs `command args` without a shell and collects its output; never rejects on a non-zero exit. */
export function run(command: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const timeoutMs = options.timeoutMs ?? PROCESS_HANG_GUARD_MS;
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd ?? repoRoot,
      env: options.env ?? childEnv(),
      stdio: ["pipe", "pipe", "pipe"],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (b: Buffer) => out.push(b));
    child.stderr.on("data", (b: Buffer) => err.push(b));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, timeoutMs);
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${command}: ${e.message}`));
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      const stdoutBytes = Buffer.concat(out);
      const result = {
        code,
        signal,
        stdout: stdoutBytes.toString("utf8"),
        stdoutBytes,
        stderr: Buffer.concat(err).toString("utf8"),
      };
      if (timedOut) {
        reject(new Error(`${describe(command, args)} timed out after ${timeoutMs} ms\n${result.stderr}`));
      } else {
        resolve(result);
      }
    });
    child.stdin.end(options.input ?? null);
  });
}

/** How a child process of {@link runToEnd} ended, with all it wrote. */
export interface Ended {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  /** Why the process could not be started (spawn's `error`); then it ran nothing. */
  readonly error?: string;
}

/**
 * Runs `command args` with stdin closed until it ends, collecting its output as text; kills it
 * (SIGKILL) after `timeoutMs`, a hang guard. Unlike {@link run} it never rejects, so that a caller
 * can report what a process that hung or failed to start wrote before it ended.
 */
export function runToEnd(
  command: string,
  args: readonly string[],
  options: { readonly cwd: string; readonly env: NodeJS.ProcessEnv; readonly timeoutMs: number },
): Promise<Ended> {
  return new Promise((resolve) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env,
      stdio: ["ignore", "pipe", "pipe"],
      timeout: options.timeoutMs,
      killSignal: "SIGKILL",
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (c: string) => {
      stdout += c;
    });
    child.stderr.setEncoding("utf8").on("data", (c: string) => {
      stderr += c;
    });
    child.once("error", (err) => resolve({ code: null, signal: null, stdout, stderr, error: err.message }));
    child.once("close", (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** Like `run`, but throws with the command, exit code and output unless it exits 0. */
export async function runOk(command: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const result = await run(command, args, options);
  if (result.code !== 0) {
    throw new Error(
      `${describe(command, args)} exited with ${result.code ?? result.signal}\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`,
    );
  }
  return result;
}

function describe(command: string, args: readonly string[]): string {
  return [path.basename(command), ...args].join(" ");
}

/** A new empty directory `<repo>/.tmp/<prefix>XXXXXX` (inside the repo, so node_modules resolves). */
export async function makeTmpDir(prefix: string): Promise<string> {
  const base = path.join(repoRoot, ".tmp");
  await mkdir(base, { recursive: true });
  return mkdtemp(path.join(base, prefix));
}

/**
 * Removes a directory made by `makeTmpDir`; refuses paths outside `<repo>/.tmp/`. Keeps it when
 * the environment variable `KEEP_TEST_TMP` is `1`, to look at what a failing test produced.
 */
export async function removeTmpDir(dir: string | undefined): Promise<void> {
  if (dir === undefined) return;
  if (process.env.KEEP_TEST_TMP === "1") {
    console.info(`KEEP_TEST_TMP=1: keeping ${dir}`);
    return;
  }
  const base = path.join(repoRoot, ".tmp") + path.sep;
  if (!path.resolve(dir).startsWith(base)) throw new Error(`refusing to remove ${dir}: not under ${base}`);
  await rm(dir, { recursive: true, force: true, maxRetries: 3 });
}

/** Every regular file below `dir`, as sorted `/`-separated paths relative to `dir`. */
export async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)).split(path.sep).join("/"))
    .sort();
}

/** Writes `files` (relative path → content) below `dir`, creating directories. */
export async function writeTree(dir: string, files: Readonly<Record<string, string>>): Promise<void> {
  for (const [name, content] of Object.entries(files)) {
    const file = path.join(dir, name);
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, content);
  }
}

/** One plugin entry of a buf.gen.yaml v2 template. */
export interface TemplatePlugin {
  /** `local:` value: an executable, or a command with arguments. */
  readonly local: string | readonly string[];
  readonly out: string;
  readonly opt: readonly string[];
  /**
   * buf's invocation strategy: `directory` (the default) starts the plugin once per proto
   * directory, `all` once for all files, which is much faster for inputs of many directories.
   */
  readonly strategy?: "directory" | "all";
}

/** A buf.gen.yaml v2 template (JSON is YAML) with these plugins and no inputs (pass them to buf). */
export function bufGenTemplate(plugins: readonly TemplatePlugin[], clean = false): string {
  return `${JSON.stringify({ version: "v2", clean, plugins }, null, 2)}\n`;
}

/**
 * Both plugins, as buf.gen.yaml runs them, with the same options, output directory and
 * invocation strategy: protoc-gen-es from the repository and protoc-gen-connect-otel from dist/.
 */
export function esAndOtelPlugins(
  out: string,
  opt: readonly string[],
  strategy?: TemplatePlugin["strategy"],
): TemplatePlugin[] {
  const how = strategy === undefined ? {} : { strategy };
  return [
    { local: protocGenEsBin, out, opt, ...how },
    { local: ["node", pluginBin], out, opt, ...how },
  ];
}
