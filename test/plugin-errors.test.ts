import { writeFile } from "node:fs/promises";
import * as path from "node:path";
import { create, toBinary } from "@bufbuild/protobuf";
import type { FileDescriptorProto } from "@bufbuild/protobuf/wkt";
import { CodeGeneratorRequestSchema, Edition, FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  bufBin,
  bufGenTemplate,
  makeTmpDir,
  PROCESS_TEST_TIMEOUT_MS,
  pluginBin,
  removeTmpDir,
  requireDist,
  run,
  writeTree,
} from "./support/plugin-harness.js";
import { buildDescriptorSet } from "./support/proto-fixtures.js";

/**
 * Generation fails with exactly one line that names the proto file and the element at fault (or
 * the option, for a bad option value), and no stack trace: through the plugin binary (a
 * CodeGeneratorRequest on stdin: exit code 1, nothing on stdout, the line on stderr) and through
 * `buf generate` (which shows the plugin's line and fails).
 *
 * - Two methods of a service whose protobuf-es local names are equal (`GetItem` and `getItem`,
 *   `ToString` and `toString`): connect-es keys methods by local name, so no generated name can
 *   keep both; the plugin refuses the file.
 * - An edition outside the plugin's range (protoplugin's default, Edition PROTO2 to 2026, as
 *   protoc-gen-es): the plugin names the file and the edition. buf 1.74 compiles editions up to 2024
 *   only and refuses other editions in its own input, images included, before any plugin runs;
 *   that refusal is one line naming the file and the edition too.
 * - A bad value of one of protoplugin's options: one line naming the option.
 */

const module: Readonly<Record<string, string>> = {
  "buf.yaml": "version: v2\nmodules:\n  - path: proto\n",
  "proto/clash/v1/case_clash.proto": `syntax = "proto3";

package clash.v1;

message Item {}

service CaseClash {
  rpc GetItem(Item) returns (Item);
  rpc PutItem(Item) returns (Item);
  rpc getItem(Item) returns (stream Item);
}
`,
  "proto/clash/v2/escape_clash.proto": `syntax = "proto3";

package clash.v2;

message Item {}

service EscapeClash {
  rpc ToString(Item) returns (Item);
  rpc toString(Item) returns (Item);
}
`,
  "proto/fine/v1/fine.proto": `edition = "2023";

package fine.v1;

message Item {}

service Fine {
  rpc Get(Item) returns (Item);
}
`,
};

let tmp: string | undefined;
let set: FileDescriptorProto[] = [];

beforeAll(async () => {
  requireDist();
  tmp = await makeTmpDir("plugin-errors-");
  await writeTree(path.join(tmp, "module"), module);
  set = await buildDescriptorSet(path.join(tmp, "module"), ".", path.join(tmp, "module.binpb"));
}, PROCESS_TEST_TIMEOUT_MS);

afterAll(async () => {
  await removeTmpDir(tmp);
});

/** The module's files as buf builds them, where `c.file` has `c.edition` if the case gives one. */
function protoFiles(c: ErrorCase): FileDescriptorProto[] {
  const { edition } = c;
  if (edition === undefined) return set;
  return set.map((f) => (f.name === c.file ? { ...f, syntax: "editions", edition } : f));
}

interface ErrorCase {
  readonly name: string;
  /** The proto file to generate. */
  readonly file: string;
  readonly parameter: string;
  /** An edition to give `file` in the request instead of the one it declares. */
  readonly edition?: Edition;
  /** The one line the plugin prints after `protoc-gen-connect-otel: `. */
  readonly message: string;
}

const cases: readonly ErrorCase[] = [
  {
    name: "methods GetItem and getItem",
    file: "clash/v1/case_clash.proto",
    parameter: "target=ts",
    message:
      'clash/v1/case_clash.proto: methods GetItem and getItem of service clash.v1.CaseClash have the same local name "getItem" in protobuf-es, so connect-es could call and serve only one of them: rename one',
  },
  {
    name: "methods ToString and toString",
    file: "clash/v2/escape_clash.proto",
    parameter: "target=js+dts",
    message:
      'clash/v2/escape_clash.proto: methods ToString and toString of service clash.v2.EscapeClash have the same local name "toString$" in protobuf-es, so connect-es could call and serve only one of them: rename one',
  },
  {
    name: "an edition after the latest supported",
    file: "fine/v1/fine.proto",
    parameter: "target=ts",
    edition: Edition.EDITION_99999_TEST_ONLY,
    message: "fine/v1/fine.proto: unsupported edition 99999_TEST_ONLY - the latest supported edition is 2026",
  },
  {
    name: "an edition before the earliest supported",
    file: "fine/v1/fine.proto",
    parameter: "target=ts",
    edition: Edition.EDITION_LEGACY,
    message: "fine/v1/fine.proto: unsupported edition LEGACY - the earliest supported edition is PROTO2",
  },
  ...["target=ts+java", "js_import_style=amd", "import_extension=mjs", "keep_empty_files=maybe"].map((option) => ({
    name: `option ${option}`,
    file: "fine/v1/fine.proto",
    parameter: `target=ts,${option}`.replace("target=ts,target=", "target="),
    message: `invalid option "${option}"`,
  })),
];

/** stderr lines that the plugin printed (buf adds its own `Failure: ...` line after them). */
function pluginLines(stderr: string): string[] {
  return stderr.split("\n").filter((l) => l.startsWith("protoc-gen-connect-otel"));
}

describe.each(cases)("$name", (c) => {
  it("fails the plugin binary with exactly that line on stderr", async () => {
    const req = create(CodeGeneratorRequestSchema, {
      fileToGenerate: [c.file],
      parameter: c.parameter,
      protoFile: protoFiles(c),
    });
    const res = await run(process.execPath, [pluginBin], { input: toBinary(CodeGeneratorRequestSchema, req) });
    expect(res.code).toBe(1);
    expect(res.stdout).toBe("");
    expect(res.stderr).toBe(`protoc-gen-connect-otel: ${c.message}\n`);
  });

  it(
    "fails buf generate with that line and no stack trace",
    async () => {
      if (tmp === undefined) throw new Error("setup failed");
      const dir = await makeTmpDir("plugin-errors-buf-");
      try {
        await writeFile(
          path.join(dir, "buf.gen.yaml"),
          bufGenTemplate([
            { local: ["node", pluginBin], out: path.join(dir, "gen"), opt: c.parameter.split(","), strategy: "all" },
          ]),
        );
        // --path is relative to the working directory: the module's root, or where the image is
        let [cwd, input, only] = [path.join(tmp, "module"), ".", `proto/${c.file}`];
        if (c.edition !== undefined) {
          // buf takes a FileDescriptorSet image as input too, and checks its editions itself
          [cwd, input, only] = [dir, "image.binpb", c.file];
          const image = create(FileDescriptorSetSchema, { file: protoFiles(c) });
          await writeFile(path.join(dir, input), toBinary(FileDescriptorSetSchema, image));
        }
        const template = path.join(dir, "buf.gen.yaml");
        const res = await run(bufBin, ["generate", input, "--template", template, "--path", only], { cwd });
        expect(res.code, `buf generate should fail; stderr:\n${res.stderr}`).not.toBe(0);
        expect(res.stderr, "no stack trace").not.toMatch(/^\s+at /m);
        if (c.edition === undefined) {
          expect(pluginLines(res.stderr), res.stderr).toEqual([`protoc-gen-connect-otel: ${c.message}`]);
        } else {
          expect(pluginLines(res.stderr), "the plugin never ran").toEqual([]);
          expect(res.stderr.trimEnd().split("\n"), "one line").toHaveLength(1);
          expect(res.stderr).toContain(c.file);
          expect(res.stderr).toContain(Edition[c.edition]);
        }
      } finally {
        await removeTmpDir(dir);
      }
    },
    PROCESS_TEST_TIMEOUT_MS,
  );
});
