import { mkdtemp, readFile, rm } from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { listFiles, repoRoot, requireDist, runOk, writeTree } from "./support/plugin-harness.js";

/**
 * The package works when installed: `npm pack` the repository, install the tarball into a new
 * project with the packages an application uses, generate with the installed
 * `protoc-gen-connect-otel` bin through `buf generate`, compile strictly with tsc, and run a
 * connect-node h2c server with the traced service wrapper and a traced client on loopback. The
 * consumer's schema imports `connectotel/v1/options.proto` from the installed package, with buf
 * offline (no cache, no network): a second module of the buf workspace at
 * `node_modules/connect-otel/proto` (see {@link consumerBufYaml}).
 *
 * The project lives in the OS temp directory, not in `<repo>/.tmp/`: below the repository, Node
 * and tsc would fall back to the repository's node_modules for anything the tarball's
 * dependencies miss, which is what this test is there to catch.
 */

const SPANS_MARKER = "CONSUMER_RESULT ";

/** Value of the consumer's debug_redact field `GreetRequest.token`, which no span may show. */
const TOKEN = "token-must-not-leak-7f3a";

/**
 * The consumer's buf.yaml: its own module and the options proto of the installed package, as a
 * second module of the workspace, so that `import "connectotel/v1/options.proto"` resolves offline.
 */
const consumerBufYaml = `version: v2
modules:
  - path: proto
  - path: node_modules/connect-otel/proto
`;

/**
 * The consumer's buf.gen.yaml. The greet module's `_pb.ts` imports `connectotel/v1/options_pb.js`
 * (protoc-gen-es lists every import of a file), which `inputs: [directory: proto]` alone does not
 * generate: `include_imports` makes protoc-gen-es write it too.
 */
const consumerBufGenYaml = `version: v2
inputs:
  - directory: proto
clean: true
plugins:
  - local: protoc-gen-es
    out: src/gen
    opt: target=ts,import_extension=js
    include_imports: true
  - local: protoc-gen-connect-otel
    out: src/gen
    opt: target=ts,import_extension=js
`;

/**
 * The other way to get `options_pb.ts`: no `inputs`, so buf generates every module of the
 * workspace, the installed options proto included. Written to `gen-workspace/` (outside the
 * compiled `src/`) and compared with `src/gen/`.
 */
const workspaceBufGenYaml = `version: v2
clean: true
plugins:
  - local: protoc-gen-es
    out: gen-workspace
    opt: target=ts,import_extension=js
  - local: protoc-gen-connect-otel
    out: gen-workspace
    opt: target=ts,import_extension=js
`;

/** Versions as the repository pins them (package.json), so the consumer matches what tests use. */
interface Pkg {
  name: string;
  version: string;
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
  bin?: Record<string, string>;
  exports?: Record<string, unknown>;
}

/** What the consumer script prints: results of the calls and the finished spans. */
interface ConsumerResult {
  greeting: string;
  streamed: string[];
  /** True if the server's handler received the debug_redact field's value. */
  tokenArrived: boolean;
  pluginName: string;
  spans: {
    name: string;
    kind: number;
    traceId: string;
    spanId: string;
    parentSpanId: string | null;
    scope: string;
    status: { code: number; message?: string };
    attributes: Record<string, unknown>;
    events: { name: string; attributes: Record<string, unknown> }[];
  }[];
}

const SpanKind = { INTERNAL: 0, SERVER: 1, CLIENT: 2 } as const;

let work: string | undefined;
let app = "";
let pkg: Pkg;
let packedFiles: string[] = [];
let result: ConsumerResult | undefined;
/** Why setup failed, so each test reports it instead of a confusing follow-up error. */
let setupError: Error | undefined;
const timings: Record<string, number> = {};

async function step<T>(name: string, fn: () => Promise<T>): Promise<T> {
  const start = performance.now();
  try {
    return await fn();
  } finally {
    timings[name] = Math.round(performance.now() - start);
  }
}

beforeAll(async () => {
  requireDist();
  pkg = JSON.parse(await readFile(path.join(repoRoot, "package.json"), "utf8")) as Pkg;
  work = await mkdtemp(path.join(os.tmpdir(), "connect-otel-consumer-"));
  app = path.join(work, "app");
  // Node 24 (the repository's) first on PATH, so npm, buf's shim and the plugin's
  // `#!/usr/bin/env node` use it; without the variables `npm test` sets for its script (package,
  // lifecycle, local prefix), so the consumer's npm acts on the consumer's project alone.
  const inherited = Object.entries(process.env).filter(
    ([k]) => !/^npm_(package_|lifecycle_|command$|execpath$|node_execpath$|config_local_prefix$)|^INIT_CWD$/.test(k),
  );
  const env = () => ({
    ...Object.fromEntries(inherited),
    PATH: [path.dirname(process.execPath), process.env.PATH ?? ""].join(path.delimiter),
  });
  const npm = "npm";
  try {
    // --ignore-scripts: no `prepare` rebuild of dist/ while other test files run the built plugin;
    // `npm test` builds dist/ before vitest starts.
    const packed = await step("npm pack", () =>
      runOk(npm, ["pack", "--ignore-scripts", "--json", "--pack-destination", work as string], {
        cwd: repoRoot,
        env: env(),
        timeoutMs: 30_000,
      }),
    );
    const info = JSON.parse(packed.stdout) as { filename: string; files: { path: string }[] }[];
    const tarball = info[0]?.filename;
    if (tarball === undefined) throw new Error(`npm pack printed no filename: ${packed.stdout}`);
    packedFiles = info[0]?.files.map((f) => f.path).sort() ?? [];

    const version = (name: string): string => {
      const v = pkg.devDependencies?.[name] ?? pkg.dependencies?.[name];
      if (v === undefined) throw new Error(`package.json pins no version of ${name}`);
      return v;
    };
    const deps = [
      "@bufbuild/buf",
      "@bufbuild/protoc-gen-es",
      "@bufbuild/protobuf",
      "@connectrpc/connect",
      "@connectrpc/connect-node",
      "@opentelemetry/api",
      "@opentelemetry/context-async-hooks",
      "@opentelemetry/core",
      "@opentelemetry/sdk-trace",
      "@types/node",
      "typescript",
    ];
    await writeTree(app, {
      "package.json": `${JSON.stringify(
        {
          name: "connect-otel-consumer",
          private: true,
          type: "module",
          dependencies: {
            "connect-otel": `file:../${tarball}`,
            ...Object.fromEntries(deps.map((d) => [d, version(d)])),
          },
        },
        null,
        2,
      )}\n`,
      ...consumerFiles,
    });
    await step("npm install", () =>
      runOk(npm, ["install", "--prefer-offline", "--no-audit", "--no-fund", "--no-update-notifier"], {
        cwd: app,
        env: env(),
        timeoutMs: 120_000,
      }),
    );
    // `npx buf generate`: buf finds protoc-gen-es and protoc-gen-connect-otel in node_modules/.bin.
    // Offline: an empty buf cache, and every proxy variable pointing at a closed loopback port, so
    // any attempt to reach the BSR or the network fails the run.
    const offline = {
      ...env(),
      BUF_CACHE_DIR: path.join(work as string, "buf-cache"),
      HTTPS_PROXY: "http://127.0.0.1:9",
      HTTP_PROXY: "http://127.0.0.1:9",
      ALL_PROXY: "http://127.0.0.1:9",
      NO_PROXY: "",
    };
    const generate = (...args: string[]) =>
      runOk("npx", ["--no-install", "buf", "generate", ...args], { cwd: app, env: offline, timeoutMs: 30_000 });
    await step("buf generate", () => Promise.all([generate(), generate("--template", "buf.workspace.gen.yaml")]));
    const tsc = path.join(app, "node_modules", ".bin", "tsc");
    await step("tsc", () => runOk(tsc, ["-p", "tsconfig.json"], { cwd: app, env: env(), timeoutMs: 40_000 }));
    const ran = await step("node", () =>
      runOk(process.execPath, ["dist/main.js"], { cwd: app, env: env(), timeoutMs: 20_000 }),
    );
    const line = ran.stdout.split("\n").find((l) => l.startsWith(SPANS_MARKER));
    if (line === undefined) throw new Error(`consumer printed no result line:\n${ran.stdout}\n${ran.stderr}`);
    result = JSON.parse(line.slice(SPANS_MARKER.length)) as ConsumerResult;
  } catch (e) {
    setupError = e instanceof Error ? e : new Error(String(e));
  }
  console.info(`consumer.test.ts timings (ms): ${JSON.stringify(timings)}`);
}, 270_000);

afterAll(async () => {
  if (work === undefined) return;
  if (process.env.KEEP_TEST_TMP === "1") {
    console.info(`KEEP_TEST_TMP=1: keeping ${work}`);
    return;
  }
  if (!path.basename(work).startsWith("connect-otel-consumer-") || path.dirname(work) !== os.tmpdir()) {
    throw new Error(`refusing to remove ${work}`);
  }
  await rm(work, { recursive: true, force: true, maxRetries: 3 });
}, 60_000);

function ready(): ConsumerResult {
  if (setupError !== undefined) throw setupError;
  if (result === undefined) throw new Error("consumer setup did not finish");
  return result;
}

describe("npm pack", () => {
  it("packs the entry points, the bin and their declarations, and nothing of the repository's own", () => {
    ready();
    const want = [
      "package.json",
      "dist/index.js",
      "dist/index.d.ts",
      "dist/plugin.js",
      "dist/plugin.d.ts",
      ...Object.values(pkg.bin ?? {}).map((p) => p.replace(/^\.\//, "")),
    ];
    expect(packedFiles).toEqual(expect.arrayContaining(want));
    const foreign = packedFiles.filter((f) => /^(test|generated|examples|bench|node_modules|\.tmp)\//.test(f));
    expect(foreign, "files that should not be published").toEqual([]);
  });

  it("packs no stale build output: every dist/**/*.js has its src/**/*.ts", () => {
    ready();
    const stale = packedFiles
      .filter((f) => f.startsWith("dist/") && f.endsWith(".js"))
      .filter((f) => !packedFiles.includes(f.replace(/^dist\//, "src/").replace(/\.js$/, ".ts")));
    expect(stale, "dist/ files without a source (rebuild dist/ from scratch)").toEqual([]);
  });

  it("packs every file that package.json exports", () => {
    ready();
    const targets = (value: unknown): string[] =>
      typeof value === "string"
        ? [value]
        : typeof value === "object" && value !== null
          ? Object.values(value).flatMap(targets)
          : [];
    const files = targets(pkg.exports).map((t) => t.replace(/^\.\//, ""));
    expect(files.length).toBeGreaterThan(0);
    expect(packedFiles).toEqual(expect.arrayContaining(files));
  });
});

describe("an installed connect-otel", () => {
  it("generates *_otel.ts beside *_pb.ts with the installed protoc-gen-connect-otel", async () => {
    ready();
    expect(await listFiles(path.join(app, "src", "gen"))).toEqual([
      "connectotel/v1/options_pb.ts",
      "greet/v1/greet_otel.ts",
      "greet/v1/greet_pb.ts",
    ]);
    const otel = await readFile(path.join(app, "src", "gen", "greet", "v1", "greet_otel.ts"), "utf8");
    expect(otel.split("\n")[0]).toBe(
      `// @generated by protoc-gen-connect-otel v${pkg.version} with parameter "target=ts,import_extension=js"`,
    );
    expect(otel).toMatch(/from "connect-otel";/);
  });

  it("compiles the schema against the options proto of the installed package, offline", async () => {
    ready();
    expect(packedFiles).toContain("proto/connectotel/v1/options.proto");
    const installed = path.join(app, "node_modules", "connect-otel", "proto", "connectotel", "v1", "options.proto");
    expect(await readFile(installed, "utf8")).toBe(
      await readFile(path.join(repoRoot, "proto", "connectotel", "v1", "options.proto"), "utf8"),
    );
    const pb = await readFile(path.join(app, "src", "gen", "greet", "v1", "greet_pb.ts"), "utf8");
    expect(pb).toMatch(/from "\.\.\/\.\.\/connectotel\/v1\/options_pb\.js";/);
    const otel = await readFile(path.join(app, "src", "gen", "greet", "v1", "greet_otel.ts"), "utf8");
    expect(otel).toContain(`"app.greet.name": m.name`);
    expect(otel).not.toContain("m.token");
  });

  it("generates the same with buf.gen.yaml's inputs left out (every module of the workspace)", async () => {
    ready();
    const gen = path.join(app, "src", "gen");
    const workspace = path.join(app, "gen-workspace");
    const files = await listFiles(gen);
    expect(await listFiles(workspace)).toEqual(files);
    for (const f of files) {
      expect(await readFile(path.join(workspace, f), "utf8"), f).toBe(await readFile(path.join(gen, f), "utf8"));
    }
  });

  it("records an annotated field on the spans of a traced call, and never the debug_redact field", () => {
    const r = ready();
    expect(r.tokenArrived, "the handler received the debug_redact field").toBe(true);
    const greet = r.spans.filter((s) => s.name === "greet.v1.GreetService/Greet");
    expect(greet.map((s) => s.kind).sort()).toEqual([SpanKind.SERVER, SpanKind.CLIENT]);
    for (const s of greet) {
      expect(s.attributes["app.greet.name"], `kind ${s.kind}`).toBe("otel");
      expect(s.attributes["app.greet.greeting"], `kind ${s.kind}`).toBe("hello otel");
    }
    const stream = r.spans.find((s) => s.name === "greet.v1.GreetService/GreetStream" && s.kind === SpanKind.CLIENT);
    expect(stream?.attributes["app.greet.name"]).toBe("stream");
    const received = (stream?.events ?? []).filter((e) => e.attributes["rpc.message.type"] === "RECEIVED");
    expect(received.map((e) => e.attributes["app.greet.greeting"])).toEqual(["0 stream", "1 stream", "2 stream"]);
    expect(JSON.stringify(r.spans), "a span shows the debug_redact field").not.toContain(TOKEN);
  });

  it("exports the plugin object at connect-otel/plugin", () => {
    expect(ready().pluginName).toBe("protoc-gen-connect-otel");
  });

  it("serves and calls over h2c with the results of untraced code", () => {
    const r = ready();
    expect(r.greeting).toBe("hello otel");
    expect(r.streamed).toEqual(["0 stream", "1 stream", "2 stream"]);
  });

  it("records client and server spans of a unary call, parent to child, in the caller's trace", () => {
    const spans = ready().spans;
    const one = (name: string, kind: number) => {
      const found = spans.filter((s) => s.name === name && s.kind === kind);
      expect(
        found,
        `spans named ${name} of kind ${kind} among ${spans.map((s) => `${s.name}/${s.kind}`)}`,
      ).toHaveLength(1);
      return found[0] as ConsumerResult["spans"][number];
    };
    const root = one("app", SpanKind.INTERNAL);
    const client = one("greet.v1.GreetService/Greet", SpanKind.CLIENT);
    const server = one("greet.v1.GreetService/Greet", SpanKind.SERVER);
    const work = one("handler-work", SpanKind.INTERNAL);

    expect(root.parentSpanId).toBeNull();
    for (const s of [client, server, work]) expect(s.traceId, s.name).toBe(root.traceId);
    expect(client.parentSpanId, "client span is a child of the caller's active span").toBe(root.spanId);
    expect(server.parentSpanId, "server span continues the client span from the request headers").toBe(client.spanId);
    expect(work.parentSpanId, "handler code runs with the server span active").toBe(server.spanId);

    for (const s of [client, server]) {
      expect(s.scope).toBe("connect-otel");
      expect(s.attributes["rpc.method"]).toBe("greet.v1.GreetService/Greet");
      expect(s.attributes["rpc.system.name"]).toBe("grpc");
      expect(s.attributes["rpc.response.status_code"]).toBe("OK");
      expect(s.status.code, "status of a successful call is unset").toBe(0);
    }
    expect(client.attributes["server.address"]).toBe("127.0.0.1");
    expect(typeof client.attributes["server.port"]).toBe("number");
  });

  it("records a server-streaming call with one rpc.message event per message", () => {
    const spans = ready().spans;
    const root = spans.find((s) => s.name === "app");
    const client = spans.find((s) => s.name === "greet.v1.GreetService/GreetStream" && s.kind === SpanKind.CLIENT);
    const server = spans.find((s) => s.name === "greet.v1.GreetService/GreetStream" && s.kind === SpanKind.SERVER);
    expect(client?.parentSpanId).toBe(root?.spanId);
    expect(server?.parentSpanId).toBe(client?.spanId);
    const messages = (s: typeof client) =>
      (s?.events ?? [])
        .filter((e) => e.name === "rpc.message")
        .map((e) => `${e.attributes["rpc.message.type"]} ${e.attributes["rpc.message.id"]}`);
    expect(messages(client)).toEqual(["SENT 1", "RECEIVED 1", "RECEIVED 2", "RECEIVED 3"]);
    expect(messages(server)).toEqual(["RECEIVED 1", "SENT 1", "SENT 2", "SENT 3"]);
  });
});

/** The consumer project besides package.json: schema, buf config, tsconfig, and the program. */
const consumerFiles: Record<string, string> = {
  "buf.yaml": consumerBufYaml,
  "buf.gen.yaml": consumerBufGenYaml,
  "buf.workspace.gen.yaml": workspaceBufGenYaml,
  "proto/greet/v1/greet.proto": `syntax = "proto3";

package greet.v1;

import "connectotel/v1/options.proto";

// GreetService says hello.
service GreetService {
  // Greet answers with one greeting.
  rpc Greet(GreetRequest) returns (GreetResponse) {
    option idempotency_level = NO_SIDE_EFFECTS;
  }

  // GreetStream answers with three greetings.
  rpc GreetStream(GreetRequest) returns (stream GreetResponse);
}

message GreetRequest {
  string name = 1 [(connectotel.v1.field).attribute = "app.greet.name"];
  // Never recorded.
  string token = 2 [debug_redact = true];
}

message GreetResponse {
  string greeting = 1 [(connectotel.v1.field).attribute = "app.greet.greeting"];
}
`,
  "tsconfig.json": `${JSON.stringify(
    {
      compilerOptions: {
        target: "es2022",
        module: "nodenext",
        moduleResolution: "nodenext",
        lib: ["es2023"],
        types: ["node"],
        strict: true,
        noUncheckedIndexedAccess: true,
        exactOptionalPropertyTypes: true,
        noImplicitReturns: true,
        verbatimModuleSyntax: true,
        isolatedModules: true,
        skipLibCheck: true,
        rootDir: "src",
        outDir: "dist",
      },
      include: ["src"],
    },
    null,
    2,
  )}\n`,
  "src/main.ts": `import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { connectNodeAdapter, createGrpcTransport } from "@connectrpc/connect-node";
import { context, propagation, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } from "@opentelemetry/core";
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider } from "@opentelemetry/sdk-trace";
import { protocGenConnectOtel } from "connect-otel/plugin";
import { createTracedGreetServiceClient, traceGreetService } from "./gen/greet/v1/greet_otel.js";
import { GreetService } from "./gen/greet/v1/greet_pb.js";

// What an application's tracing setup does: a provider, AsyncLocalStorage context, W3C propagation.
const exporter = new InMemorySpanExporter();
const provider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] });
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
propagation.setGlobalPropagator(
  new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()] }),
);
trace.setGlobalTracerProvider(provider);
const tracer = trace.getTracer("consumer-app");
const TOKEN = "${TOKEN}";
let tokenArrived = false;

const server = http2.createServer(
  connectNodeAdapter({
    routes(router) {
      router.service(
        GreetService,
        traceGreetService({
          async greet(req) {
            tokenArrived = req.token === TOKEN;
            tracer.startActiveSpan("handler-work", (span) => span.end());
            return { greeting: \`hello \${req.name}\` };
          },
          async *greetStream(req) {
            for (let i = 0; i < 3; i++) yield { greeting: \`\${i} \${req.name}\` };
          },
        }),
      );
    },
  }),
);
const sessions = new Set<http2.ServerHttp2Session>();
server.on("session", (s) => {
  sessions.add(s);
  s.on("close", () => sessions.delete(s));
});
await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
const baseUrl = \`http://127.0.0.1:\${(server.address() as AddressInfo).port}\`;

const client = createTracedGreetServiceClient(createGrpcTransport({ baseUrl }), { baseUrl, protocol: "grpc" });
const { greeting, streamed } = await tracer.startActiveSpan("app", async (span) => {
  try {
    const greeting = (await client.greet({ name: "otel", token: TOKEN })).greeting;
    const streamed: string[] = [];
    for await (const res of client.greetStream({ name: "stream", token: TOKEN })) streamed.push(res.greeting);
    return { greeting, streamed };
  } finally {
    span.end();
  }
});

// Server spans end when the response is written, which may be after the client has it.
const deadline = Date.now() + 5000;
while (exporter.getFinishedSpans().length < 6 && Date.now() < deadline) {
  await new Promise((resolve) => setTimeout(resolve, 10));
}
await provider.forceFlush();

const spans = exporter.getFinishedSpans().map((s) => ({
  name: s.name,
  kind: s.kind,
  traceId: s.spanContext().traceId,
  spanId: s.spanContext().spanId,
  parentSpanId: s.parentSpanContext?.spanId ?? null,
  scope: s.instrumentationScope.name,
  status: s.status,
  attributes: s.attributes,
  events: s.events.map((e) => ({ name: e.name, attributes: e.attributes ?? {} })),
}));
const result = { greeting, streamed, tokenArrived, pluginName: protocGenConnectOtel.name, spans };
for (const s of sessions) s.destroy();
server.close();
process.stdout.write(\`${SPANS_MARKER}\${JSON.stringify(result)}\\n\`, () => process.exit(0));
`,
};
