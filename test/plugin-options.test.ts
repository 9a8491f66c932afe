import { readFile } from "node:fs/promises";
import * as path from "node:path";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import type { CodeGeneratorResponse, FileDescriptorProto } from "@bufbuild/protobuf/wkt";
import {
  CodeGeneratorRequestSchema,
  CodeGeneratorResponse_Feature,
  CodeGeneratorResponseSchema,
  Edition,
} from "@bufbuild/protobuf/wkt";
import { protocGenConnectOtel } from "protoc-gen-connect-otel";
import ts from "typescript";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  bufBin,
  bufGenTemplate,
  makeTmpDir,
  PROCESS_TEST_TIMEOUT_MS,
  pluginBin,
  removeTmpDir,
  repoRoot,
  requireDist,
  run,
  writeTree,
} from "./support/plugin-harness.js";
import { buildDescriptorSet, fixtureFiles, writeFixtureModule } from "./support/proto-fixtures.js";

/**
 * The plugin object, called with CodeGeneratorRequests built from real buf images: which files it
 * writes for which options, what the method tables and factories say, and how invalid options
 * fail — in process, through the bin, and through `buf generate`.
 */

let tmp: string | undefined;
/** proto/ of the repository (user.v1, payment.v1). */
let repoSet: FileDescriptorProto[] = [];
/** The fixture module of test/support/proto-fixtures.ts. */
let fixtureSet: FileDescriptorProto[] = [];

beforeAll(async () => {
  tmp = await makeTmpDir("plugin-options-");
  repoSet = await buildDescriptorSet(repoRoot, path.join(repoRoot, "proto"), path.join(tmp, "repo.binpb"));
  await writeFixtureModule(path.join(tmp, "fixture"));
  fixtureSet = await buildDescriptorSet(path.join(tmp, "fixture"), ".", path.join(tmp, "fixture.binpb"));
}, PROCESS_TEST_TIMEOUT_MS);

afterAll(async () => {
  await removeTmpDir(tmp);
});

function request(protoFile: FileDescriptorProto[], fileToGenerate: string[], parameter: string) {
  return create(CodeGeneratorRequestSchema, { fileToGenerate, parameter, protoFile });
}

/** Runs the plugin object in process. */
function runPlugin(
  protoFile: FileDescriptorProto[],
  fileToGenerate: string[],
  parameter: string,
): CodeGeneratorResponse {
  const res = protocGenConnectOtel.run(request(protoFile, fileToGenerate, parameter));
  if (res.error !== undefined && res.error !== "") throw new Error(`plugin answered with error: ${res.error}`);
  return res;
}

/** The files of a response, name → content. */
function generate(protoFile: FileDescriptorProto[], fileToGenerate: string[], parameter: string): Map<string, string> {
  return new Map(runPlugin(protoFile, fileToGenerate, parameter).file.map((f) => [f.name, f.content]));
}

function file(files: Map<string, string>, name: string): string {
  const content = files.get(name);
  if (content === undefined) throw new Error(`no ${name} among generated files [${[...files.keys()].join(", ")}]`);
  return content;
}

/** The error `fn` throws; fails the test if it returns. */
function thrown(fn: () => unknown): Error {
  try {
    fn();
  } catch (e) {
    return e instanceof Error ? e : new Error(String(e));
  }
  throw new Error("expected an error, but the call returned");
}

describe("options", () => {
  const user = ["user/v1/user.proto"];

  it.each([
    ["foo=bar", "foo=bar"],
    ["foo", "foo"],
    ["target=xyz", "target=xyz"],
    ["target=ts+xyz", "target=ts+xyz"],
    ["target=ts,foo=bar", "foo=bar"],
    ["import_extension=mjs", "import_extension=mjs"],
    ["js_import_style=amd", "js_import_style=amd"],
    ["keep_empty_files=maybe", "keep_empty_files=maybe"],
  ])("rejects %j with a one-line error naming %j", (parameter, offending) => {
    const err = thrown(() => protocGenConnectOtel.run(request(repoSet, user, parameter)));
    expect(err.message).toContain(offending);
    expect(err.message).toMatch(/^invalid option /);
    expect(err.message, "error message must be one line").not.toMatch(/[\r\n]/);
  });

  it.each([
    // protoplugin's default target is js+dts
    ["", ["user/v1/user_otel.d.ts", "user/v1/user_otel.js"]],
    ["target=ts", ["user/v1/user_otel.ts"]],
    ["target=js", ["user/v1/user_otel.js"]],
    ["target=dts", ["user/v1/user_otel.d.ts"]],
    ["target=js+dts", ["user/v1/user_otel.d.ts", "user/v1/user_otel.js"]],
    ["target=ts+js+dts", ["user/v1/user_otel.d.ts", "user/v1/user_otel.js", "user/v1/user_otel.ts"]],
    ["target=ts,import_extension=js", ["user/v1/user_otel.ts"]],
    ["target=js+dts,js_import_style=legacy_commonjs", ["user/v1/user_otel.d.ts", "user/v1/user_otel.js"]],
    ["target=ts,keep_empty_files=true,ts_nocheck=true", ["user/v1/user_otel.ts"]],
  ])("accepts %j and writes %j", (parameter, names) => {
    expect([...generate(repoSet, user, parameter).keys()].sort()).toEqual(names);
  });

  it("heads every file with the plugin name, the package version and the parameter", async () => {
    const pkg = JSON.parse(await readFile(path.join(repoRoot, "package.json"), "utf8")) as { version: string };
    const parameter = "target=ts,import_extension=js";
    const first = file(generate(repoSet, user, parameter), "user/v1/user_otel.ts").split("\n")[0];
    expect(first).toBe(`// @generated by protoc-gen-connect-otel v${pkg.version} with parameter "${parameter}"`);
  });

  it("applies import_extension and js_import_style to its imports", () => {
    const none = file(generate(repoSet, user, "target=ts"), "user/v1/user_otel.ts");
    const js = file(generate(repoSet, user, "target=ts,import_extension=js"), "user/v1/user_otel.ts");
    const cjs = file(generate(repoSet, user, "target=js,js_import_style=legacy_commonjs"), "user/v1/user_otel.js");
    expect(none).toMatch(/from "\.\/user_pb";/);
    expect(js).toMatch(/from "\.\/user_pb\.js";/);
    for (const src of [none, js]) expect(src).toMatch(/from "connect-otel";/);
    expect(cjs).toMatch(/require\("connect-otel"\)/);
    expect(cjs).toMatch(/require\("\.\/user_pb"\)/);
    expect(cjs).not.toMatch(/^\s*(import|export) /m);
  });

  it("adds @ts-nocheck with ts_nocheck=true", () => {
    expect(file(generate(repoSet, user, "target=ts,ts_nocheck=true"), "user/v1/user_otel.ts")).toMatch(
      /^\/\/ @ts-nocheck$/m,
    );
    expect(file(generate(repoSet, user, "target=ts"), "user/v1/user_otel.ts")).not.toMatch(/@ts-nocheck/);
  });

  it("declares proto3 optional and editions support, up to Edition 2023 at least", () => {
    const res = runPlugin(repoSet, user, "");
    const features = Number(res.supportedFeatures);
    expect(features & CodeGeneratorResponse_Feature.PROTO3_OPTIONAL).not.toBe(0);
    expect(features & CodeGeneratorResponse_Feature.SUPPORTS_EDITIONS).not.toBe(0);
    expect(res.maximumEdition ?? 0).toBeGreaterThanOrEqual(Edition.EDITION_2023);
  });
});

describe("generated files", () => {
  it("writes nothing for a file without services", () => {
    expect([...generate(fixtureSet, [fixtureFiles.plain], "target=ts+js+dts").keys()]).toEqual([]);
    expect([...generate(fixtureSet, [fixtureFiles.plain], "target=ts,keep_empty_files=true").keys()]).toEqual([]);
  });

  it("writes exactly <name>_otel.<ext> per requested file with services", () => {
    const all = Object.values(fixtureFiles);
    expect([...generate(fixtureSet, all, "target=ts").keys()].sort()).toEqual([
      "fixture/v1/edition_otel.ts",
      "fixture/v1/names_otel.ts",
      "fixture/v1/shop_otel.ts",
      "nopkg_otel.ts",
    ]);
    // only the requested files, not their imports or other files of the set
    expect([...generate(fixtureSet, [fixtureFiles.shop], "target=ts").keys()]).toEqual(["fixture/v1/shop_otel.ts"]);
    expect(
      [...generate(repoSet, ["user/v1/user.proto", "payment/v1/payment.proto"], "target=ts").keys()].sort(),
    ).toEqual(["payment/v1/payment_otel.ts", "user/v1/user_otel.ts"]);
  });

  describe.each(["ts", "js", "dts"] as const)("user/v1/user.proto, target=%s", (target) => {
    const name = `user/v1/user_otel.${target === "dts" ? "d.ts" : target}`;
    const source = () => file(generate(repoSet, ["user/v1/user.proto"], `target=${target}`), name);

    it("exports the traced client factory and the service wrapper, and nothing else", () => {
      const fns = exportedFunctions(source(), name);
      expect(fns.map((f) => f.name).sort()).toEqual(["createTracedUserServiceClient", "traceUserService"]);
    });

    if (target !== "js") {
      it("declares explicit parameter and return types", () => {
        const fns = Object.fromEntries(exportedFunctions(source(), name).map((f) => [f.name, f]));
        expect(fns.createTracedUserServiceClient?.signature).toBe(
          "(transport: Transport, options?: TracedClientOptions<typeof UserService>): Client<typeof UserService>",
        );
        expect(fns.traceUserService?.signature).toBe(
          "(impl: Partial<ServiceImpl<typeof UserService>>, options?: TracedServiceOptions<typeof UserService>): ServiceImpl<typeof UserService>",
        );
      });
    }

    it("documents both factories with the service's proto comment", () => {
      for (const fn of exportedFunctions(source(), name)) {
        expect(fn.doc, fn.name).toContain("UserService owns the course system's user profiles.");
        expect(fn.doc, fn.name).toContain("@generated from service user.v1.UserService");
        expect(fn.doc, fn.name).not.toContain("@deprecated");
      }
    });

    if (target !== "dts") {
      it("has a method table with fully-qualified names, kinds and idempotency", () => {
        expect(methodTables(source(), name)).toEqual({
          UserService$methods: {
            fetchUser: { name: "user.v1.UserService/FetchUser", kind: "unary", idempotency: "no_side_effects" },
            streamUsers: {
              name: "user.v1.UserService/StreamUsers",
              kind: "server_streaming",
              idempotency: "idempotency_unknown",
            },
            createUsers: {
              name: "user.v1.UserService/CreateUsers",
              kind: "client_streaming",
              idempotency: "idempotency_unknown",
            },
            chat: { name: "user.v1.UserService/Chat", kind: "bidi_streaming", idempotency: "idempotency_unknown" },
          },
        });
      });
    }
  });

  it("keys the method table by protobuf-es local names and records every kind and idempotency level", () => {
    const src = file(generate(fixtureSet, [fixtureFiles.shop], "target=ts"), "fixture/v1/shop_otel.ts");
    const s = "fixture.v1.ShopService";
    expect(methodTables(src, "shop_otel.ts")).toEqual({
      ShopService$methods: {
        getItem: { name: `${s}/GetItem`, kind: "unary", idempotency: "no_side_effects" },
        putItem: { name: `${s}/PutItem`, kind: "unary", idempotency: "idempotent" },
        watchItems: { name: `${s}/WatchItems`, kind: "server_streaming", idempotency: "idempotency_unknown" },
        uploadItems: { name: `${s}/UploadItems`, kind: "client_streaming", idempotency: "idempotency_unknown" },
        syncItems: { name: `${s}/SyncItems`, kind: "bidi_streaming", idempotency: "idempotency_unknown" },
        toString$: { name: `${s}/ToString`, kind: "unary", idempotency: "idempotency_unknown" },
      },
    });
  });

  it("keeps a multi-paragraph comment with */ inside one JSDoc block", () => {
    const src = file(generate(fixtureSet, [fixtureFiles.shop], "target=ts"), "fixture/v1/shop_otel.ts");
    expect(syntaxErrors(src, "shop_otel.ts")).toEqual([]);
    for (const fn of exportedFunctions(src, "shop_otel.ts")) {
      expect(fn.doc).toMatch(/^\/\*\*\n \* ShopService sells items\.\n \*\n \* Its comment has two paragraphs, and a /);
      expect(fn.doc).toContain("that must not end the JSDoc.");
      expect(fn.doc).toContain("@generated from service fixture.v1.ShopService");
      expect(fn.doc.match(/\*\//g), "exactly one comment terminator").toHaveLength(1);
    }
  });

  it("gives services named like imports their own names, and imports the others under aliases", () => {
    for (const target of ["ts", "js", "dts"] as const) {
      const name = `fixture/v1/names_otel.${target === "dts" ? "d.ts" : target}`;
      const src = file(generate(fixtureSet, [fixtureFiles.names], `target=${target}`), name);
      expect(syntaxErrors(src, name)).toEqual([]);
      expect(
        exportedFunctions(src, name)
          .map((f) => f.name)
          .sort(),
      ).toEqual([
        "createTracedClientClient",
        "createTracedOldServiceClient",
        "createTracedServiceClient",
        "createTracedTransportClient",
        "traceClient",
        "traceOldService",
        "traceService",
        "traceTransport",
      ]);
      expect(duplicateTopLevelNames(src, name), target).toEqual([]);
    }
  });

  it("tags a deprecated service @deprecated, and starts the JSDoc of a service without comments with what it does", () => {
    const src = file(generate(fixtureSet, [fixtureFiles.names], "target=ts"), "fixture/v1/names_otel.ts");
    const fns = Object.fromEntries(exportedFunctions(src, "names_otel.ts").map((f) => [f.name, f]));
    for (const n of ["createTracedOldServiceClient", "traceOldService"]) {
      expect(fns[n]?.doc, n).toMatch(/^ \* @deprecated$/m);
      expect(fns[n]?.doc, n).toMatch(/^\/\*\*\n \* (Creates|Wraps) /);
    }
    expect(fns.traceService?.doc).not.toContain("@deprecated");
  });

  it("names methods of a file without package by service and method alone", () => {
    const src = file(generate(fixtureSet, [fixtureFiles.nopkg], "target=ts"), "nopkg_otel.ts");
    expect(methodTables(src, "nopkg_otel.ts")).toEqual({
      Bare$methods: { ping: { name: "Bare/Ping", kind: "unary", idempotency: "idempotency_unknown" } },
    });
  });

  it("generates for an Edition 2023 file", () => {
    const src = file(generate(fixtureSet, [fixtureFiles.edition], "target=ts"), "fixture/v1/edition_otel.ts");
    expect(methodTables(src, "edition_otel.ts")).toEqual({
      EditionService$methods: {
        delete: { name: "fixture.v1.EditionService/Delete", kind: "unary", idempotency: "idempotent" },
      },
    });
  });
});

describe("the protoc-gen-connect-otel binary", () => {
  beforeAll(() => requireDist());

  it("answers a request as the plugin object does", async () => {
    const req = request(repoSet, ["user/v1/user.proto"], "target=ts,import_extension=js");
    const res = await run(process.execPath, [pluginBin], { input: toBinary(CodeGeneratorRequestSchema, req) });
    expect(res.stderr).toBe("");
    expect(res.code).toBe(0);
    const answer = fromBinary(CodeGeneratorResponseSchema, res.stdoutBytes);
    expect(answer.file.map((f) => [f.name, f.content])).toEqual([
      [
        "user/v1/user_otel.ts",
        file(generate(repoSet, ["user/v1/user.proto"], "target=ts,import_extension=js"), "user/v1/user_otel.ts"),
      ],
    ]);
  });

  it("exits 1 with one line on stderr naming an invalid option", async () => {
    const req = request(repoSet, ["user/v1/user.proto"], "target=ts,foo=bar");
    const res = await run(process.execPath, [pluginBin], { input: toBinary(CodeGeneratorRequestSchema, req) });
    expect(res.code).toBe(1);
    expect(res.stdout).toBe("");
    expect(res.stderr).toBe('protoc-gen-connect-otel: invalid option "foo=bar"\n');
  });

  it("starts from one bundled file: no TypeScript compiler, no module from node_modules", async () => {
    // every module Node resolves for the plugin process, printed on exit
    const hook = [
      'import { registerHooks } from "node:module";',
      "const seen = [];",
      "registerHooks({ resolve(s, c, next) { const r = next(s, c); seen.push(r.url); return r; } });",
      'process.on("exit", () => process.stderr.write(JSON.stringify(seen)));',
    ].join("\n");
    const req = request(repoSet, ["user/v1/user.proto"], "target=ts");
    const res = await run(
      process.execPath,
      ["--import", `data:text/javascript,${encodeURIComponent(hook)}`, pluginBin],
      {
        input: toBinary(CodeGeneratorRequestSchema, req),
      },
    );
    expect(res.code).toBe(0);
    const loaded = (JSON.parse(res.stderr) as string[]).filter((url) => !url.startsWith("node:"));
    expect(loaded.map((url) => path.basename(url)).sort()).toEqual(["protoc-gen-connect-otel.js", "run-plugin.js"]);
    expect(loaded.filter((url) => url.includes("node_modules"))).toEqual([]);
  });

  it("prints its name and version for --version", async () => {
    const pkg = JSON.parse(await readFile(path.join(repoRoot, "package.json"), "utf8")) as { version: string };
    const res = await run(process.execPath, [pluginBin, "--version"]);
    expect(res.code).toBe(0);
    expect(res.stdout).toBe(`protoc-gen-connect-otel v${pkg.version}\n`);
  });

  it(
    "fails buf generate with one line of its own naming the option, no stack trace",
    async () => {
      if (tmp === undefined) throw new Error("setup failed");
      const out = path.join(tmp, "bad-out");
      await writeTree(tmp, {
        "bad.buf.gen.yaml": bufGenTemplate([{ local: ["node", pluginBin], out, opt: ["target=ts", "foo=bar"] }]),
      });
      const res = await run(
        bufBin,
        ["generate", path.join(repoRoot, "proto"), "--template", path.join(tmp, "bad.buf.gen.yaml")],
        { cwd: repoRoot },
      );
      expect(res.code, `buf generate should fail; stderr:\n${res.stderr}`).not.toBe(0);
      const lines = res.stderr.trimEnd().split("\n");
      const own = lines.filter((l) => l.startsWith("protoc-gen-connect-otel"));
      // buf starts the plugin once per proto directory (two here); each start prints the same line
      expect(own.length, `stderr:\n${res.stderr}`).toBeGreaterThan(0);
      expect(new Set(own), `stderr:\n${res.stderr}`).toEqual(
        new Set(['protoc-gen-connect-otel: invalid option "foo=bar"']),
      );
      expect(res.stderr, "no stack trace").not.toMatch(/^\s+at /m);
    },
    PROCESS_TEST_TIMEOUT_MS,
  );
});

// --- reading generated sources with the TypeScript parser ---------------------------------------

interface ExportedFunction {
  readonly name: string;
  /** Parameters and return type as written, `(a: A, b?: B): R`; `(a, b)` without types. */
  readonly signature: string;
  /** The JSDoc block right before the declaration, `""` if none. */
  readonly doc: string;
}

function parse(source: string, fileName: string): ts.SourceFile {
  const kind = fileName.endsWith(".js") ? ts.ScriptKind.JS : ts.ScriptKind.TS;
  return ts.createSourceFile(fileName, source, ts.ScriptTarget.Latest, true, kind);
}

/** Top-level `export function` / `export declare function` declarations. */
function exportedFunctions(source: string, fileName: string): ExportedFunction[] {
  const sf = parse(source, fileName);
  const result: ExportedFunction[] = [];
  for (const stmt of sf.statements) {
    if (!ts.isFunctionDeclaration(stmt) || stmt.name === undefined) continue;
    if (!stmt.modifiers?.some((m) => m.kind === ts.SyntaxKind.ExportKeyword)) continue;
    const params = stmt.parameters.map((p) => p.getText(sf)).join(", ");
    const signature = `(${params})${stmt.type ? `: ${stmt.type.getText(sf)}` : ""}`;
    const docs = ts.getJSDocCommentsAndTags(stmt).filter(ts.isJSDoc);
    const doc = docs.length > 0 ? (docs[docs.length - 1]?.getText(sf) ?? "") : "";
    result.push({ name: stmt.name.text, signature, doc });
  }
  return result;
}

type TableEntry = { name: string; kind: string; idempotency: string };

/**
 * Top-level `const X = { key: { name: "...", kind: "...", idempotency: "..." }, ... }` objects,
 * by variable name, read off the syntax tree so layout does not matter.
 */
function methodTables(source: string, fileName: string): Record<string, Record<string, TableEntry>> {
  const sf = parse(source, fileName);
  const tables: Record<string, Record<string, TableEntry>> = {};
  for (const stmt of sf.statements) {
    if (!ts.isVariableStatement(stmt)) continue;
    for (const decl of stmt.declarationList.declarations) {
      const init = decl.initializer;
      if (!ts.isIdentifier(decl.name) || init === undefined || !ts.isObjectLiteralExpression(init)) continue;
      const table: Record<string, TableEntry> = {};
      for (const prop of init.properties) {
        if (!ts.isPropertyAssignment(prop) || !ts.isObjectLiteralExpression(prop.initializer)) continue;
        const key =
          ts.isIdentifier(prop.name) || ts.isStringLiteral(prop.name) ? prop.name.text : prop.name.getText(sf);
        const entry: Record<string, string> = {};
        for (const field of prop.initializer.properties) {
          if (ts.isPropertyAssignment(field) && ts.isIdentifier(field.name) && ts.isStringLiteral(field.initializer)) {
            entry[field.name.text] = field.initializer.text;
          }
        }
        table[key] = entry as TableEntry;
      }
      tables[decl.name.text] = table;
    }
  }
  return tables;
}

/** Syntax errors of a source (TypeScript, JavaScript or declarations), formatted. */
function syntaxErrors(source: string, fileName: string): string[] {
  const virtual = path.join(repoRoot, ".tmp", "virtual", path.basename(fileName));
  const host = ts.createCompilerHost({});
  const readOthers = host.getSourceFile.bind(host);
  host.getSourceFile = (name, languageVersion, onError, shouldCreate) =>
    name === virtual
      ? ts.createSourceFile(name, source, languageVersion)
      : readOthers(name, languageVersion, onError, shouldCreate);
  const program = ts.createProgram({
    rootNames: [virtual],
    options: { noLib: true, noResolve: true, allowJs: true, types: [], noEmit: true },
    host,
  });
  return program.getSyntacticDiagnostics().map((d) => ts.flattenDiagnosticMessageText(d.messageText, "\n"));
}

/** Names bound more than once at the top level (imports, functions, consts). */
function duplicateTopLevelNames(source: string, fileName: string): string[] {
  const sf = parse(source, fileName);
  const names: string[] = [];
  for (const stmt of sf.statements) {
    if (ts.isImportDeclaration(stmt)) {
      const clause = stmt.importClause;
      if (clause?.name) names.push(clause.name.text);
      const bindings = clause?.namedBindings;
      if (bindings && ts.isNamedImports(bindings)) names.push(...bindings.elements.map((e) => e.name.text));
      if (bindings && ts.isNamespaceImport(bindings)) names.push(bindings.name.text);
    } else if (ts.isFunctionDeclaration(stmt) && stmt.name) {
      names.push(stmt.name.text);
    } else if (ts.isVariableStatement(stmt)) {
      for (const d of stmt.declarationList.declarations) {
        if (ts.isIdentifier(d.name)) names.push(d.name.text);
        else if (ts.isObjectBindingPattern(d.name)) {
          for (const el of d.name.elements) if (ts.isIdentifier(el.name)) names.push(el.name.text);
        }
      }
    }
  }
  return names.filter((n, i) => names.indexOf(n) !== i);
}
