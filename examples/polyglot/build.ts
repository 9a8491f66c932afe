import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { access, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { requireToolchains, type Toolchains } from "./toolchains.js";

/**
 * Builds what the polyglot system is missing, from the repository's own files and the registries:
 *
 * 1. Go: the modules of go/go.mod and go/go.sum (`go mod download`, from the Go module proxy); the
 *    Go code of the course system's schemas in go/gen/ (`buf generate` with the template
 *    ./buf.gen.go.yaml, whose plugins protoc-gen-go and protoc-gen-go-grpc are `tool`s of go.mod);
 *    the binaries gateway, services and matrix-client in .build/bin/ (`go build`, incremental).
 * 2. Python: a virtual environment in .build/venv/ with python/requirements.txt installed (pip,
 *    every version pinned), and the stubs of the schemas in .build/python-gen/ (grpcio-tools'
 *    `grpc_tools.protoc`).
 *
 * Generated code is built, not checked in: go/gen/ and .build/ are gitignored. A step whose inputs
 * did not change since it last succeeded (a SHA-256 of them in .build/stamps/) is skipped; `go
 * build` always runs and rebuilds only what changed. `GOTOOLCHAIN` defaults to `local`, so a Go
 * older than go.mod fails instead of downloading a toolchain.
 *
 * Run directly (`tsx examples/polyglot/build.ts`, as .ci/run does) it builds and prints each step.
 */

/** Where the built programs are. */
export interface PolyglotBuild {
  toolchains: Toolchains;
  /** Absolute paths of the Go binaries. */
  goBinaries: { gateway: string; services: string; matrixClient: string };
  /** The virtual environment's Python interpreter. */
  python: string;
  /** `PYTHONPATH` for the Python programs: python/ and the generated stubs. */
  pythonPath: string;
}

/** The repository's root directory. */
export const REPO_ROOT = fileURLToPath(new URL("../..", import.meta.url));
const here = (path: string) => fileURLToPath(new URL(path, import.meta.url));
const BUILD_DIR = here("./.build");
const GO_DIR = here("./go");
const PYTHON_DIR = here("./python");
const PYTHON_GEN = join(BUILD_DIR, "python-gen");
const VENV = join(BUILD_DIR, "venv");

/** The schemas of the course system, relative to the repository root, and the options proto they import. */
const PROTO_PATHS = ["proto/user/v1", "proto/payment/v1", "src/protoc-gen-connect-otel/proto/connectotel/v1"];
const PROTO_FILES = [
  "proto/user/v1/user.proto",
  "proto/payment/v1/payment.proto",
  "src/protoc-gen-connect-otel/proto/connectotel/v1/options.proto",
];

/**
 * Builds what is missing or out of date (see above).
 *
 * @param log receives one line per step that does work
 * @throws {ToolchainError} from ./toolchains.ts when Go or Python is missing or too old
 * @throws {Error} naming the command that failed, with the end of its output
 */
export async function buildPolyglot(log: (line: string) => void = () => {}): Promise<PolyglotBuild> {
  const toolchains = await requireToolchains();
  const goEnv = { GOTOOLCHAIN: process.env.GOTOOLCHAIN || "local" };
  const go = (args: string[]) => run(toolchains.go.command, args, { cwd: GO_DIR, env: goEnv });
  await mkdir(join(BUILD_DIR, "stamps"), { recursive: true });

  const goInputs = ["examples/polyglot/buf.gen.go.yaml", "examples/polyglot/go/go.mod", "examples/polyglot/go/go.sum"];
  await step("go-gen", [...goInputs, ...PROTO_FILES], log, "go: modules and generated code", async () => {
    await go(["mod", "download"]);
    const buf = join(REPO_ROOT, "node_modules", ".bin", "buf");
    const pathArgs = PROTO_PATHS.flatMap((p) => ["--path", p]);
    await run(buf, ["generate", "--template", "examples/polyglot/buf.gen.go.yaml", ...pathArgs], {
      cwd: REPO_ROOT,
      env: goEnv,
    });
  });
  // No VCS stamp: the binaries are built from a work tree whose git state does not matter to them.
  await go(["build", "-buildvcs=false", "-o", `${join(BUILD_DIR, "bin")}/`, "./cmd/..."]);

  const python = join(VENV, "bin", "python");
  const requirements = "examples/polyglot/python/requirements.txt";
  const venvInputs = [requirements, `python ${toolchains.python.version}`];
  await step("venv", venvInputs, log, "python: virtual environment", async () => {
    await run(toolchains.python.command, ["-m", "venv", "--clear", VENV], { cwd: REPO_ROOT });
    const pip = ["-m", "pip", "install", "--require-virtualenv", "--disable-pip-version-check", "--quiet"];
    await run(python, [...pip, "-r", join(REPO_ROOT, requirements)], { cwd: REPO_ROOT });
  });
  await step("python-gen", [...venvInputs, ...PROTO_FILES], log, "python: generated stubs", async () => {
    await rm(PYTHON_GEN, { recursive: true, force: true });
    await mkdir(PYTHON_GEN, { recursive: true });
    const includes = ["-I", "proto", "-I", "src/protoc-gen-connect-otel/proto"];
    const outputs = [`--python_out=${PYTHON_GEN}`, `--grpc_python_out=${PYTHON_GEN}`];
    const files = ["proto/user/v1/user.proto", "proto/payment/v1/payment.proto", "connectotel/v1/options.proto"];
    await run(python, ["-m", "grpc_tools.protoc", ...includes, ...outputs, ...files], { cwd: REPO_ROOT });
  });

  return {
    toolchains,
    goBinaries: {
      gateway: join(BUILD_DIR, "bin", "gateway"),
      services: join(BUILD_DIR, "bin", "services"),
      matrixClient: join(BUILD_DIR, "bin", "matrix-client"),
    },
    python,
    pythonPath: [PYTHON_DIR, PYTHON_GEN].join(":"),
  };
}

/**
 * Runs `work` unless the stamp `name` holds the hash of `inputs` (files relative to the repository
 * root, or literal strings that are not files), then writes the stamp.
 */
async function step(
  name: string,
  inputs: readonly string[],
  log: (line: string) => void,
  what: string,
  work: () => Promise<void>,
): Promise<void> {
  const hash = createHash("sha256");
  for (const input of inputs) {
    const path = join(REPO_ROOT, input);
    const exists = await access(path).then(
      () => true,
      () => false,
    );
    hash
      .update(`${input}\0`)
      .update(exists ? await readFile(path) : "")
      .update("\0");
  }
  const digest = hash.digest("hex");
  const stamp = join(BUILD_DIR, "stamps", name);
  if ((await readFile(stamp, "utf8").catch(() => "")) === digest) return;
  log(`building ${what}`);
  await rm(stamp, { force: true });
  await work();
  await writeFile(stamp, digest);
}

/**
 * Runs a command to its end, with `env` added to this process's environment.
 *
 * @throws {Error} `<command> failed (<code>): <the last lines of its output>`
 */
function run(command: string, args: readonly string[], options: { cwd: string; env?: Record<string, string> }) {
  return new Promise<void>((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: { ...process.env, ...options.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    const keep = (chunk: Buffer) => {
      output = (output + chunk.toString("utf8")).slice(-4000);
    };
    child.stdout.on("data", keep);
    child.stderr.on("data", keep);
    child.once("error", (err) => reject(new Error(`${command} could not be started: ${err.message}`)));
    child.once("close", (code, signal) => {
      if (code === 0) {
        resolve();
        return;
      }
      const tail = output.trim().split("\n").slice(-15).join("\n");
      reject(new Error(`${[command, ...args].join(" ")} failed (${code ?? signal}):\n${tail}`));
    });
  });
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const started = performance.now();
  try {
    const build = await buildPolyglot((line) => console.log(`polyglot: ${line}`));
    const { go, python } = build.toolchains;
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    console.log(`polyglot: built with go ${go.version} and python ${python.version} in ${seconds} s`);
  } catch (err) {
    console.error(`polyglot build failed: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
  }
}
