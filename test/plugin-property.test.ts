import { readFile } from "node:fs/promises";
import * as path from "node:path";
import fc from "fast-check";
import ts from "typescript";
import { afterAll, beforeAll, expect, it } from "vitest";
import {
  bufBin,
  bufGenTemplate,
  esAndOtelPlugins,
  listFiles,
  makeTmpDir,
  PROCESS_HANG_GUARD_MS,
  PROCESS_TEST_TIMEOUT_MS,
  removeTmpDir,
  requireDist,
  run,
  writeTree,
} from "./support/plugin-harness.js";
import type { Schema } from "./support/random-schema.js";
import { buildSchema, printFile, schemaArbitrary } from "./support/random-schema.js";
import { typeAssertionSource } from "./support/type-assertions.js";
import { typecheck } from "./support/typecheck.js";

/**
 * Property: every schema built at random (see test/support/random-schema.ts: 1 to 3 files in
 * nested packages or none, proto2, proto3, Edition 2023 and 2024, nested messages, imports,
 * well-known types, up to 4 services per file with up to 6 methods of random kinds, names drawn
 * from a pool of reserved words, Object.prototype members and the generated code's own names)
 * generates with protoc-gen-es and the built plugin through `buf generate`, and the output
 * type-checks strictly with a consumer asserting the exact factory types and method keys of every
 * service. Even-numbered schemas are generated with `target=ts`, odd ones with `target=js+dts`
 * (the `.js` files must parse).
 *
 * The schemas are drawn with fast-check from a seed: `PROPERTY_SEED` if set, a new one otherwise.
 * A failure names the seed and the schema (its proto files are in the message); run again with
 * `PROPERTY_SEED=<seed>` to reproduce, and `KEEP_TEST_TMP=1` to keep the generated files.
 */

/** Schemas per run: each is one `buf generate`; all are type-checked in one program. */
const SCHEMAS = 24;
/** `buf generate` runs at a time. */
const PARALLEL = 2;

const seed = process.env.PROPERTY_SEED !== undefined ? Number(process.env.PROPERTY_SEED) : Date.now() % 2 ** 31;
const schemas: Schema[] = fc.sample(schemaArbitrary, { seed, numRuns: SCHEMAS }).map(buildSchema);

let tmp: string | undefined;
/** What went wrong, per schema index. */
const failures = new Map<number, string[]>();

function fail(i: number, problem: string): void {
  failures.set(i, [...(failures.get(i) ?? []), problem]);
}

/** The target of schema `i`. */
const targetOf = (i: number) => (i % 2 === 0 ? "ts" : "js+dts");

beforeAll(async () => {
  requireDist();
  tmp = await makeTmpDir("plugin-property-");
  const dir = tmp;
  await writeTree(dir, { "package.json": `${JSON.stringify({ private: true, type: "module" })}\n` });
  const queue = schemas.map((schema, i) => ({ schema, i }));
  const worker = async () => {
    for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
      await generateOne(dir, next.schema, next.i);
    }
  };
  await Promise.all(Array.from({ length: PARALLEL }, worker));
}, PROCESS_TEST_TIMEOUT_MS);

afterAll(async () => {
  await removeTmpDir(tmp);
});

/** Writes schema `i` below `<dir>/s<i>/`, runs buf generate into `gen/`, and writes its consumer. */
async function generateOne(dir: string, schema: Schema, i: number): Promise<void> {
  const root = path.join(dir, `s${i}`);
  const protoFiles = Object.fromEntries(schema.files.map((f) => [`proto/${f.path}`, printFile(f)]));
  const opt = [`target=${targetOf(i)}`, "import_extension=js"];
  await writeTree(root, {
    "buf.yaml": "version: v2\nmodules:\n  - path: proto\n",
    "buf.gen.yaml": bufGenTemplate(esAndOtelPlugins(path.join(root, "gen"), opt, "all")),
    ...protoFiles,
  });
  const res = await run(bufBin, ["generate", ".", "--template", "buf.gen.yaml"], {
    cwd: root,
    timeoutMs: PROCESS_HANG_GUARD_MS,
  });
  if (res.code !== 0) {
    fail(i, `buf generate exited with ${res.code ?? res.signal}:\n${res.stderr}`);
    return;
  }
  const checks = schema.files.flatMap((f) =>
    f.services.map((s) => ({
      otel: `./gen/${f.path.replace(/\.proto$/, "")}_otel.js`,
      service: s.name,
      localNames: s.methods.map((m) => m.localName),
    })),
  );
  await writeTree(root, { "consumer.ts": typeAssertionSource(checks) });
}

/** The failures, each with its schema's proto files, and how to reproduce them. */
function report(): string {
  const parts = [...failures.entries()].map(([i, problems]) => {
    const files = schemas[i]?.files.map((f) => `--- ${f.path}\n${printFile(f)}`).join("") ?? "";
    return `schema s${i} (target=${targetOf(i)}):\n${problems.join("\n")}\n${files}`;
  });
  return `seed ${seed}: ${failures.size} of ${SCHEMAS} schemas failed (reproduce with PROPERTY_SEED=${seed}, keep files with KEEP_TEST_TMP=1)\n\n${parts.join("\n")}`;
}

it(
  `generates and type-checks ${SCHEMAS} random schemas`,
  async () => {
    if (tmp === undefined) throw new Error("setup failed");
    const dir = tmp;
    // every file with services has its _otel files, and every JavaScript file parses
    for (const [i, schema] of schemas.entries()) {
      if (failures.has(i)) continue;
      const gen = path.join(dir, `s${i}`, "gen");
      const have = new Set(await listFiles(gen).catch(() => []));
      const exts = targetOf(i) === "ts" ? [".ts"] : [".js", ".d.ts"];
      for (const f of schema.files) {
        const base = f.path.replace(/\.proto$/, "");
        for (const ext of exts) {
          if (!have.has(`${base}_pb${ext}`)) fail(i, `missing ${base}_pb${ext}`);
          if (f.services.length > 0 !== have.has(`${base}_otel${ext}`)) {
            fail(i, `${base}_otel${ext} ${f.services.length > 0 ? "missing" : "written for a file without services"}`);
          }
        }
      }
      for (const js of [...have].filter((n) => n.endsWith(".js"))) {
        const out = ts.transpileModule(await readFile(path.join(gen, js), "utf8"), {
          fileName: js,
          reportDiagnostics: true,
        });
        for (const d of out.diagnostics ?? []) fail(i, `${js}: ${ts.flattenDiagnosticMessageText(d.messageText, " ")}`);
      }
    }
    for (const d of typecheck(dir, "nodenext")) {
      const m = /\/s(\d+)\//.exec(d);
      fail(m === null ? -1 : Number(m[1]), d);
    }
    expect(failures.size, report()).toBe(0);
    // the draw covers what the property is about
    const methods = schemas.flatMap((s) => s.files.flatMap((f) => f.services.flatMap((x) => x.methods)));
    expect(new Set(methods.map((m) => m.kind)).size, `seed ${seed}`).toBe(4);
  },
  PROCESS_TEST_TIMEOUT_MS,
);
