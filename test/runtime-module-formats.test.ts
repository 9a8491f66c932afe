import { mkdir, readFile } from "node:fs/promises";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  installSpecs,
  makeUserDir,
  npm,
  offlineEnv,
  packWorkspaces,
  removeUserDir,
  userEnv,
} from "./support/packed-project.js";
import {
  PROCESS_HANG_GUARD_MS,
  PROCESS_TEST_TIMEOUT_MS,
  requireDist,
  runOk,
  writeTree,
} from "./support/plugin-harness.js";

/**
 * One instance of each peer in CommonJS and in ESM apps. The runtime ships an ESM and a CommonJS
 * build (`exports` conditions `import` and `require`), so an app generated with
 * `js_import_style=legacy_commonjs` loads the CommonJS builds of `@connectrpc/connect`,
 * `@bufbuild/protobuf` and `@opentelemetry/api` through the runtime too, not a second, ESM copy
 * beside its own; `instanceof ConnectError` and the api's global registration then hold across
 * the app and the runtime. Each app, installed from the packed tarballs, runs a traced call whose
 * handler throws the app's own `ConnectError`, under a module hook (`module.registerHooks`) that
 * records every module file Node resolves.
 */

const PEERS = ["@connectrpc/connect", "@bufbuild/protobuf", "@opentelemetry/api"] as const;
const MARKER = "MODULE_FORMATS_RESULT ";
/** SpanKind numbers of @opentelemetry/api. */
const SERVER = 1;
const CLIENT = 2;

type Format = "commonjs" | "module";

interface AppResult {
  clientCode: number;
  clientSawOwnConnectError: boolean;
  spans: { kind: number; status: number; attributes: Record<string, unknown> }[];
}

const greetProto = `syntax = "proto3";
package greet.v1;
service GreetService {
  rpc Greet(GreetRequest) returns (GreetResponse);
}
message GreetRequest { string name = 1; }
message GreetResponse { string greeting = 1; }
`;

/** A buf.gen.yaml writing JavaScript for one module format into `<dir>/gen`. */
function bufGen(dir: string, format: Format): string {
  const style = format === "commonjs" ? "js_import_style=legacy_commonjs" : "import_extension=js";
  return `version: v2
inputs:
  - directory: proto
plugins:
  - local: protoc-gen-es
    out: ${dir}/gen
    opt: target=js,${style}
  - local: protoc-gen-connect-otel
    out: ${dir}/gen
    opt: target=js,${style}
`;
}

/** Records the URL of every module Node resolves, for `require` and `import` alike. */
const recordLoads = `import { registerHooks } from "node:module";
import { writeFileSync } from "node:fs";
const seen = new Set();
registerHooks({
  resolve(specifier, context, nextResolve) {
    const result = nextResolve(specifier, context);
    seen.add(result.url);
    return result;
  },
});
process.on("exit", () => writeFileSync(process.env.LOADED_MODULES_FILE, JSON.stringify([...seen])));
`;

const imports: Record<Format, string> = {
  commonjs: `const http2 = require("node:http2");
const { connectNodeAdapter, createGrpcTransport } = require("@connectrpc/connect-node");
const { Code, ConnectError } = require("@connectrpc/connect");
const { context, propagation, trace } = require("@opentelemetry/api");
const { AsyncLocalStorageContextManager } = require("@opentelemetry/context-async-hooks");
const { W3CTraceContextPropagator } = require("@opentelemetry/core");
const { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider } = require("@opentelemetry/sdk-trace");
const { GreetService } = require("./gen/greet/v1/greet_pb.js");
const { createTracedGreetServiceClient, traceGreetService } = require("./gen/greet/v1/greet_otel.js");
`,
  module: `import * as http2 from "node:http2";
import { connectNodeAdapter, createGrpcTransport } from "@connectrpc/connect-node";
import { Code, ConnectError } from "@connectrpc/connect";
import { context, propagation, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider } from "@opentelemetry/sdk-trace";
import { GreetService } from "./gen/greet/v1/greet_pb.js";
import { createTracedGreetServiceClient, traceGreetService } from "./gen/greet/v1/greet_otel.js";
`,
};

/** The app: a traced server whose handler throws the app's own NOT_FOUND, and a traced client. */
const body = `
async function main() {
  const exporter = new InMemorySpanExporter();
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] }));
  const server = http2.createServer(
    connectNodeAdapter({
      routes(router) {
        router.service(
          GreetService,
          traceGreetService({
            async greet(req) {
              throw new ConnectError("no greeting for " + req.name, Code.NotFound);
            },
          }),
        );
      },
    }),
  );
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const baseUrl = "http://127.0.0.1:" + server.address().port;
  const client = createTracedGreetServiceClient(createGrpcTransport({ baseUrl }), { baseUrl, protocol: "grpc" });
  let caught;
  try {
    await client.greet({ name: "nobody" });
  } catch (e) {
    caught = e;
  }
  const deadline = Date.now() + 10000;
  while (exporter.getFinishedSpans().length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  const spans = exporter.getFinishedSpans().map((s) => ({ kind: s.kind, status: s.status.code, attributes: s.attributes }));
  const result = { clientCode: caught?.code, clientSawOwnConnectError: caught instanceof ConnectError, spans };
  server.close();
  process.stdout.write("${MARKER}" + JSON.stringify(result) + "\\n", () => process.exit(0));
}
main();
`;

let work: string | undefined;
const results = new Map<Format, { app: AppResult; loaded: string[] }>();
let setupError: Error | undefined;

beforeAll(async () => {
  requireDist();
  try {
    work = await makeUserDir("formats-");
    const project = path.join(work, "project");
    await mkdir(project);
    const packed = await packWorkspaces(work);
    await writeTree(project, {
      "package.json": `${JSON.stringify({ name: "formats", private: true }, null, 2)}\n`,
      "buf.yaml": "version: v2\nmodules:\n  - path: proto\n",
      "proto/greet/v1/greet.proto": greetProto,
      "buf.gen.cjs.yaml": bufGen("cjs", "commonjs"),
      "buf.gen.esm.yaml": bufGen("esm", "module"),
      "cjs/package.json": `${JSON.stringify({ type: "commonjs" })}\n`,
      "cjs/main.js": imports.commonjs + body,
      "esm/package.json": `${JSON.stringify({ type: "module" })}\n`,
      "esm/main.js": imports.module + body,
      "record-loads.mjs": recordLoads,
    });
    const runtime = ["connect-otel", ...PEERS, "@connectrpc/connect-node"];
    const sdk = ["@opentelemetry/context-async-hooks", "@opentelemetry/core", "@opentelemetry/sdk-trace"];
    await npm(project, ["install", ...(await installSpecs([...runtime, ...sdk], packed))]);
    const tools = ["protoc-gen-connect-otel", "@bufbuild/protoc-gen-es", "@bufbuild/buf"];
    await npm(project, ["install", "-D", ...(await installSpecs(tools, packed))]);
    for (const format of ["commonjs", "module"] as const) {
      const dir = format === "commonjs" ? "cjs" : "esm";
      await runOk("npx", ["buf", "generate", "--template", `buf.gen.${dir}.yaml`], {
        cwd: project,
        env: offlineEnv(work),
        timeoutMs: PROCESS_HANG_GUARD_MS,
      });
      const loadedFile = path.join(work, `${dir}-loaded.json`);
      const ran = await runOk(process.execPath, ["--import", "../record-loads.mjs", "main.js"], {
        cwd: path.join(project, dir),
        env: userEnv({ LOADED_MODULES_FILE: loadedFile }),
        timeoutMs: PROCESS_HANG_GUARD_MS,
      });
      const line = ran.stdout.split("\n").find((l) => l.startsWith(MARKER));
      if (line === undefined) throw new Error(`the ${format} app printed no result:\n${ran.stdout}\n${ran.stderr}`);
      results.set(format, {
        app: JSON.parse(line.slice(MARKER.length)) as AppResult,
        loaded: JSON.parse(await readFile(loadedFile, "utf8")) as string[],
      });
    }
  } catch (e) {
    setupError = e instanceof Error ? e : new Error(String(e));
  }
}, PROCESS_TEST_TIMEOUT_MS);

afterAll(() => removeUserDir(work), PROCESS_TEST_TIMEOUT_MS);

function result(format: Format): { app: AppResult; loaded: string[] } {
  if (setupError !== undefined) throw setupError;
  const r = results.get(format);
  if (r === undefined) throw new Error(`no result for the ${format} app`);
  return r;
}

/** The module format of a file of an installed package, from its build directory or extension. */
function formatOf(url: string): "cjs" | "esm" | "unknown" {
  if (/\/dist\/cjs\/|\.cjs$/.test(url)) return "cjs";
  if (/\/dist\/esm\/|\.mjs$/.test(url)) return "esm";
  return "unknown";
}

/** Each loaded copy of `pkg`: its package directory plus the format of the build it came from. */
function copiesOf(loaded: readonly string[], pkg: string): string[] {
  const marker = `/node_modules/${pkg}/`;
  const copies = loaded
    .filter((url) => url.includes(marker))
    .map((url) => `${url.slice(0, url.lastIndexOf(marker) + marker.length)} ${formatOf(url)}`);
  return [...new Set(copies)];
}

describe.each([
  ["commonjs", "cjs"],
  ["module", "esm"],
] as const)("a %s app (generated with the matching js_import_style)", (format, build) => {
  it("loads the runtime's own build for its format", () => {
    expect(copiesOf(result(format).loaded, "connect-otel").map((c) => c.split(" ")[1])).toEqual([build]);
  });

  it.each(PEERS)("loads exactly one copy of %s, the build for its format", (peer) => {
    const copies = copiesOf(result(format).loaded, peer);
    expect(copies, `copies of ${peer}`).toHaveLength(1);
    expect(copies[0]?.endsWith(` ${build}`), copies[0]).toBe(true);
  });

  it("maps a handler's ConnectError to its own code on both spans, and the client gets it", () => {
    const { app } = result(format);
    expect(app.clientSawOwnConnectError, "the client's error is the app's ConnectError").toBe(true);
    expect(app.clientCode).toBe(5);
    const byKind = new Map(app.spans.map((s) => [s.kind, s]));
    expect([...byKind.keys()].sort()).toEqual([SERVER, CLIENT]);
    for (const s of app.spans) expect(s.attributes["rpc.status_code"], `kind ${s.kind}`).toBe("NOT_FOUND");
    expect(byKind.get(CLIENT)?.status, "client span: Error").toBe(2);
    expect(byKind.get(SERVER)?.status, "server span: NOT_FOUND leaves the status Unset").toBe(0);
  });
});
