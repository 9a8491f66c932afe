import * as path from "node:path";
import { pathToFileURL } from "node:url";
import { create, toBinary } from "@bufbuild/protobuf";
import type { FileDescriptorProto } from "@bufbuild/protobuf/wkt";
import { CodeGeneratorRequestSchema } from "@bufbuild/protobuf/wkt";
import type { Transport } from "@connectrpc/connect";
import { SpanKind } from "@opentelemetry/api";
import { protocGenConnectOtel } from "protoc-gen-connect-otel";
import ts from "typescript";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AnnotationErrorCase } from "./support/annotation-fixtures.js";
import {
  annotatedFiles,
  annotatedModule,
  annotationErrorCases,
  errorCaseFile,
  errorCaseLine,
  errorModule,
  OPTIONS_PROTO,
  writeModuleWithOptions,
} from "./support/annotation-fixtures.js";
import {
  bufBin,
  bufGenTemplate,
  esAndOtelPlugins,
  listFiles,
  makeTmpDir,
  PROCESS_TEST_TIMEOUT_MS,
  pluginBin,
  removeTmpDir,
  repoRoot,
  requireDist,
  run,
  runOk,
  runtimeTypes,
  writeTree,
} from "./support/plugin-harness.js";
import { buildDescriptorSet, fixtureFiles, writeFixtureModule } from "./support/proto-fixtures.js";
import type { TestServer } from "./support/servers.js";
import { startServer, wires } from "./support/servers.js";
import { createSpanRecorder, spanOf } from "./support/span-recorder.js";
import { installTestTracing } from "./support/tracing.js";

/**
 * The generator side of schema annotations: the attribute extractors, `traced: false` and
 * `serverErrorCodes` that protoc-gen-connect-otel prints for annotated schemas (proto3, proto2,
 * Edition 2023), read off the syntax tree; that this code type-checks strictly and records the
 * values on a real span; and every generation error, one line naming file and element, in
 * process, through the bin and through `buf generate`.
 */

let tmp: string | undefined;
/** test/support/annotation-fixtures.ts's annotated module, with the options proto. */
let annotatedSet: FileDescriptorProto[] = [];
/** One file per generation error case. */
let errorSet: FileDescriptorProto[] = [];
/** The fixture module of test/support/proto-fixtures.ts, which does not import the options proto. */
let fixtureSet: FileDescriptorProto[] = [];
/** Output of protoc-gen-es + the built plugin (buf generate) for the annotated module, target=ts. */
let generatedDir: Promise<string> | undefined;

beforeAll(async () => {
  tmp = await makeTmpDir("plugin-annotations-");
  const dir = tmp;
  await writeModuleWithOptions(path.join(dir, "annotated"), annotatedModule);
  await writeModuleWithOptions(path.join(dir, "errors"), errorModule);
  await writeFixtureModule(path.join(dir, "fixture"));
  [annotatedSet, errorSet, fixtureSet] = await Promise.all([
    buildDescriptorSet(path.join(dir, "annotated"), ".", path.join(dir, "annotated.binpb")),
    buildDescriptorSet(path.join(dir, "errors"), ".", path.join(dir, "errors.binpb")),
    buildDescriptorSet(path.join(dir, "fixture"), ".", path.join(dir, "fixture.binpb")),
  ]);
}, PROCESS_TEST_TIMEOUT_MS);

afterAll(async () => {
  await generatedDir?.catch(() => undefined);
  await removeTmpDir(tmp);
});

function request(protoFile: FileDescriptorProto[], fileToGenerate: string[], parameter: string) {
  return create(CodeGeneratorRequestSchema, { fileToGenerate, parameter, protoFile });
}

/** Runs the plugin object in process; returns the generated files, name → content. */
function generate(protoFile: FileDescriptorProto[], fileToGenerate: string[], parameter: string): Map<string, string> {
  const res = protocGenConnectOtel.run(request(protoFile, fileToGenerate, parameter));
  if (res.error !== undefined && res.error !== "") throw new Error(`plugin answered with error: ${res.error}`);
  return new Map(res.file.map((f) => [f.name, f.content]));
}

/** The one `_otel` file generated for `protoFile`, target=ts unless given. */
function otelSource(set: FileDescriptorProto[], protoFile: string, target: "ts" | "js" | "dts" = "ts"): string {
  const name = protoFile.replace(/\.proto$/, `_otel.${target === "dts" ? "d.ts" : target}`);
  const files = generate(set, [protoFile], `target=${target}`);
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

// --- the method tables, read off the syntax tree ------------------------------------------------

/** `{ "<attribute key>": "<value expression, whitespace collapsed>" }` of one extractor. */
type Extractor = Record<string, string>;

/** One entry of a generated method table, as written. */
interface MethodEntry {
  name: string;
  kind: string;
  idempotency: string;
  traced?: boolean;
  serverErrorCodes?: number[];
  request?: Extractor;
  response?: Extractor;
}

function parse(source: string, fileName: string): ts.SourceFile {
  const kind = fileName.endsWith(".js") ? ts.ScriptKind.JS : ts.ScriptKind.TS;
  return ts.createSourceFile(fileName, source, ts.ScriptTarget.Latest, true, kind);
}

/** Top-level `const <name> = <object literal>` declarations with their JSDoc. */
function constObjects(sf: ts.SourceFile): { name: string; doc: string; object: ts.ObjectLiteralExpression }[] {
  const found: { name: string; doc: string; object: ts.ObjectLiteralExpression }[] = [];
  for (const stmt of sf.statements) {
    if (!ts.isVariableStatement(stmt)) continue;
    const docs = ts.getJSDocCommentsAndTags(stmt).filter(ts.isJSDoc);
    const doc = docs.map((d) => (typeof d.comment === "string" ? d.comment : "")).join("\n");
    for (const decl of stmt.declarationList.declarations) {
      if (ts.isIdentifier(decl.name) && decl.initializer && ts.isObjectLiteralExpression(decl.initializer)) {
        found.push({ name: decl.name.text, doc, object: decl.initializer });
      }
    }
  }
  return found;
}

function propertyName(name: ts.PropertyName, sf: ts.SourceFile): string {
  return ts.isIdentifier(name) || ts.isStringLiteral(name) || ts.isNumericLiteral(name) ? name.text : name.getText(sf);
}

/** Reads `(m) => ({ "key": expr, ... })`; throws on any other shape. */
function readExtractor(node: ts.Expression, sf: ts.SourceFile): Extractor {
  const param = ts.isArrowFunction(node) ? node.parameters[0] : undefined;
  if (
    !ts.isArrowFunction(node) ||
    node.parameters.length !== 1 ||
    param?.getText(sf) !== "m" ||
    !ts.isParenthesizedExpression(node.body) ||
    !ts.isObjectLiteralExpression(node.body.expression)
  ) {
    throw new Error(`not an extractor (m) => ({ ... }): ${node.getText(sf)}`);
  }
  const result: Extractor = {};
  for (const prop of node.body.expression.properties) {
    if (!ts.isPropertyAssignment(prop) || !ts.isStringLiteral(prop.name)) {
      throw new Error(`extractor property is not "key": value: ${prop.getText(sf)}`);
    }
    if (prop.name.text in result) throw new Error(`extractor sets ${prop.name.text} twice`);
    result[prop.name.text] = prop.initializer.getText(sf).replace(/\s+/g, " ");
  }
  return result;
}

/** The method tables (`<Service>$methods`) of a generated source, by table and method key. */
function methodTables(source: string, fileName: string): Record<string, Record<string, MethodEntry>> {
  const sf = parse(source, fileName);
  const tables: Record<string, Record<string, MethodEntry>> = {};
  for (const { name, object } of constObjects(sf)) {
    if (!name.endsWith("$methods")) continue;
    const table: Record<string, MethodEntry> = {};
    for (const method of object.properties) {
      if (!ts.isPropertyAssignment(method) || !ts.isObjectLiteralExpression(method.initializer)) {
        throw new Error(`unexpected method entry: ${method.getText(sf)}`);
      }
      const entry: Record<string, unknown> = {};
      for (const prop of method.initializer.properties) {
        if (!ts.isPropertyAssignment(prop) || !ts.isIdentifier(prop.name)) {
          throw new Error(`unexpected property: ${prop.getText(sf)}`);
        }
        const key = prop.name.text;
        const init = prop.initializer;
        if (key === "request" || key === "response") entry[key] = readExtractor(init, sf);
        else if (ts.isStringLiteral(init)) entry[key] = init.text;
        else if (init.kind === ts.SyntaxKind.FalseKeyword || init.kind === ts.SyntaxKind.TrueKeyword) {
          entry[key] = init.kind === ts.SyntaxKind.TrueKeyword;
        } else if (ts.isArrayLiteralExpression(init)) {
          entry[key] = init.elements.map((e) => (ts.isNumericLiteral(e) ? Number(e.text) : e.getText(sf)));
        } else throw new Error(`unexpected value of ${key}: ${init.getText(sf)}`);
      }
      table[propertyName(method.name, sf)] = entry as unknown as MethodEntry;
    }
    tables[name] = table;
  }
  return tables;
}

/** The enum value-name tables (`<Enum>$names`) of a generated source: JSDoc and entries. */
function enumTables(source: string, fileName: string): Record<string, { doc: string; names: Record<string, string> }> {
  const sf = parse(source, fileName);
  const tables: Record<string, { doc: string; names: Record<string, string> }> = {};
  for (const { name, doc, object } of constObjects(sf)) {
    if (!/\$names\d*$/.test(name)) continue;
    const names: Record<string, string> = {};
    for (const prop of object.properties) {
      if (!ts.isPropertyAssignment(prop) || !ts.isStringLiteral(prop.initializer)) {
        throw new Error(`unexpected enum table entry: ${prop.getText(sf)}`);
      }
      names[propertyName(prop.name, sf)] = prop.initializer.text;
    }
    tables[name] = { doc, names };
  }
  return tables;
}

const base = (service: string, method: string, kind = "unary") => ({
  name: `ann.v1.${service}/${method}`,
  kind,
  idempotency: "idempotency_unknown",
});

/** What GetScalars records of a `Scalars` message. */
const scalarsExtractor: Extractor = {
  "app.s": "m.s",
  "app.i32": "m.i32",
  "app.i64": "m.i64",
  "app.u64": "m.u64",
  "app.sf64": "m.sf64",
  "app.i64_str": "m.i64Str",
  "app.d": "m.d",
  "app.f": "m.f",
  "app.b": "m.b",
  "app.raw": "m.raw",
  "app.color": "enumValueName(Color$names, m.color)",
  "app.mode": "enumValueName(Mode$names, m.mode)",
  "app.tags": "m.tags",
  "app.ids": "m.ids",
  "app.str_ids": "m.strIds",
  "app.blobs": "m.blobs",
  "app.modes": "enumValueName(Mode$names, m.modes)",
  "app.maybe": "m.maybe",
  "app.choice.name": '(m.choice.case === "name" ? m.choice.value : undefined)',
  "app.choice.tint": 'enumValueName(Color$names, (m.choice.case === "tint" ? m.choice.value : undefined))',
  "app.payload.code": '(m.choice.case === "payload" ? m.choice.value : undefined)?.code',
  "app.leaf.city": "m.outer?.middle?.leaf?.city",
  "app.outer.middle.label": "m.outer?.middle?.label",
  "app.outer.middle.flag": '(m.outer?.middle?.pick.case === "flag" ? m.outer?.middle?.pick.value : undefined)',
  "app.outer.color": "enumValueName(Color$names2, m.outer?.color)",
  "app.u32": "m.u32",
  "app.si32": "m.si32",
  "app.fx64": "m.fx64",
  "app.flags": "m.flags",
};

const nodeExtractor: Extractor = { "app.node.id": "m.id", "app.other.note": "m.other?.note" };
const pairExtractor: Extractor = { "app.other.note": "m.first?.note", "app.node.id": "m.first?.back?.id" };

/** The method tables of ann/v1/types.proto. */
const typesTables: Record<string, Record<string, MethodEntry>> = {
  TypesService$methods: {
    getScalars: { ...base("TypesService", "GetScalars"), request: scalarsExtractor, response: scalarsExtractor },
    recurse: { ...base("TypesService", "Recurse"), request: nodeExtractor, response: pairExtractor },
    watchNodes: {
      ...base("TypesService", "WatchNodes", "server_streaming"),
      request: nodeExtractor,
      response: { "app.other.note": "m.note", "app.node.id": "m.back?.id" },
    },
    skip: { ...base("TypesService", "Skip"), traced: false },
    codes: {
      ...base("TypesService", "Codes"),
      serverErrorCodes: [5, 13, 14],
      request: pairExtractor,
      response: pairExtractor,
    },
  },
  QuietService$methods: {
    get: { ...base("QuietService", "Get"), traced: false },
    sync: { ...base("QuietService", "Sync", "bidi_streaming"), traced: false, serverErrorCodes: [13] },
  },
};

describe("attribute extractors", () => {
  it("read every supported field type of a proto3 message, through oneofs and nested singular messages", () => {
    const tables = methodTables(otelSource(annotatedSet, annotatedFiles.types), "types_otel.ts");
    expect(tables.TypesService$methods?.getScalars).toEqual(typesTables.TypesService$methods?.getScalars);
  });

  it("name enum values from one table per enum: the first name of an aliased number, negative numbers as keys", () => {
    expect(enumTables(otelSource(annotatedSet, annotatedFiles.types), "types_otel.ts")).toEqual({
      Color$names: {
        doc: "Value names of ann.v1.Color, by number.",
        names: { 0: "COLOR_UNSPECIFIED", 1: "COLOR_RED" },
      },
      Mode$names: {
        doc: "Value names of ann.v1.Mode, by number.",
        names: { 0: "MODE_UNSPECIFIED", 1: "MODE_ON", "-2": "MODE_BACKWARDS" },
      },
      // ann.v1.Outer.Color has the same bare name as ann.v1.Color
      Color$names2: {
        doc: "Value names of ann.v1.Outer.Color, by number.",
        names: { 0: "COLOR_UNSPECIFIED", 1: "COLOR_BLUE" },
      },
    });
  });

  it("end in recursive messages: a message type already on the path is not entered again", () => {
    const tables = methodTables(otelSource(annotatedSet, annotatedFiles.types), "types_otel.ts");
    const { recurse, watchNodes } = tables.TypesService$methods ?? {};
    expect({ recurse, watchNodes }).toEqual({
      recurse: typesTables.TypesService$methods?.recurse,
      watchNodes: typesTables.TypesService$methods?.watchNodes,
    });
  });

  it("read proto2 optional, required and defaulted fields, closed enums and a nested required field", () => {
    const src = otelSource(annotatedSet, annotatedFiles.legacy);
    expect(methodTables(src, "legacy_otel.ts")).toEqual({
      LegacyService$methods: {
        get: {
          ...base("LegacyService", "Get"),
          request: {
            "app.legacy.name": 'setFieldValue(m, "name")',
            "app.legacy.id": "m.id",
            "app.legacy.big": 'setFieldValue(m, "big")',
            "app.legacy.level": 'enumValueName(Level$names, setFieldValue(m, "level"))',
            "app.legacy.nums": "m.nums",
            "app.legacy.with_default": 'setFieldValue(m, "withDefault")',
            "app.legacy.blob": "m.blob",
            "app.legacy.inner.serial": "m.inner?.serial",
          },
          response: { "app.legacy.inner.serial": "m.serial" },
        },
      },
    });
    expect(enumTables(src, "legacy_otel.ts").Level$names?.names).toEqual({ 1: "LEVEL_LOW", 2: "LEVEL_HIGH" });
  });

  it("read Edition 2023 fields of every presence, a delimited message field and a JS_STRING int64", () => {
    const src = otelSource(annotatedSet, annotatedFiles.edition);
    expect(methodTables(src, "edition_otel.ts")).toEqual({
      EditionService$methods: {
        put: {
          ...base("EditionService", "Put"),
          request: {
            "app.edition.name": 'setFieldValue(m, "name")',
            "app.edition.count": "m.count",
            "app.edition.serial": "m.serial",
            "app.edition.shade": 'enumValueName(Shade$names, setFieldValue(m, "shade"))',
            "app.edition.expanded": "m.expanded",
            "app.edition.inner.ok": 'setFieldValue(m.inner, "ok")',
            "app.edition.js": 'setFieldValue(m, "js")',
          },
          response: { "app.edition.inner.ok": 'setFieldValue(m, "ok")' },
        },
      },
    });
    expect(enumTables(src, "edition_otel.ts").Shade$names?.names).toEqual({ 1: "SHADE_DARK", 2: "SHADE_LIGHT" });
  });

  it("are printed the same for target=js, and not at all in declarations", () => {
    for (const file of Object.values(annotatedFiles)) {
      if (file === annotatedFiles.common) continue;
      const tsSource = otelSource(annotatedSet, file, "ts");
      const jsSource = otelSource(annotatedSet, file, "js");
      expect(methodTables(jsSource, "x_otel.js"), file).toEqual(methodTables(tsSource, "x_otel.ts"));
      expect(enumTables(jsSource, "x_otel.js"), file).toEqual(enumTables(tsSource, "x_otel.ts"));
      expect(jsSource, file).toMatch(/^const Color\$names = |^const Level\$names = |^const Shade\$names = /m);
      const dts = otelSource(annotatedSet, file, "dts");
      expect(dts, file).not.toMatch(/request:|response:|\$names|enumValueName|traced:|serverErrorCodes/);
    }
  });

  it("write nothing for a file without services, even one with annotated messages", () => {
    expect([...generate(annotatedSet, [annotatedFiles.common], "target=ts+js+dts").keys()]).toEqual([]);
  });
});

describe("method and service annotations", () => {
  it("mark an untraced method traced: false, with no extractors", () => {
    const tables = methodTables(otelSource(annotatedSet, annotatedFiles.types), "types_otel.ts");
    expect(tables.TypesService$methods?.skip).toEqual({ ...base("TypesService", "Skip"), traced: false });
  });

  it("mark every method of an untraced service traced: false, with no extractors", () => {
    const tables = methodTables(otelSource(annotatedSet, annotatedFiles.types), "types_otel.ts");
    expect(tables.QuietService$methods).toEqual(typesTables.QuietService$methods);
  });

  it("print server_error_codes sorted and deduplicated, each with its gRPC name", () => {
    const src = otelSource(annotatedSet, annotatedFiles.types);
    expect(methodTables(src, "types_otel.ts").TypesService$methods?.codes?.serverErrorCodes).toEqual([5, 13, 14]);
    expect(src).toContain("serverErrorCodes: [5 /* NOT_FOUND */, 13 /* INTERNAL */, 14 /* UNAVAILABLE */],");
  });

  it("print the whole file of the annotated schema as expected", () => {
    expect(methodTables(otelSource(annotatedSet, annotatedFiles.types), "types_otel.ts")).toEqual(typesTables);
  });
});

describe("a schema that does not import the options proto", () => {
  it("generates exactly as when the options proto is not in the request at all", () => {
    const options = annotatedSet.find((f) => f.name === OPTIONS_PROTO);
    if (options === undefined) throw new Error(`${OPTIONS_PROTO} not in the annotated set`);
    const descriptor = annotatedSet.find((f) => f.name === "google/protobuf/descriptor.proto");
    if (descriptor === undefined) throw new Error("descriptor.proto not in the annotated set");
    const files = [fixtureFiles.shop, fixtureFiles.names, fixtureFiles.edition, fixtureFiles.nopkg];
    const without = generate(fixtureSet, files, "target=ts+js+dts");
    const withOptions = generate([descriptor, options, ...fixtureSet], files, "target=ts+js+dts");
    expect(withOptions).toEqual(without);
  });

  it("has no extractors, traced flags, error codes or enum tables", () => {
    const files = generate(fixtureSet, Object.values(fixtureFiles), "target=ts+js");
    expect(files.size).toBeGreaterThan(0);
    for (const [name, content] of files) {
      expect(content, name).not.toMatch(/request:|response:|traced:|serverErrorCodes|\$names|enumValueName/);
      for (const table of Object.values(methodTables(content, name))) {
        for (const entry of Object.values(table))
          expect(Object.keys(entry).sort(), name).toEqual(["idempotency", "kind", "name"]);
      }
    }
  });
});

// --- generated code, compiled and run ------------------------------------------------------------

/** Runs protoc-gen-es and the built plugin on the annotated module through `buf generate`, once. */
function generated(): Promise<string> {
  if (generatedDir === undefined) {
    generatedDir = (async () => {
      if (tmp === undefined) throw new Error("setup failed");
      const out = path.join(tmp, "gen");
      await writeTree(tmp, {
        "gen.buf.gen.yaml": bufGenTemplate(esAndOtelPlugins(out, ["target=ts", "import_extension=js"])),
        "gen/package.json": `${JSON.stringify({ private: true, type: "module" })}\n`,
      });
      await runOk(bufBin, ["generate", ".", "--template", path.join(tmp, "gen.buf.gen.yaml")], {
        cwd: path.join(tmp, "annotated"),
      });
      return out;
    })();
  }
  return generatedDir;
}

describe("generated code of the annotated module", () => {
  beforeAll(() => requireDist());

  it(
    "is written beside protoc-gen-es's, which also generates the options proto the _pb files import",
    async () => {
      expect(await listFiles(await generated())).toEqual([
        "ann/v1/common_pb.ts",
        "ann/v1/edition_otel.ts",
        "ann/v1/edition_pb.ts",
        "ann/v1/legacy_otel.ts",
        "ann/v1/legacy_pb.ts",
        "ann/v1/types_otel.ts",
        "ann/v1/types_pb.ts",
        "connectotel/v1/options_pb.ts",
        "package.json",
      ]);
    },
    PROCESS_TEST_TIMEOUT_MS,
  );

  it(
    "type-checks under the strictest settings",
    async () => {
      const diagnostics = strictTypecheck(await generated());
      expect(diagnostics, `tsc diagnostics:\n${diagnostics.join("\n")}`).toEqual([]);
    },
    PROCESS_TEST_TIMEOUT_MS,
  );

  describe("on a real call", () => {
    installTestTracing();
    const recorder = createSpanRecorder();
    let server: TestServer | undefined;
    let transport: Transport | undefined;
    // biome-ignore lint/suspicious/noExplicitAny: modules generated at test time have no static types here
    let types: any;
    // biome-ignore lint/suspicious/noExplicitAny: as above
    let typesPb: any;
    // biome-ignore lint/suspicious/noExplicitAny: as above
    let legacy: any;

    beforeAll(async () => {
      const gen = await generated();
      // the generated module imports connect-otel, which vitest maps to src/connect-otel/src/index.ts
      types = await import(/* @vite-ignore */ pathToFileURL(path.join(gen, "ann/v1/types_otel.ts")).href);
      typesPb = await import(/* @vite-ignore */ pathToFileURL(path.join(gen, "ann/v1/types_pb.ts")).href);
      legacy = await import(/* @vite-ignore */ pathToFileURL(path.join(gen, "ann/v1/legacy_otel.ts")).href);
      const legacyPb = await import(/* @vite-ignore */ pathToFileURL(path.join(gen, "ann/v1/legacy_pb.ts")).href);
      const wire = wires[0];
      if (wire === undefined) throw new Error("no wire");
      server = await startServer(wire, (router) => {
        router.service(
          typesPb.TypesService,
          types.traceTypesService(
            { getScalars: async () => ({}), recurse: async () => ({}) },
            { tracerProvider: recorder.provider },
          ),
        );
        router.service(
          legacyPb.LegacyService,
          legacy.traceLegacyService({ get: async () => ({ serial: 3 }) }, { tracerProvider: recorder.provider }),
        );
      });
      transport = server.transport();
    }, PROCESS_TEST_TIMEOUT_MS);

    afterAll(async () => {
      await server?.close();
    });

    it("records each supported value on the client and server spans at start", async () => {
      const client = types.createTracedTypesServiceClient(transport, { tracerProvider: recorder.provider });
      recorder.reset();
      await client.getScalars({
        s: "hello",
        i32: -7,
        i64: -9007199254740993n,
        u64: 18446744073709551615n,
        i64Str: "9007199254740993",
        d: 1.5,
        b: true,
        raw: new Uint8Array([1, 2, 3]),
        color: 1,
        mode: -2,
        tags: ["a", "b"],
        ids: [1n, -2n],
        strIds: ["3", "4"],
        blobs: [new Uint8Array([255])],
        modes: [1, -2, 7],
        choice: { case: "payload", value: { code: "p-1" } },
        outer: { middle: { leaf: { city: "Lyon", street: "must-not-leak" } }, color: 1 },
        secret: "must-not-leak",
        plain: "not-annotated",
        flags: [true, false],
      });
      const want = {
        "app.s": "hello",
        "app.i32": -7,
        "app.i64": "-9007199254740993",
        "app.u64": "18446744073709551615",
        "app.sf64": "0",
        "app.i64_str": "9007199254740993",
        "app.d": 1.5,
        "app.f": 0,
        "app.b": true,
        "app.raw": "AQID",
        "app.color": "COLOR_RED",
        "app.mode": "MODE_BACKWARDS",
        "app.tags": ["a", "b"],
        "app.ids": ["1", "-2"],
        "app.str_ids": ["3", "4"],
        "app.blobs": ["/w=="],
        "app.modes": ["MODE_ON", "MODE_BACKWARDS", "7"],
        "app.payload.code": "p-1",
        "app.leaf.city": "Lyon",
        "app.outer.middle.label": "",
        "app.outer.color": "COLOR_BLUE",
        "app.u32": 0,
        "app.si32": 0,
        "app.fx64": "0",
        "app.flags": [true, false],
      };
      const name = "ann.v1.TypesService/GetScalars";
      for (const kind of [SpanKind.CLIENT, SpanKind.SERVER]) {
        const span = await spanOf(recorder, name, kind);
        const recorded = Object.fromEntries(
          Object.entries(recorder.startAttributes(span)).filter(([k]) => k.startsWith("app.")),
        );
        // unset: proto3 optional maybe, oneof members name and tint, outer.middle.flag (oneof)
        expect(recorded, `span kind ${kind}`).toEqual(want);
        expect(JSON.stringify(span.attributes), `span kind ${kind}`).not.toContain("must-not-leak");
        expect(JSON.stringify(span.attributes), `span kind ${kind}`).not.toContain("not-annotated");
      }
    });

    it("records a proto2 optional field only when it is set, not its default", async () => {
      const client = legacy.createTracedLegacyServiceClient(transport, { tracerProvider: recorder.provider });
      recorder.reset();
      await client.get({ name: "", id: 5, blob: new Uint8Array([1]), nums: [] });
      for (const kind of [SpanKind.CLIENT, SpanKind.SERVER]) {
        const span = await spanOf(recorder, "ann.v1.LegacyService/Get", kind);
        const recorded = Object.entries(recorder.startAttributes(span)).filter(([k]) => k.startsWith("app."));
        // name is set (to its default, ""), big, level and with_default are not: absent
        expect(Object.fromEntries(recorded), `span kind ${kind}`).toEqual({
          "app.legacy.name": "",
          "app.legacy.id": 5,
          "app.legacy.nums": [],
          "app.legacy.blob": "AQ==",
        });
      }
    });

    it("records the fields of a recursive message at the depth the path reaches", async () => {
      const client = types.createTracedTypesServiceClient(transport, { tracerProvider: recorder.provider });
      recorder.reset();
      await client.recurse({ id: "n1", child: { id: "n2" }, other: { note: "o1", back: { id: "n3" } } });
      const span = await spanOf(recorder, "ann.v1.TypesService/Recurse", SpanKind.SERVER);
      const recorded = Object.entries(recorder.startAttributes(span)).filter(([k]) => k.startsWith("app."));
      expect(Object.fromEntries(recorded)).toEqual({ "app.node.id": "n1", "app.other.note": "o1" });
    });
  });
});

/**
 * Type-checks every TypeScript file below `dir` with the strictest settings a consumer may use
 * (NodeNext, `exactOptionalPropertyTypes`, `noUncheckedIndexedAccess`, no `skipLibCheck`), with
 * `connect-otel` mapped to the runtime's built `dist/esm/index.d.ts`. Returns formatted diagnostics of the files
 * below `dir` plus global and option diagnostics; third-party declarations do not count.
 */
function strictTypecheck(dir: string): string[] {
  const options: ts.CompilerOptions = {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    lib: ["lib.es2023.d.ts", "lib.dom.d.ts"],
    types: ["node"],
    typeRoots: [path.join(repoRoot, "node_modules", "@types")],
    strict: true,
    noUncheckedIndexedAccess: true,
    exactOptionalPropertyTypes: true,
    noImplicitReturns: true,
    noFallthroughCasesInSwitch: true,
    verbatimModuleSyntax: true,
    isolatedModules: true,
    skipLibCheck: false,
    noEmit: true,
    paths: { "connect-otel": [runtimeTypes] },
  };
  const rootNames = ts.sys.readDirectory(dir, [".ts"]);
  if (rootNames.length === 0) return [`no TypeScript files below ${dir}`];
  const program = ts.createProgram({ rootNames, options });
  const own = program.getSourceFiles().filter((sf) => !path.relative(dir, sf.fileName).startsWith(".."));
  const diagnostics = [
    ...program.getOptionsDiagnostics(),
    ...program.getGlobalDiagnostics(),
    ...own.flatMap((sf) => [...program.getSyntacticDiagnostics(sf), ...program.getSemanticDiagnostics(sf)]),
  ];
  return diagnostics.map((d) => {
    const text = ts.flattenDiagnosticMessageText(d.messageText, "\n");
    if (d.file === undefined || d.start === undefined) return `TS${d.code}: ${text}`;
    const { line, character } = d.file.getLineAndCharacterOfPosition(d.start);
    return `${path.relative(dir, d.file.fileName)}:${line + 1}:${character + 1} TS${d.code}: ${text}`;
  });
}

// --- generation errors ----------------------------------------------------------------------------

describe("generation errors", () => {
  describe.each(annotationErrorCases)("$name", (c: AnnotationErrorCase) => {
    it(`fails in process with one line naming ${errorCaseFile(c)} and ${c.element}, for every target`, () => {
      for (const target of ["ts", "js", "dts"]) {
        const err = thrown(() => protocGenConnectOtel.run(request(errorSet, [errorCaseFile(c)], `target=${target}`)));
        expect(err.message, "error message must be one line").not.toMatch(/[\r\n]/);
        expect(err.message, target).toMatch(errorCaseLine(c));
      }
    });

    it(
      "fails buf generate with that line on stderr, once, and no stack trace",
      async () => {
        const res = await bufGenerateFailure(c);
        expect(res.code, `buf generate should fail; stderr:\n${res.stderr}`).not.toBe(0);
        const own = res.stderr.split("\n").filter((l) => l.startsWith("protoc-gen-connect-otel"));
        expect(own, `stderr:\n${res.stderr}`).toHaveLength(1);
        const message = (own[0] ?? "").replace(/^protoc-gen-connect-otel: /, "");
        expect(message).toMatch(errorCaseLine(c));
        expect(message).toBe(
          thrown(() => protocGenConnectOtel.run(request(errorSet, [errorCaseFile(c)], "target=ts"))).message,
        );
        expect(res.stderr, "no stack trace").not.toMatch(/^\s+at /m);
      },
      PROCESS_TEST_TIMEOUT_MS,
    );
  });

  it("fail the bin with exit code 1 and exactly that line on stderr", async () => {
    requireDist();
    const c = annotationErrorCases.find((e) => e.name === "two_paths") as AnnotationErrorCase;
    const req = request(errorSet, [errorCaseFile(c)], "target=ts,import_extension=js");
    const res = await run(process.execPath, [pluginBin], { input: toBinary(CodeGeneratorRequestSchema, req) });
    expect(res.code).toBe(1);
    expect(res.stdout).toBe("");
    expect(res.stderr).toMatch(/^protoc-gen-connect-otel: [^\n]+\n$/);
    expect(res.stderr.slice("protoc-gen-connect-otel: ".length, -1)).toMatch(errorCaseLine(c));
  });
});

/** `buf generate` of one error case's file with the built plugin; results shared by the tests. */
const bufRuns = new Map<string, Promise<Awaited<ReturnType<typeof run>>>>();
/** At most this many buf processes at once. */
const BUF_CONCURRENCY = 6;
let bufSlots = BUF_CONCURRENCY;
const bufQueue: (() => void)[] = [];

async function bufGenerateFailure(c: AnnotationErrorCase): Promise<Awaited<ReturnType<typeof run>>> {
  requireDist();
  let pending = bufRuns.get(c.name);
  if (pending === undefined) {
    // start every case's run at the first request, so they overlap
    for (const other of annotationErrorCases)
      bufRuns.set(
        other.name,
        limited(() => bufGenerate(other)),
      );
    pending = bufRuns.get(c.name);
  }
  return pending as Promise<Awaited<ReturnType<typeof run>>>;
}

async function limited<T>(fn: () => Promise<T>): Promise<T> {
  if (bufSlots === 0) await new Promise<void>((resolve) => bufQueue.push(resolve));
  else bufSlots--;
  try {
    return await fn();
  } finally {
    const next = bufQueue.shift();
    if (next) next();
    else bufSlots++;
  }
}

async function bufGenerate(c: AnnotationErrorCase): Promise<Awaited<ReturnType<typeof run>>> {
  if (tmp === undefined) throw new Error("setup failed");
  const template = path.join(tmp, `errors-${c.name}.buf.gen.yaml`);
  await writeTree(tmp, {
    [path.basename(template)]: bufGenTemplate([
      { local: ["node", pluginBin], out: path.join(tmp, `errors-out-${c.name}`), opt: ["target=ts"] },
    ]),
  });
  return run(bufBin, ["generate", ".", "--template", template, "--path", path.join("proto", errorCaseFile(c))], {
    cwd: path.join(tmp, "errors"),
  });
}
