import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { promisify } from "node:util";

/**
 * What the polyglot system needs besides Node: Go at least at the version of the `go` line of
 * go/go.mod (the modules it pins require it), and Python 3 at least at {@link MIN_PYTHON} (what the
 * pinned grpcio and OpenTelemetry packages require) with the `venv` and `ensurepip` modules (Debian
 * splits them into the python3-venv package). Found on `PATH` as `go` and `python3`, or where the
 * `GO` and `PYTHON` environment variables point.
 */

/** The oldest Python the pinned packages of python/requirements.txt install on (their Requires-Python). */
export const MIN_PYTHON = "3.10";

/** The toolchains found. */
export interface Toolchains {
  /** The `go` command and its version, e.g. `1.26.8`. */
  go: { command: string; version: string };
  /** The `python3` command and its version, e.g. `3.11.7`. */
  python: { command: string; version: string };
}

/** A toolchain is missing or too old; the message is one line that says what is needed. */
export class ToolchainError extends Error {}

const execFileAsync = promisify(execFile);
const goMod = new URL("./go/go.mod", import.meta.url);

/**
 * Finds Go and Python and checks their versions.
 *
 * @throws {ToolchainError} naming what is needed and what was found
 */
export async function requireToolchains(): Promise<Toolchains> {
  const minGo = await goModVersion();
  const go = process.env.GO || "go";
  const python = process.env.PYTHON || "python3";
  const goNeed = `Go >= ${minGo} (the go line of examples/polyglot/go/go.mod)`;
  const pythonNeed = `Python >= ${MIN_PYTHON} with venv (Debian: apt-get install python3-venv)`;

  const goVersion = (await output(go, ["env", "GOVERSION"], goNeed)).replace(/^go/, "");
  if (compareVersions(goVersion, minGo) < 0) {
    throw new ToolchainError(`the polyglot system needs ${goNeed}; ${go} is go${goVersion}`);
  }
  const probe = "import sys, venv, ensurepip; print('%d.%d.%d' % sys.version_info[:3])";
  const pythonVersion = await output(python, ["-c", probe], pythonNeed);
  if (compareVersions(pythonVersion, MIN_PYTHON) < 0) {
    throw new ToolchainError(`the polyglot system needs ${pythonNeed}; ${python} is ${pythonVersion}`);
  }
  return { go: { command: go, version: goVersion }, python: { command: python, version: pythonVersion } };
}

/** The version of the `go` line of go/go.mod, e.g. `1.26.0`. */
export async function goModVersion(): Promise<string> {
  const match = /^go\s+(\d+(?:\.\d+)*)\s*$/m.exec(await readFile(goMod, "utf8"));
  if (match?.[1] === undefined) throw new Error("examples/polyglot/go/go.mod has no go line");
  return match[1];
}

/**
 * Compares dotted version numbers (`1.26.8`, `3.10`), missing parts counting as 0; anything after
 * the numbers (`rc1`) is ignored.
 *
 * @returns negative, 0 or positive as `a` is older than, equal to or newer than `b`
 */
export function compareVersions(a: string, b: string): number {
  const parts = (v: string) => (/^\d+(?:\.\d+)*/.exec(v)?.[0] ?? "0").split(".").map(Number);
  const [pa, pb] = [parts(a), parts(b)];
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

async function output(command: string, args: string[], need: string): Promise<string> {
  try {
    // From a neutral directory: inside a Go module, an older go would fetch the module's toolchain.
    const { stdout } = await execFileAsync(command, args, { timeout: 60_000, cwd: tmpdir() });
    return stdout.trim();
  } catch (err) {
    const reason =
      (err as NodeJS.ErrnoException).code === "ENOENT"
        ? `${command} was not found`
        : `${command} ${args[0]} failed: ${lastLine(err)}`;
    throw new ToolchainError(`the polyglot system needs ${need}; ${reason}`);
  }
}

/** The last line of a failed command's standard error, or its exit code. */
function lastLine(err: unknown): string {
  const stderr = (err as { stderr?: string }).stderr?.trim();
  if (stderr) return stderr.split("\n").at(-1) ?? stderr;
  const code = (err as { code?: unknown }).code;
  return typeof code === "number" ? `exit code ${code}` : err instanceof Error ? err.message : String(err);
}
