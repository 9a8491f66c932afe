import { readFile, symlink } from "node:fs/promises";
import * as path from "node:path";
import ts from "typescript";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TemplatePlugin } from "./support/plugin-harness.js";
import {
  bufBin,
  bufGenTemplate,
  esAndOtelPlugins,
  listFiles,
  makeTmpDir,
  PROCESS_TEST_TIMEOUT_MS,
  removeTmpDir,
  repoRoot,
  requireDist,
  runOk,
  runtimeDir,
  writeTree,
} from "./support/plugin-harness.js";
import { writeFixtureModule } from "./support/proto-fixtures.js";
import { TYPE_EQUALITY_PRELUDE } from "./support/type-assertions.js";
import { typecheck } from "./support/typecheck.js";

/**
 * The output of protoc-gen-es + protoc-gen-connect-otel (the built bin, through `buf generate`)
 * for proto/ and for the corner cases of test/support/proto-fixtures.ts, for each target the plugin
 * supports, type-checks under the strictest settings a consumer may use, and its exported
 * declarations carry real types: a consumer file with exact-type assertions and deliberate
 * `@ts-expect-error` lines fails to compile if a factory's type widens to `any`.
 */

/** One way of running the plugins and compiling their output. */
interface Case {
  readonly name: string;
  /** Options given to both plugins. */
  readonly opt: readonly string[];
  /** `type` of the package.json written in the output's directory: the module format of .js/.d.ts/.ts. */
  readonly packageType: "module" | "commonjs";
  /** Module settings of the compilation. */
  readonly module: "nodenext" | "bundler";
  /** File name of the consumer source. */
  readonly consumer: string;
  /** How the consumer names a generated module, e.g. `user/v1/user_otel` → `./gen/user/v1/user_otel.js`. */
  readonly specifier: (name: string) => string;
  /** What the generated files of this case are: extensions written per proto file. */
  readonly extensions: readonly string[];
}

const cases: readonly Case[] = [
  {
    name: "target=ts, import_extension=js (NodeNext, ESM)",
    opt: ["target=ts", "import_extension=js"],
    packageType: "module",
    module: "nodenext",
    consumer: "consumer.ts",
    specifier: (name) => `./gen/${name}.js`,
    extensions: [".ts"],
  },
  {
    name: "target=ts, no import_extension (bundler resolution)",
    opt: ["target=ts"],
    packageType: "module",
    module: "bundler",
    consumer: "consumer.ts",
    specifier: (name) => `./gen/${name}`,
    extensions: [".ts"],
  },
  {
    name: "target=js+dts, import_extension=js (NodeNext, ESM)",
    opt: ["target=js+dts", "import_extension=js"],
    packageType: "module",
    module: "nodenext",
    consumer: "consumer.ts",
    specifier: (name) => `./gen/${name}.js`,
    extensions: [".js", ".d.ts"],
  },
  {
    name: "target=js+dts, js_import_style=legacy_commonjs (NodeNext, CommonJS)",
    opt: ["target=js+dts", "js_import_style=legacy_commonjs"],
    packageType: "commonjs",
    module: "nodenext",
    consumer: "consumer.cts",
    specifier: (name) => `./gen/${name}`,
    extensions: [".js", ".d.ts"],
  },
];

/** A set of proto files to generate from, and a consumer of what it generates. */
interface Input {
  readonly name: string;
  /** Makes the buf input below `tmp` if needed and returns its path. */
  prepare(tmp: string): Promise<string>;
  /** Proto files without `.proto`, all of which get `_pb` files. */
  readonly protos: readonly string[];
  /** The protos that declare services and so get `_otel` files. */
  readonly withServices: readonly string[];
  readonly consumer: (c: Case) => string;
}

const inputs: readonly Input[] = [
  {
    name: "proto/",
    // The repository's buf workspace: proto/ and the plugin package's options proto, which the
    // annotated schemas import.
    prepare: async () => repoRoot,
    protos: [
      "user/v1/user",
      "payment/v1/payment",
      "grpc/health/v1/health",
      "annotated/v1/inventory",
      "connectotel/v1/options",
    ],
    withServices: ["user/v1/user", "payment/v1/payment", "grpc/health/v1/health", "annotated/v1/inventory"],
    consumer: consumerSource,
  },
  {
    name: "fixture module",
    prepare: async (tmp) => {
      await writeFixtureModule(path.join(tmp, "fixture"));
      return path.join(tmp, "fixture");
    },
    protos: ["fixture/v1/plain", "fixture/v1/shop", "fixture/v1/names", "fixture/v1/edition", "nopkg"],
    withServices: ["fixture/v1/shop", "fixture/v1/names", "fixture/v1/edition", "nopkg"],
    consumer: fixtureConsumerSource,
  },
];

const matrix = inputs.flatMap((input) => cases.map((c) => ({ ...c, input, title: `${input.name}, ${c.name}` })));

/**
 * Writes, below a new tmp directory, one directory per case of `input` (its consumer, a
 * package.json of its module format, `node_modules/connect-otel`) and generates the output of all
 * cases with a single `buf generate`: one template with both plugins per case, each case writing
 * to its own `gen/`, `strategy: all` (one plugin process per case rather than per proto
 * directory). The input is compiled once for the four cases. Returns the tmp directory and each
 * case's directory by case name.
 */
async function prepareInput(input: Input): Promise<{ tmp: string; dirs: Map<string, string> }> {
  const tmp = await makeTmpDir("plugin-typecheck-");
  const dirs = new Map<string, string>();
  const plugins: TemplatePlugin[] = [];
  for (const [i, c] of cases.entries()) {
    const dir = path.join(tmp, `case-${i}`);
    await writeTree(dir, {
      "package.json": `${JSON.stringify({ private: true, type: c.packageType })}\n`,
      [c.consumer]: input.consumer(c),
      // How an installed package is found by Node at run time (the compilation maps it with `paths`).
      "node_modules/.keep": "",
    });
    await symlink(runtimeDir, path.join(dir, "node_modules", "connect-otel"), "dir");
    plugins.push(...esAndOtelPlugins(path.join(dir, "gen"), c.opt, "all"));
    dirs.set(c.name, dir);
  }
  await writeTree(tmp, { "buf.gen.yaml": bufGenTemplate(plugins) });
  const source = await input.prepare(tmp);
  await runOk(bufBin, ["generate", source, "--template", path.join(tmp, "buf.gen.yaml")], {
    cwd: path.dirname(source),
  });
  return { tmp, dirs };
}

/** Each input's generation, started by the first beforeAll; the inputs run one after the other. */
const prepared = new Map<Input, Promise<{ tmp: string; dirs: Map<string, string> }>>();

beforeAll(() => {
  requireDist();
  let previous: Promise<unknown> = Promise.resolve();
  for (const input of inputs) {
    const p = previous.then(
      () => prepareInput(input),
      () => prepareInput(input),
    );
    p.catch(() => {}); // reported by the describe blocks that await it
    prepared.set(input, p);
    previous = p;
  }
});

afterAll(async () => {
  const done = await Promise.allSettled(prepared.values());
  for (const d of done) if (d.status === "fulfilled") await removeTmpDir(d.value.tmp);
}, PROCESS_TEST_TIMEOUT_MS);

describe.each(matrix)("generated code for $title", (c) => {
  const { protos, withServices } = c.input;
  let tmp: string | undefined;
  let gen = "";

  beforeAll(async () => {
    const p = prepared.get(c.input);
    if (p === undefined) throw new Error("not prepared");
    tmp = (await p).dirs.get(c.name);
    if (tmp === undefined) throw new Error(`no directory for ${c.name}`);
    gen = path.join(tmp, "gen");
  }, PROCESS_TEST_TIMEOUT_MS);

  it("writes the expected files", async () => {
    const bases = [...protos.map((name) => `${name}_pb`), ...withServices.map((name) => `${name}_otel`)];
    const want = bases.flatMap((base) => c.extensions.map((ext) => base + ext)).sort();
    expect(await listFiles(gen)).toEqual(want);
  });

  it(
    "type-checks strictly, with a consumer that proves the factories are typed",
    async () => {
      if (tmp === undefined) throw new Error("setup failed");
      const diagnostics = typecheck(tmp, c.module, protos.length + withServices.length + 1);
      expect(diagnostics, `tsc diagnostics:\n${diagnostics.join("\n")}`).toEqual([]);
    },
    PROCESS_TEST_TIMEOUT_MS,
  );

  if (c.extensions.includes(".js")) {
    it(
      "loads in Node with the exports its .d.ts declares",
      async () => {
        if (tmp === undefined) throw new Error("setup failed");
        const loaded = await loadExports(
          withServices.map((name) => path.join(gen, `${name}_otel.js`)),
          c.packageType,
        );
        withServices.forEach((name, i) => {
          const declared = declaredExports(path.join(gen, `${name}_otel.d.ts`));
          expect(declared.length, `${name}_otel.d.ts declares nothing`).toBeGreaterThan(0);
          expect(loaded[i], `exports of ${name}_otel.js vs ${name}_otel.d.ts`).toEqual(declared);
          expect(declared.every((k) => k.startsWith("createTraced") || k.startsWith("trace"))).toBe(true);
        });
      },
      PROCESS_TEST_TIMEOUT_MS,
    );
  }

  if (c.packageType === "commonjs") {
    it("prints CommonJS: require() and exports, no import/export statements", async () => {
      for (const name of withServices) {
        const js = await readFile(path.join(gen, `${name}_otel.js`), "utf8");
        expect(js).toMatch(/require\("connect-otel"\)/);
        expect(js).toMatch(/require\("\.\/[a-z_]+_pb"\)/);
        expect(js).toMatch(/^exports\.createTraced\w+Client = /m);
        expect(js).toMatch(/^exports\.trace\w+ = /m);
        expect(js).not.toMatch(/^\s*(import|export)\s/m);
      }
    });
  }
});

/** The names a declaration file exports, sorted, as the type checker sees them. */
function declaredExports(dts: string): string[] {
  const program = ts.createProgram({
    rootNames: [dts],
    // the names of a module's own exports need neither the default library nor its imports
    options: { noLib: true, noResolve: true, noEmit: true, types: [] },
  });
  const sf = program.getSourceFile(dts);
  if (sf === undefined) throw new Error(`${dts} not in its own program`);
  const checker = program.getTypeChecker();
  const moduleSymbol = checker.getSymbolAtLocation(sf);
  if (moduleSymbol === undefined) throw new Error(`${dts} is not a module`);
  return checker
    .getExportsOfModule(moduleSymbol)
    .map((s) => s.name)
    .sort();
}

/**
 * Loads generated modules in one child Node process (the repo's Node) and returns the export
 * names of each, sorted.
 */
async function loadExports(files: readonly string[], packageType: Case["packageType"]): Promise<string[][]> {
  const names = "Object.keys(m).filter((k) => k !== '__esModule').sort()";
  const script =
    packageType === "module"
      ? `const out = []; for (const f of ${JSON.stringify(files.map(pathToUrl))}) { const m = await import(f); out.push(${names}); } console.log(JSON.stringify(out));`
      : `console.log(JSON.stringify(${JSON.stringify(files)}.map((f) => { const m = require(f); return ${names}; })));`;
  const args = packageType === "module" ? ["--input-type=module", "-e", script] : ["-e", script];
  const dir = path.dirname(files[0] ?? repoRoot);
  const { stdout } = await runOk(process.execPath, args, { cwd: dir });
  return JSON.parse(stdout) as string[][];
}

function pathToUrl(file: string): string {
  return new URL(`file://${file.split(path.sep).join("/")}`).href;
}

/**
 * A consumer of the generated user and payment modules. Every line that checks a type fails to
 * compile if the factories' types were `any` or wrong: `Equal<>` assertions compare exactly, and
 * each `@ts-expect-error` is itself an error (TS2578) when the line below it compiles.
 */
function consumerSource(c: Case): string {
  const user = c.specifier("user/v1/user_otel");
  const userPb = c.specifier("user/v1/user_pb");
  const payment = c.specifier("payment/v1/payment_otel");
  const paymentPb = c.specifier("payment/v1/payment_pb");
  const imports =
    c.packageType === "module"
      ? [
          `import { createTracedUserServiceClient, traceUserService } from "${user}";`,
          `import { createTracedPaymentServiceClient, tracePaymentService } from "${payment}";`,
        ]
      : [
          `import userOtel = require("${user}");`,
          `import paymentOtel = require("${payment}");`,
          "const { createTracedUserServiceClient, traceUserService } = userOtel;",
          "const { createTracedPaymentServiceClient, tracePaymentService } = paymentOtel;",
        ];
  return `${[
    `import type { Client, ServiceImpl, Transport } from "@connectrpc/connect";`,
    `import type { TracedClientOptions } from "connect-otel";`,
    `import type { PaymentService } from "${paymentPb}";`,
    `import type { UserResponse, UserService } from "${userPb}";`,
    ...imports,
    "",
    ...TYPE_EQUALITY_PRELUDE,
    "",
    "declare const transport: Transport;",
    "async function* stream<T>(...items: T[]): AsyncIterable<T> {",
    "  yield* items;",
    "}",
    "",
    "async function useClient(): Promise<string> {",
    `  const options: TracedClientOptions = { baseUrl: "http://127.0.0.1:8080", protocol: "grpc" };`,
    "  const client = createTracedUserServiceClient(transport, options);",
    "  assertType<Equal<typeof client, Client<typeof UserService>>>();",
    "  assertType<Equal<ReturnType<typeof createTracedUserServiceClient>, Client<typeof UserService>>>();",
    "  assertType<Equal<Parameters<typeof createTracedUserServiceClient>, [transport: Transport, options?: TracedClientOptions<typeof UserService>]>>();",
    "  createTracedUserServiceClient(transport, {",
    "    hooks: {",
    "      fetchUser: {",
    "        onRequest(span, req) { span.setAttribute('x', req.userId); },",
    "        onResponse(span, res) { span.setAttribute('y', res.name); },",
    "        onError(span, err) { span.setAttribute('z', err.code); },",
    "      },",
    "      chat: {",
    "        onMessage(span, message, direction) {",
    "          const text: string = message.message;",
    "          span.setAttribute(direction, text);",
    "        },",
    "      },",
    "      streamUsers: {",
    "        onMessage(_span, ...m) {",
    "          // @ts-expect-error a server-streaming call's streamed messages are responses",
    "          if (m[1] === 'request') m[0].pageSize;",
    "          if (m[1] === 'response') void m[0].email;",
    "        },",
    "      },",
    "    },",
    "  });",
    "  // @ts-expect-error FetchUserRequest has no field name",
    "  createTracedUserServiceClient(transport, { hooks: { fetchUser: { onRequest(_s, req) { void req.name; } } } });",
    "  // @ts-expect-error UserService has no method fetchUsers",
    "  createTracedUserServiceClient(transport, { hooks: { fetchUsers: {} } });",
    "  const name: string = (await client.fetchUser({ userId: 1 })).name;",
    "  const user: UserResponse = await client.fetchUser({});",
    "  // @ts-expect-error userId is a number",
    `  await client.fetchUser({ userId: "1" });`,
    "  // @ts-expect-error FetchUserRequest has no field userName",
    `  await client.fetchUser({ userName: "x" });`,
    "  // @ts-expect-error UserResponse has no field nickname",
    "  user.nickname;",
    "  // @ts-expect-error the client has no method fetchUsers",
    "  client.fetchUsers;",
    "  for await (const u of client.streamUsers({ pageSize: 2 })) {",
    "    const email: string = u.email;",
    "    void email;",
    "  }",
    `  const created: number = (await client.createUsers(stream({ name: "a", email: "b" }))).count;`,
    `  for await (const m of client.chat(stream({ user: "a", message: "hi" }))) {`,
    "    const ts: bigint = m.timestamp;",
    "    void ts;",
    "  }",
    "  // @ts-expect-error unknown option",
    "  createTracedUserServiceClient(transport, { notAnOption: true });",
    "  // @ts-expect-error protocol is connect, grpc or grpc-web",
    `  createTracedUserServiceClient(transport, { protocol: "http" });`,
    "  const payments = createTracedPaymentServiceClient(transport);",
    "  assertType<Equal<typeof payments, Client<typeof PaymentService>>>();",
    "  const amount: number = (await payments.getBalance({ userId: 1 })).amount;",
    '  return [name, created, amount].join(" ");',
    "}",
    "",
    "function useServer(): ServiceImpl<typeof UserService> {",
    "  const impl = traceUserService(",
    "    {",
    "      async fetchUser(req, ctx) {",
    "        const id: number = req.userId;",
    "        ctx.responseHeader.set('x-id', String(id));",
    `        return { id, name: "n", email: "e" };`,
    "      },",
    "      async *streamUsers(req) {",
    `        for (let i = 0; i < req.pageSize; i++) yield { id: i, name: "n", email: "e" };`,
    "      },",
    "    },",
    `    { messageEvents: "streaming", maxMessageEvents: 10, semconv: "dup" },`,
    "  );",
    "  assertType<Equal<typeof impl, ServiceImpl<typeof UserService>>>();",
    "  assertType<Equal<Parameters<typeof traceUserService>[0], Partial<ServiceImpl<typeof UserService>>>>();",
    "  // @ts-expect-error id is a number",
    `  traceUserService({ async fetchUser() { return { id: "x" }; } });`,
    "  // @ts-expect-error UserService has no method fetchUsers",
    "  traceUserService({ async fetchUsers() { return {}; } });",
    "  // @ts-expect-error unknown option",
    "  traceUserService({}, { notAnOption: true });",
    "  const payments = tracePaymentService({});",
    "  assertType<Equal<typeof payments, ServiceImpl<typeof PaymentService>>>();",
    "  return impl;",
    "}",
    "",
    "void useClient;",
    "void useServer;",
  ].join("\n")}\n`;
}

/**
 * A consumer of the fixture module: factories of services named like the imports of the generated
 * file (`Service`, `Client`, `Transport`) keep their exact types, and method tables keyed by
 * escaped (`toString$`) or reserved-word (`delete`) local names match connect's `ServiceImpl`.
 */
function fixtureConsumerSource(c: Case): string {
  const mod = (name: string) => c.specifier(`fixture/v1/${name}`);
  const values: Record<string, string[]> = {
    [mod("names_otel")]: ["createTracedServiceClient", "traceService", "createTracedClientClient", "traceTransport"],
    [mod("shop_otel")]: ["createTracedShopServiceClient", "traceShopService"],
    [mod("edition_otel")]: ["traceEditionService"],
    [c.specifier("nopkg_otel")]: ["createTracedBareClient"],
  };
  const imports = Object.entries(values).flatMap(([specifier, names], i) =>
    c.packageType === "module"
      ? [`import { ${names.join(", ")} } from "${specifier}";`]
      : [`import m${i} = require("${specifier}");`, `const { ${names.join(", ")} } = m${i};`],
  );
  return `${[
    `import type { Client, ServiceImpl, Transport } from "@connectrpc/connect";`,
    `import type { Client as ClientService, Service, Transport as TransportService } from "${mod("names_pb")}";`,
    `import type { ShopService } from "${mod("shop_pb")}";`,
    `import type { EditionService } from "${mod("edition_pb")}";`,
    ...imports,
    "",
    ...TYPE_EQUALITY_PRELUDE,
    "",
    "declare const transport: Transport;",
    "",
    "assertType<Equal<ReturnType<typeof createTracedServiceClient>, Client<typeof Service>>>();",
    "assertType<Equal<ReturnType<typeof traceService>, ServiceImpl<typeof Service>>>();",
    "assertType<Equal<ReturnType<typeof createTracedClientClient>, Client<typeof ClientService>>>();",
    "assertType<Equal<ReturnType<typeof traceTransport>, ServiceImpl<typeof TransportService>>>();",
    "",
    "async function use(): Promise<string> {",
    "  const shop = createTracedShopServiceClient(transport);",
    `  const title: string = (await shop.toString$({ id: "a" })).title;`,
    "  const impl = traceShopService({",
    "    async toString$(req) {",
    `      return { id: req.id, title: "t" };`,
    "    },",
    "  });",
    "  assertType<Equal<typeof impl, ServiceImpl<typeof ShopService>>>();",
    "  // @ts-expect-error title is a string",
    "  traceShopService({ async getItem() { return { title: 1 }; } });",
    "  const edition = traceEditionService({",
    "    async delete(req) {",
    "      return { id: req.id };",
    "    },",
    "  });",
    "  assertType<Equal<typeof edition, ServiceImpl<typeof EditionService>>>();",
    "  await createTracedBareClient(transport).ping({});",
    "  return title;",
    "}",
    "",
    "void use;",
  ].join("\n")}\n`;
}
