/**
 * What the plugin costs `buf generate`: buf starts one plugin process per proto directory, so a
 * plugin's start-up is paid once per directory (googleapis has 639), next to protoc-gen-es's.
 *
 * 1. Starts: the built plugin (src/protoc-gen-connect-otel/dist/bin/protoc-gen-connect-otel.js, as
 *    the package ships it; `npm run build` first) and protoc-gen-es, each fed the same small
 *    CodeGeneratorRequest on stdin (proto/user/v1/user.proto with its imports, as `buf build` makes
 *    it, parameter `target=ts,import_extension=js`), started `--starts` times each one after the
 *    other, alternating, after two warm-up starts each. Wall time is from spawn to exit; CPU time
 *    is the child's own (`process.cpuUsage()` at exit, from support/cpu-at-exit.mjs loaded with
 *    `--import`, so Node's start-up is in it). The plugin is also started on a Node without
 *    `module.registerHooks` (22.12, from npm's `node@22.12.0`, installed on first use under the
 *    gitignored .ci/.node22.12 unless `--old-node PATH` names one or `--skip-old-node`): reported,
 *    never a failure. A last row starts Node alone, reading stdin: the floor of any Node plugin.
 * 2. Many directories: a corpus of `--dirs` proto directories (default 100; two files each, a
 *    service of all four method kinds with annotated fields and its messages) is written under
 *    .tmp/bench-plugin, then `buf generate` runs `--rounds` times (default 1) each with protoc-gen-es
 *    alone and with both plugins, alternating. Reported: wall time, CPU time of buf and all its plugins (the
 *    children's CPU time from /proc/self/stat), and per plugin the CPU time summed over its starts
 *    (from cpu-at-exit.mjs through NODE_OPTIONS), which in the run with both plugins compares the
 *    two on the same directories in the same run.
 *
 * Targets (issue 12): a start of the plugin ≤ 0.1 s (median wall time, Node on PATH), and the
 * plugin's CPU over the corpus ≤ 1.05× protoc-gen-es's. Run: `npm run bench:plugin` (also part of
 * `npm run bench`), or `node --import tsx bench/plugin-start.ts [--starts 20] [--dirs 100] [--rounds 1]
 * [--old-node PATH | --skip-old-node] [--skip-generate] [--json]`. Exits 0 whether the targets are
 * met or not, 1 when a plugin fails or answers with an error, 2 for a bad flag.
 */
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import {
  CodeGeneratorRequestSchema,
  CodeGeneratorResponseSchema,
} from "@bufbuild/protobuf/wkt/google/protobuf/compiler/plugin_pb.js";
import type { Spread } from "./support/stats.js";
import { spread } from "./support/stats.js";

/** The flags; an unknown flag or a missing value exits 2 with one line. */
const { values: flags } = (() => {
  try {
    return parseArgs({
      options: {
        starts: { type: "string", default: "20" },
        dirs: { type: "string", default: "100" },
        rounds: { type: "string", default: "1" },
        "old-node": { type: "string" },
        "skip-old-node": { type: "boolean", default: false },
        "skip-generate": { type: "boolean", default: false },
        json: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
      strict: true,
    });
  } catch (err) {
    console.error(`plugin-start: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(2);
  }
})();

if (flags.help) {
  console.log(
    "usage: node --import tsx bench/plugin-start.ts [--starts N] [--dirs N] [--rounds N] [--old-node PATH | --skip-old-node]\n" +
      "       [--skip-generate] [--json]",
  );
  process.exit(0);
}

function positiveInt(name: string, raw: string): number {
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < 1) {
    console.error(`plugin-start: --${name} must be an integer >= 1, got ${raw}`);
    process.exit(2);
  }
  return value;
}

const starts = positiveInt("starts", flags.starts);
const dirs = positiveInt("dirs", flags.dirs);
const rounds = positiveInt("rounds", flags.rounds);

const repo = fileURLToPath(new URL("..", import.meta.url));
const work = path.join(repo, ".tmp", "bench-plugin");
const otelBin = path.join(repo, "src/protoc-gen-connect-otel/dist/bin/protoc-gen-connect-otel.js");
const esBin = path.join(repo, "node_modules/@bufbuild/protoc-gen-es/bin/protoc-gen-es");
const buf = path.join(repo, "node_modules/.bin/buf");
const reporter = pathToFileURL(path.join(repo, "bench/support/cpu-at-exit.mjs")).href;
const cpuFile = path.join(work, `cpu-${process.pid}.tsv`);
/** Where `--skip-old-node` aside, Node 22.12 is installed on first use (gitignored: `.ci/.node*`). */
const oldNodePrefix = path.join(repo, ".ci/.node22.12");
const OLD_NODE_PACKAGE = "node@22.12.0";

if (!existsSync(otelBin)) {
  console.error(`plugin-start: ${path.relative(repo, otelBin)} is missing; run npm run build first`);
  process.exit(1);
}
mkdirSync(work, { recursive: true });

// ---------------------------------------------------------------------------------------------
// Running a plugin

/** One line of cpu-at-exit.mjs: which script a process ran, its CPU time and wall time in ms. */
interface ExitRecord {
  readonly script: string;
  readonly cpuMs: number;
  readonly sinceStartMs: number;
}

/** The records cpu-at-exit.mjs has appended to {@link cpuFile}, which it then empties. */
function takeExitRecords(): ExitRecord[] {
  if (!existsSync(cpuFile)) return [];
  const lines = readFileSync(cpuFile, "utf8").split("\n").filter(Boolean);
  rmSync(cpuFile);
  return lines.map((line) => {
    const [script = "", user = "0", system = "0", since = "0"] = line.split("\t");
    return { script, cpuMs: (Number(user) + Number(system)) / 1000, sinceStartMs: Number(since) };
  });
}

/** The environment of a measured child: this Node first on PATH, the CPU reporter's file. */
function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    PATH: `${path.dirname(process.execPath)}${path.delimiter}${process.env.PATH ?? ""}`,
    BENCH_CPU_FILE: cpuFile,
    ...extra,
  };
}

/** In place of a plugin's path: Node running {@link EMPTY_SCRIPT}, the floor under any Node plugin's start. */
const EMPTY = "(empty script)";
/** Reads stdin to its end and exits, writing nothing (an empty CodeGeneratorResponse). */
const EMPTY_SCRIPT = "process.stdin.resume()";

/** What one start of a plugin took. */
interface Start {
  /** From spawn to exit, in ms. */
  readonly wallMs: number;
  /** The plugin process's CPU time (user + system), in ms. */
  readonly cpuMs: number;
}

/**
 * Starts `node bin` with `request` on stdin and waits for it to exit.
 *
 * @throws Error if it exits non-zero, writes no CodeGeneratorResponse, or answers with an error or no file.
 */
async function startPlugin(node: string, bin: string, request: Uint8Array): Promise<Start> {
  takeExitRecords();
  const t0 = performance.now();
  const args = bin === EMPTY ? ["-e", EMPTY_SCRIPT] : [bin];
  const child = spawn(node, ["--import", reporter, ...args], { env: childEnv(), stdio: ["pipe", "pipe", "inherit"] });
  const chunks: Buffer[] = [];
  child.stdout.on("data", (c: Buffer) => chunks.push(c));
  child.stdin.end(request);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", resolve);
  });
  const wallMs = performance.now() - t0;
  if (code !== 0) throw new Error(`${path.basename(bin)} on ${node} exited with ${code}`);
  const response = fromBinary(CodeGeneratorResponseSchema, Buffer.concat(chunks));
  if (response.error) throw new Error(`${path.basename(bin)} answered an error: ${response.error}`);
  if (response.file.length === 0 && bin !== EMPTY) throw new Error(`${path.basename(bin)} generated no file`);
  const record = takeExitRecords()[0];
  if (!record) throw new Error(`${path.basename(bin)}: no CPU record from cpu-at-exit.mjs`);
  return { wallMs, cpuMs: record.cpuMs };
}

// ---------------------------------------------------------------------------------------------
// 1. Starts

/** The request: user/v1/user.proto and its imports, as buf compiles them, with source info (comments). */
function userRequest(): Uint8Array {
  const image = execFileSync(
    buf,
    ["build", "--path", "proto/user/v1/user.proto", "--as-file-descriptor-set", "-o", "-"],
    {
      cwd: repo,
      maxBuffer: 64 * 2 ** 20,
    },
  );
  const set = fromBinary(FileDescriptorSetSchema, image);
  return toBinary(
    CodeGeneratorRequestSchema,
    create(CodeGeneratorRequestSchema, {
      fileToGenerate: ["user/v1/user.proto"],
      parameter: "target=ts,import_extension=js",
      protoFile: set.file,
    }),
  );
}

/** A Node without `module.registerHooks`: `--old-node`, else npm's node@22.12.0 under .ci/.node22.12 (installed if missing). */
function oldNode(): { node?: string; note: string } {
  if (flags["skip-old-node"]) return { note: "skipped (--skip-old-node)" };
  let node = flags["old-node"];
  if (node === undefined) {
    node = path.join(oldNodePrefix, "node_modules/.bin/node");
    if (!existsSync(node)) {
      console.error(`plugin-start: installing ${OLD_NODE_PACKAGE} under ${path.relative(repo, oldNodePrefix)} (once)`);
      try {
        execFileSync(
          "npm",
          [
            "install",
            "--no-save",
            "--no-audit",
            "--no-fund",
            "--no-package-lock",
            "--prefix",
            oldNodePrefix,
            OLD_NODE_PACKAGE,
          ],
          { stdio: ["ignore", "ignore", "pipe"], timeout: 180_000 },
        );
      } catch (err) {
        return { note: `not available: npm install ${OLD_NODE_PACKAGE} failed (${String(err).split("\n")[0]})` };
      }
    }
  }
  try {
    const probe = execFileSync(node, ["-p", "process.version + ' ' + typeof require('node:module').registerHooks"], {
      encoding: "utf8",
    }).trim();
    const [version = "?", hooks = "?"] = probe.split(" ");
    return { node, note: `node ${version} (${hooks === "function" ? "has" : "no"} module.registerHooks)` };
  } catch (err) {
    return { note: `not available: ${node} does not run (${String(err).split("\n")[0]})` };
  }
}

interface Runner {
  readonly name: string;
  readonly node: string;
  readonly bin: string;
}

const request = userRequest();
const old = oldNode();
const runners: Runner[] = [
  { name: `protoc-gen-connect-otel, node ${process.version}`, node: process.execPath, bin: otelBin },
  { name: `protoc-gen-es, node ${process.version}`, node: process.execPath, bin: esBin },
  ...(old.node ? [{ name: `protoc-gen-connect-otel, ${old.note}`, node: old.node, bin: otelBin }] : []),
  { name: `node ${process.version} alone, reading stdin (the floor)`, node: process.execPath, bin: EMPTY },
];

// Warm-up: fills the OS page cache and each Node's compile cache, as the first directories of a
// `buf generate` do.
for (const r of runners) for (let i = 0; i < 2; i++) await startPlugin(r.node, r.bin, request);
const startTimes = new Map<string, Start[]>(runners.map((r) => [r.name, []]));
for (let i = 0; i < starts; i++) {
  for (let k = 0; k < runners.length; k++) {
    const r = runners[(i + k) % runners.length] as Runner;
    startTimes.get(r.name)?.push(await startPlugin(r.node, r.bin, request));
  }
}
console.error(`plugin-start: ${starts} starts each done`);

interface StartSummary {
  readonly runner: string;
  readonly wallMs: Spread;
  readonly cpuMs: Spread;
}
const startSummaries: StartSummary[] = runners.map((r) => {
  const s = startTimes.get(r.name) ?? [];
  return { runner: r.name, wallMs: spread(s.map((x) => x.wallMs)), cpuMs: spread(s.map((x) => x.cpuMs)) };
});

// ---------------------------------------------------------------------------------------------
// 2. Many directories

/** Writes the corpus: buf.yaml, the options proto, and `count` directories of two files each. */
function writeCorpus(root: string, count: number): void {
  rmSync(root, { recursive: true, force: true });
  mkdirSync(path.join(root, "options/connectotel/v1"), { recursive: true });
  writeFileSync(
    path.join(root, "options/connectotel/v1/options.proto"),
    readFileSync(path.join(repo, "src/protoc-gen-connect-otel/proto/connectotel/v1/options.proto")),
  );
  writeFileSync(path.join(root, "buf.yaml"), "version: v2\nmodules:\n  - path: proto\n  - path: options\n");
  for (let i = 0; i < count; i++) {
    const n = String(i).padStart(3, "0");
    const pkg = `corpus.p${n}.v1`;
    const dir = path.join(root, `proto/corpus/p${n}/v1`);
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      path.join(dir, "types.proto"),
      `syntax = "proto3";\n\npackage ${pkg};\n\nimport "connectotel/v1/options.proto";\n\n` +
        `message GetItemRequest {\n  string id = 1 [(connectotel.v1.field).attribute = "app.item.id"];\n}\n\n` +
        "message ListItemsRequest {\n  int32 page_size = 1;\n  string filter = 2;\n}\n\n" +
        `message Item {\n  string id = 1 [(connectotel.v1.field).attribute = "app.item.id"];\n  string name = 2;\n` +
        "  int64 version = 3;\n  repeated string tags = 4;\n  Kind kind = 5;\n  string secret = 6 [debug_redact = true];\n}\n\n" +
        "enum Kind {\n  KIND_UNSPECIFIED = 0;\n  KIND_SMALL = 1;\n  KIND_LARGE = 2;\n}\n\n" +
        `message PutItemsResponse {\n  int32 count = 1 [(connectotel.v1.field).attribute = "app.items.put"];\n}\n`,
    );
    writeFileSync(
      path.join(dir, "service.proto"),
      `syntax = "proto3";\n\npackage ${pkg};\n\nimport "corpus/p${n}/v1/types.proto";\n\n` +
        `// Service${n} is one of the corpus' services.\nservice Service${n} {\n` +
        "  // GetItem returns one item.\n  rpc GetItem(GetItemRequest) returns (Item) {\n" +
        "    option idempotency_level = NO_SIDE_EFFECTS;\n  }\n" +
        "  rpc ListItems(ListItemsRequest) returns (stream Item);\n" +
        "  rpc PutItems(stream Item) returns (PutItemsResponse);\n" +
        "  rpc SyncItems(stream Item) returns (stream Item);\n}\n",
    );
  }
  const plugin = (bin: string) => `  - local: [${JSON.stringify(process.execPath)}, ${JSON.stringify(bin)}]\n`;
  const template = (out: string, bins: string[]) =>
    `version: v2\nclean: true\nplugins:\n${bins.map((b) => `${plugin(b)}    out: ${out}\n    opt: target=ts,import_extension=js\n`).join("")}`;
  writeFileSync(path.join(root, "buf.gen.es.yaml"), template("gen/es", [esBin]));
  writeFileSync(path.join(root, "buf.gen.both.yaml"), template("gen/both", [esBin, otelBin]));
}

/** CPU time (user + system) of this process's waited-for children and their descendants so far, in ms. */
const clockTicks = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
function childrenCpuMs(): number | undefined {
  try {
    const stat = readFileSync("/proc/self/stat", "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // Fields 16 and 17 of proc(5), cutime and cstime; `fields` starts at field 3.
    return ((Number(fields[13]) + Number(fields[14])) / clockTicks) * 1000;
  } catch {
    return undefined;
  }
}

/** What one `buf generate` run took. */
interface Generation {
  readonly wallMs: number;
  /** buf and every plugin process (undefined where /proc is not there). */
  readonly cpuMs: number | undefined;
  /** Per plugin script: starts and summed CPU time in ms. */
  readonly plugins: Record<string, { starts: number; cpuMs: number }>;
}

async function generate(root: string, template: string): Promise<Generation> {
  takeExitRecords();
  const cpu0 = childrenCpuMs();
  const t0 = performance.now();
  const child = spawn(buf, ["generate", "--template", template], {
    cwd: root,
    env: childEnv({ NODE_OPTIONS: `--import=${reporter}` }),
    stdio: ["ignore", "inherit", "inherit"],
  });
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", resolve);
  });
  const wallMs = performance.now() - t0;
  const cpu1 = childrenCpuMs();
  if (code !== 0) throw new Error(`buf generate --template ${template} exited with ${code}`);
  const plugins: Record<string, { starts: number; cpuMs: number }> = {};
  for (const r of takeExitRecords()) {
    const name = r.script === otelBin ? "protoc-gen-connect-otel" : r.script === esBin ? "protoc-gen-es" : r.script;
    const p = plugins[name] ?? { starts: 0, cpuMs: 0 };
    p.starts++;
    p.cpuMs += r.cpuMs;
    plugins[name] = p;
  }
  return { wallMs, cpuMs: cpu0 !== undefined && cpu1 !== undefined ? cpu1 - cpu0 : undefined, plugins };
}

const corpus = path.join(work, "corpus");
const generations: { es: Generation; both: Generation }[] = [];
if (!flags["skip-generate"]) {
  writeCorpus(corpus, dirs);
  for (let round = 0; round < rounds; round++) {
    const first = round % 2 === 0 ? "es" : "both";
    const a = await generate(corpus, `buf.gen.${first}.yaml`);
    const b = await generate(corpus, `buf.gen.${first === "es" ? "both" : "es"}.yaml`);
    generations.push(first === "es" ? { es: a, both: b } : { es: b, both: a });
    console.error(`plugin-start: buf generate round ${round + 1}/${rounds} done`);
  }
}

// ---------------------------------------------------------------------------------------------
// Report

const median = (values: number[]): number => spread(values).median;
const pluginCpu = (g: Generation, name: string) => g.plugins[name] ?? { starts: 0, cpuMs: 0 };
const generationSummary =
  generations.length === 0
    ? undefined
    : {
        dirs,
        rounds,
        esOnly: {
          wallMs: spread(generations.map((g) => g.es.wallMs)),
          cpuMs: spread(generations.map((g) => g.es.cpuMs ?? Number.NaN)),
        },
        both: {
          wallMs: spread(generations.map((g) => g.both.wallMs)),
          cpuMs: spread(generations.map((g) => g.both.cpuMs ?? Number.NaN)),
        },
        /** In the run with both plugins: the connect-otel plugin's summed CPU ÷ protoc-gen-es's. */
        pluginCpuRatio: spread(
          generations.map(
            (g) => pluginCpu(g.both, "protoc-gen-connect-otel").cpuMs / pluginCpu(g.both, "protoc-gen-es").cpuMs,
          ),
        ),
        otelStarts: median(generations.map((g) => pluginCpu(g.both, "protoc-gen-connect-otel").starts)),
        esStarts: median(generations.map((g) => pluginCpu(g.both, "protoc-gen-es").starts)),
        otelCpuMsPerStart: spread(
          generations.map((g) => {
            const p = pluginCpu(g.both, "protoc-gen-connect-otel");
            return p.cpuMs / p.starts;
          }),
        ),
        esCpuMsPerStart: spread(
          generations.map((g) => {
            const p = pluginCpu(g.both, "protoc-gen-es");
            return p.cpuMs / p.starts;
          }),
        ),
      };

const otelStart = startSummaries[0] as StartSummary;
const esStart = startSummaries[1] as StartSummary;
const targets = [
  {
    target: "a plugin start ≤ 0.1 s (median wall time, sequential starts)",
    value: `${otelStart.wallMs.median.toFixed(1)} ms`,
    met: otelStart.wallMs.median <= 100,
  },
  {
    target: "plugin CPU ≤ 1.05× protoc-gen-es's over the corpus (buf generate with both)",
    value: generationSummary ? `${generationSummary.pluginCpuRatio.median.toFixed(3)}×` : "not run",
    met: generationSummary ? generationSummary.pluginCpuRatio.median <= 1.05 : undefined,
  },
];

const settings = {
  node: process.version,
  cpus: os.cpus().length,
  loadAverage: os.loadavg(),
  requestBytes: request.length,
  starts,
  oldNode: old.note,
};

if (flags.json) {
  console.log(JSON.stringify({ settings, starts: startSummaries, generate: generationSummary, targets }, null, 2));
  process.exit(0);
}

const ms = (v: number): string => v.toFixed(1);
const range = (s: Spread, f: (v: number) => string): string =>
  s.min === s.max ? f(s.median) : `${f(s.median)} [${f(s.min)} … ${f(s.max)}]`;
console.log(
  `plugin starts: ${starts} each, alternating, after 2 warm-up starts; request user/v1/user.proto with imports ` +
    `(${(request.length / 1024).toFixed(1)} KiB); load average ${os
      .loadavg()
      .map((v) => v.toFixed(2))
      .join(" ")}; medians [min … max]`,
);
console.log(`  ${"plugin".padEnd(66)}${"wall ms/start".padEnd(26)}cpu ms/start`);
for (const s of startSummaries) {
  console.log(`  ${s.runner.padEnd(66)}${range(s.wallMs, ms).padEnd(26)}${range(s.cpuMs, ms)}`);
}
console.log(
  `  connect-otel ÷ protoc-gen-es: wall ${(otelStart.wallMs.median / esStart.wallMs.median).toFixed(2)}×, ` +
    `cpu ${(otelStart.cpuMs.median / esStart.cpuMs.median).toFixed(2)}×`,
);
if (!old.node) console.log(`  protoc-gen-connect-otel on a Node without module.registerHooks: ${old.note}`);

if (generationSummary) {
  const g = generationSummary;
  const s = (v: number): string => (v / 1000).toFixed(2);
  console.log(
    `\nbuf generate of ${dirs} directories (2 files each, plus the options module), ${rounds} round(s), alternating; ` +
      "cpu = buf and all plugin processes",
  );
  console.log(`  ${"plugins".padEnd(34)}${"wall s".padEnd(26)}cpu s`);
  console.log(`  ${"protoc-gen-es".padEnd(34)}${range(g.esOnly.wallMs, s).padEnd(26)}${range(g.esOnly.cpuMs, s)}`);
  console.log(
    `  ${"protoc-gen-es + connect-otel".padEnd(34)}${range(g.both.wallMs, s).padEnd(26)}${range(g.both.cpuMs, s)}`,
  );
  console.log(
    `  both ÷ es alone: wall ${(g.both.wallMs.median / g.esOnly.wallMs.median).toFixed(2)}×, ` +
      `cpu ${(g.both.cpuMs.median / g.esOnly.cpuMs.median).toFixed(2)}×`,
  );
  console.log(
    `  in the run with both, per plugin start: connect-otel ${range(g.otelCpuMsPerStart, ms)} ms cpu over ${g.otelStarts} starts, ` +
      `protoc-gen-es ${range(g.esCpuMsPerStart, ms)} ms over ${g.esStarts}; connect-otel ÷ es ${range(g.pluginCpuRatio, (v) => v.toFixed(3))}×`,
  );
}

console.log("\ntargets (issue 12):");
for (const t of targets) {
  const verdict = t.met === undefined ? "not run" : t.met ? "met" : "NOT MET";
  console.log(`  ${verdict.padEnd(8)} ${t.target}: ${t.value}`);
}
process.exit(0);
