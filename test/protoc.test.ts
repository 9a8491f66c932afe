import { existsSync } from "node:fs";
import { mkdir, readFile, symlink, writeFile } from "node:fs/promises";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { OPTIONS_PROTO } from "./support/annotation-fixtures.js";
import {
  bufBin,
  bufGenTemplate,
  childEnv,
  esAndOtelPlugins,
  listFiles,
  makeTmpDir,
  PROCESS_HANG_GUARD_MS,
  PROCESS_TEST_TIMEOUT_MS,
  pluginBin,
  pluginDir,
  protocGenEsBin,
  type RunResult,
  removeTmpDir,
  repoRoot,
  requireDist,
  run,
  runOk,
  writeTree,
} from "./support/plugin-harness.js";
import { typeAssertionSource } from "./support/type-assertions.js";
import { typecheck } from "./support/typecheck.js";

/**
 * The README's protoc guide works as written, with Debian's protoc 3.21: the command of the
 * `sh` block of its "With protoc" section, read from README.md and run verbatim by `sh` in a new
 * project laid out as npm installs `protoc-gen-connect-otel` and `@bufbuild/protoc-gen-es`, writes
 * the `_pb.ts` and `_otel.ts` files and the options proto's `_pb.ts` (protoc has no
 * `include_imports`), compiles the schema's annotation into the `_otel.ts`, writes exactly what
 * `buf generate` writes for the same schema and options, and type-checks strictly. A schema with
 * `debug_redact` fails with that protoc, which is older than the version the README says it needs.
 */

/** Debian's protoc (package `protobuf-compiler`), which .ci/run installs. */
const SYSTEM_PROTOC = "/usr/bin/protoc";

/** `google/protobuf/descriptor.proto` of Debian's `libprotobuf-dev`, which the options proto imports. */
const SYSTEM_DESCRIPTOR_PROTO = "/usr/include/google/protobuf/descriptor.proto";

/** Heading of the README section that the command is read from. */
const SECTION = "## With protoc";

/**
 * The test schema: a service whose request has an annotated field, importing a second file
 * without services (so the README's `find` must pick up several files, and only one gets an
 * `_otel` file). With `redact`, the request's `token` is marked `debug_redact`.
 */
function schema(redact: boolean): Record<string, string> {
  return {
    "proto/shop/v1/types.proto": `syntax = "proto3";

package shop.v1;

message Item {
  string title = 1;
}
`,
    "proto/shop/v1/shop.proto": `syntax = "proto3";

package shop.v1;

import "${OPTIONS_PROTO}";
import "shop/v1/types.proto";

service ShopService {
  rpc GetItem(GetItemRequest) returns (Item);
}

message GetItemRequest {
  string item_id = 1 [(connectotel.v1.field).attribute = "app.item.id"];
  string token = 2${redact ? " [debug_redact = true]" : ""};
}
`,
  };
}

/** What protoc writes below `src/gen` for {@link schema}, as {@link listFiles} lists it. */
const EXPECTED_FILES = [
  "connectotel/v1/options_pb.ts",
  "shop/v1/shop_otel.ts",
  "shop/v1/shop_pb.ts",
  "shop/v1/types_pb.ts",
];

/** The lines of README.md from `heading` to the next `## ` heading; throws if there is no such heading. */
function readmeSection(readme: string, heading: string): string {
  const lines = readme.split("\n");
  const start = lines.indexOf(heading);
  if (start < 0) throw new Error(`README.md has no section "${heading}"`);
  const end = lines.findIndex((line, i) => i > start && line.startsWith("## "));
  return lines.slice(start, end < 0 ? undefined : end).join("\n");
}

/** The text of the one fenced `sh` block of `section`; throws unless there is exactly one. */
function shBlock(section: string): string {
  const blocks = [...section.matchAll(/^```sh\n([\s\S]*?)^```$/gm)].map((m) => m[1] ?? "");
  if (blocks.length !== 1) throw new Error(`expected one sh block in "${SECTION}", found ${blocks.length}`);
  return blocks[0] ?? "";
}

/** The comma-separated options that the command gives a plugin with `--<name>_opt=`; throws if absent. */
function pluginOptions(command: string, name: string): string[] {
  const match = new RegExp(`--${name}_opt=(\\S+)`).exec(command);
  if (match?.[1] === undefined) throw new Error(`the protoc command has no --${name}_opt=`);
  return match[1].split(",");
}

/** A protobuf release as `[major, minor]`, e.g. 22.0 → `[22, 0]`. */
type Release = readonly [number, number];

/**
 * The release of protoc that `protoc --version` printed. protoc was numbered 3.x.y up to 3.21.12
 * and 22.0 after it (protobuf's version.json), so `libprotoc 3.21.12` is release 21.12 and
 * `libprotoc 22.0` release 22.0. Throws on any other output.
 */
function protocRelease(versionOutput: string): Release {
  const match = /^libprotoc (\d+)\.(\d+)(?:\.(\d+))?/.exec(versionOutput.trim());
  if (match === null) throw new Error(`unexpected protoc --version output: ${versionOutput}`);
  const [major, minor, patch] = [match[1], match[2], match[3] ?? "0"].map(Number) as [number, number, number];
  return major === 3 ? [minor, patch] : [major, minor];
}

/** The release that the README says `debug_redact` needs; throws if the sentence is missing. */
function debugRedactRelease(section: string): Release {
  const match = /`debug_redact = true` needs protoc (\d+)\.(\d+) or newer/.exec(section);
  if (match === null) throw new Error(`"${SECTION}" does not say which protoc debug_redact needs`);
  return [Number(match[1]), Number(match[2])];
}

/** True if release `a` comes before `b`. */
function isBefore(a: Release, b: Release): boolean {
  return a[0] < b[0] || (a[0] === b[0] && a[1] < b[1]);
}

/**
 * Lays out a project in `dir` as npm installs the two plugins: `node_modules/protoc-gen-connect-otel`
 * is the plugin's workspace (with its `proto/`), `node_modules/.bin/protoc-gen-es` the repository's
 * bin. npm makes a package's bin executable when it installs it; the workspace's `dist/` is not, and
 * this test changes no file mode in the repository, so `node_modules/.bin/protoc-gen-connect-otel`
 * is a shell shim that runs the built bin with this Node (as npm's shims do on Windows).
 */
async function layOutProject(dir: string, files: Readonly<Record<string, string>>): Promise<void> {
  await writeTree(dir, { ...files, "package.json": `${JSON.stringify({ private: true, type: "module" })}\n` });
  const bin = path.join(dir, "node_modules", ".bin");
  await mkdir(bin, { recursive: true });
  await symlink(pluginDir, path.join(dir, "node_modules", "protoc-gen-connect-otel"), "dir");
  await symlink(protocGenEsBin, path.join(bin, "protoc-gen-es"));
  const quote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;
  await writeFile(
    path.join(bin, "protoc-gen-connect-otel"),
    `#!/bin/sh\nexec ${quote(process.execPath)} ${quote(pluginBin)} "$@"\n`,
    { mode: 0o755 },
  );
}

let tmp: string | undefined;
/** The project generated with the README's command from the schema without `debug_redact`. */
let project = "";
/** Where `buf generate` wrote the same schema. */
let bufOut = "";
let command = "";
let section = "";
/** The README command's run on the schema with `debug_redact`. */
let redacted: RunResult | undefined;
/** What `protoc --version` printed, for the protoc that the command ran. */
let protocVersion = "";
/**
 * Why setup failed. Every test rethrows it (see {@link ready}), so that a missing protoc fails the
 * tests instead of vitest reporting them as skipped after a failed `beforeAll`.
 */
let setupError: unknown;

beforeAll(async () => {
  try {
    await setUp();
  } catch (e) {
    setupError = e;
  }
}, PROCESS_TEST_TIMEOUT_MS);

afterAll(async () => {
  await removeTmpDir(tmp);
});

/** Throws what made setup fail, if anything did. */
function ready(): void {
  if (setupError !== undefined) throw setupError;
}

/**
 * Reads the command from README.md, lays out the two projects, and runs, at the same time, the
 * command in each, `buf generate` for the first, and `protoc --version`.
 */
async function setUp(): Promise<void> {
  requireDist();
  if (!existsSync(SYSTEM_PROTOC)) {
    throw new Error(
      `${SYSTEM_PROTOC} is missing: install Debian's protobuf-compiler and libprotobuf-dev (apt-get install protobuf-compiler libprotobuf-dev; .ci/run does)`,
    );
  }
  if (!existsSync(SYSTEM_DESCRIPTOR_PROTO)) {
    throw new Error(
      `${SYSTEM_DESCRIPTOR_PROTO} is missing: install Debian's libprotobuf-dev (apt-get install libprotobuf-dev; .ci/run does)`,
    );
  }
  section = readmeSection(await readFile(path.join(repoRoot, "README.md"), "utf8"), SECTION);
  command = shBlock(section);

  tmp = await makeTmpDir("protoc-");
  project = path.join(tmp, "project");
  const redactProject = path.join(tmp, "redact");
  bufOut = path.join(tmp, "buf-gen");
  // `protoc` of the command is Debian's, whatever else is on PATH.
  const protocDir = path.join(tmp, "protoc-bin");
  await mkdir(protocDir);
  await symlink(SYSTEM_PROTOC, path.join(protocDir, "protoc"));
  const env = childEnv([protocDir]);
  await layOutProject(project, schema(false));
  await layOutProject(redactProject, schema(true));

  const opt = pluginOptions(command, "connect-otel");
  if (pluginOptions(command, "es").join(",") !== opt.join(",")) {
    throw new Error("the README's protoc command gives the two plugins different options");
  }
  // buf: the project's schema and the plugin package's proto/ as the two modules of a workspace
  // (no inputs: buf generates every module, the options proto included).
  await writeTree(project, {
    "buf.yaml": "version: v2\nmodules:\n  - path: proto\n  - path: node_modules/protoc-gen-connect-otel/proto\n",
  });
  await writeTree(tmp, { "buf.gen.yaml": bufGenTemplate(esAndOtelPlugins(bufOut, opt)) });

  const [version, , , redactRun] = await Promise.all([
    runOk("protoc", ["--version"], { env }),
    runOk("sh", ["-c", command], { cwd: project, env, timeoutMs: PROCESS_HANG_GUARD_MS }),
    runOk(bufBin, ["generate", "--template", path.join(tmp, "buf.gen.yaml")], {
      cwd: project,
      timeoutMs: PROCESS_HANG_GUARD_MS,
    }),
    run("sh", ["-c", command], { cwd: redactProject, env, timeoutMs: PROCESS_HANG_GUARD_MS }),
  ]);
  protocVersion = version.stdout;
  redacted = redactRun;
}

describe("the README's protoc command, with Debian's protoc", () => {
  it("writes the _pb and _otel files of the schema and the options proto's _pb file", async () => {
    ready();
    expect(await listFiles(path.join(project, "src", "gen"))).toEqual(EXPECTED_FILES);
    const pb = await readFile(path.join(project, "src", "gen", "shop", "v1", "shop_pb.ts"), "utf8");
    expect(pb).toContain(`from "../../connectotel/v1/options_pb.js";`);
  });

  it("compiles the schema's annotation into the _otel file", async () => {
    ready();
    const otel = await readFile(path.join(project, "src", "gen", "shop", "v1", "shop_otel.ts"), "utf8");
    expect(otel).toContain(`request: (m) => ({ "app.item.id": m.itemId }),`);
    expect(otel).not.toContain("m.token");
  });

  it("writes exactly what buf generate writes for the same schema and options", async () => {
    ready();
    const gen = path.join(project, "src", "gen");
    const files = await listFiles(gen);
    expect(await listFiles(bufOut)).toEqual(files);
    for (const file of files) {
      const [fromProtoc, fromBuf] = await Promise.all([
        readFile(path.join(gen, file), "utf8"),
        readFile(path.join(bufOut, file), "utf8"),
      ]);
      expect(fromProtoc, file).toBe(fromBuf);
    }
  });

  it(
    "type-checks strictly, with a consumer of the generated factories",
    async () => {
      ready();
      await writeTree(project, {
        "src/consumer.ts": typeAssertionSource([
          {
            otel: "./gen/shop/v1/shop_otel.js",
            service: "ShopService",
            localNames: ["getItem"],
            pb: { specifier: "./gen/shop/v1/shop_pb.js", exportName: "ShopService" },
          },
        ]),
      });
      const diagnostics = typecheck(project, "nodenext", EXPECTED_FILES.length + 1);
      expect(diagnostics, `tsc diagnostics:\n${diagnostics.join("\n")}`).toEqual([]);
    },
    PROCESS_TEST_TIMEOUT_MS,
  );

  it("fails on debug_redact, which needs a newer protoc than Debian's, as the README says", () => {
    ready();
    expect(redacted?.code, redacted?.stderr).not.toBe(0);
    expect(redacted?.stderr).toMatch(/^shop\/v1\/shop\.proto:\d+:\d+: Option "debug_redact" unknown\./m);
    const required = debugRedactRelease(section);
    const installed = protocRelease(protocVersion);
    expect(isBefore(installed, required), `protoc ${installed.join(".")} vs ${required.join(".")}`).toBe(true);
    expect(section).toContain(`\`Option "debug_redact" unknown\``);
  });
});
