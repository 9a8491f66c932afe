import { type ChildProcess, spawn } from "node:child_process";
import { mkdir, readFile } from "node:fs/promises";
import * as net from "node:net";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type OtlpReceiver, startOtlpReceiver } from "../examples/otlp-receiver.js";
import type { SpanRecord } from "../examples/span-record.js";
import {
  installSpecs,
  makeUserDir,
  npm,
  offlineEnv,
  type PackedWorkspaces,
  packWorkspaces,
  removeUserDir,
  userEnv,
} from "./support/packed-project.js";
import {
  listFiles,
  PROCESS_HANG_GUARD_MS,
  PROCESS_TEST_TIMEOUT_MS,
  repoRoot,
  requireDist,
  runOk,
  writeTree,
} from "./support/plugin-harness.js";

/**
 * The README's quick start is the test: every fenced block of its "Quick start" section, in order,
 * in a new project outside the repository. A `sh` block's lines are run (see {@link runLine}: npm
 * installs get the packed tarballs of both workspaces and the repository's pinned versions of the
 * other packages; buf runs offline); any other block is a file, named by its first line (`// path`,
 * `# path`) and written as it stands. Nothing of the quick start is copied here: when the README
 * changes the test follows it, and when it rots the test fails. The programs export OTLP/JSON to an
 * in-process receiver, whose spans the tests read.
 */

interface Block {
  readonly lang: string;
  readonly text: string;
}

/** The fenced blocks of the README section `## <title>`, in order. */
function sectionBlocks(readme: string, title: string): Block[] {
  const start = readme.indexOf(`\n## ${title}\n`);
  if (start < 0) throw new Error(`README.md has no section "## ${title}"`);
  const end = readme.indexOf("\n## ", start + 1);
  const section = readme.slice(start, end < 0 ? undefined : end);
  return [...section.matchAll(/^```(\w*)\n([\s\S]*?)^```$/gm)].map((m) => ({
    lang: m[1] ?? "",
    text: m[2] ?? "",
  }));
}

/** The path a file block names on its first line (`// src/server.ts`, `# buf.yaml`). */
function fileName(block: Block): string {
  const name = /^(?:\/\/|#)\s*(\S+)\s*$/.exec(block.text.split("\n")[0] ?? "")?.[1];
  if (name === undefined)
    throw new Error(`README quick start: a ${block.lang} block does not name its file:\n${block.text}`);
  return name;
}

/** Spans of the two programs, from the receiver. */
let receiver: OtlpReceiver | undefined;
let work: string | undefined;
let app = "";
let packed: PackedWorkspaces | undefined;
let blocks: Block[] = [];
/** Lines of the quick start that ran, in order. */
const ran: string[] = [];
let clientOutput = "";
let server: ChildProcess | undefined;
let serverExit: Promise<number | null> | undefined;
let serverStderr = "";
let setupError: Error | undefined;

/** A free loopback port, for the server's `PORT`. */
async function freePort(): Promise<number> {
  const probe = net.createServer();
  await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
  const { port } = probe.address() as net.AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

/** Resolves once something accepts TCP connections on 127.0.0.1:`port`; rejects after `timeoutMs`. */
async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, "127.0.0.1", () => {
        socket.destroy();
        resolve(true);
      });
      socket.on("error", () => resolve(false));
    });
    if (open) return;
    if (Date.now() > deadline)
      throw new Error(`nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms\n${serverStderr}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * What the quick start's programs get from their environment: where to listen and call, and where
 * to export (OTLP/JSON to the receiver; no metrics or logs exporters). No other `OTEL_*` variable
 * of the test run reaches them.
 */
function programEnv(service: string, port: number): NodeJS.ProcessEnv {
  const inherited = Object.entries(userEnv()).filter(([k]) => !k.startsWith("OTEL_"));
  return {
    ...Object.fromEntries(inherited),
    PORT: String(port),
    BASE_URL: `http://127.0.0.1:${port}`,
    OTEL_SERVICE_NAME: service,
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver?.url,
    OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
    OTEL_TRACES_EXPORTER: "otlp",
    OTEL_METRICS_EXPORTER: "none",
    OTEL_LOGS_EXPORTER: "none",
  };
}

/**
 * Runs one line of a quick start `sh` block in the project, as a user would, with these
 * differences only: `npm i` gets tarballs and pinned versions (see `installSpecs`), buf runs
 * offline, and the programs get `PORT`/`BASE_URL` and an OTLP endpoint in their environment.
 *
 * @throws Error for a line the test has no rule for, so a new kind of step cannot go unrun
 */
async function runLine(line: string, port: number): Promise<void> {
  const [cmd, ...args] = line.split(/\s+/);
  if (cmd === "npm" && (args[0] === "i" || args[0] === "install")) {
    const flags = args.slice(1).filter((a) => a.startsWith("-"));
    const names = args.slice(1).filter((a) => !a.startsWith("-"));
    await npm(app, ["install", ...flags, ...(await installSpecs(names, packed as PackedWorkspaces))]);
  } else if (cmd === "npm" && (args[0] === "init" || args[0] === "pkg")) {
    await npm(app, args);
  } else if (cmd === "npx") {
    const env = args[0] === "buf" ? offlineEnv(work as string) : userEnv();
    await runOk("npx", args, { cwd: app, env, timeoutMs: PROCESS_HANG_GUARD_MS });
  } else if (cmd === "node" && args.at(-1) === "&") {
    const child = spawn(process.execPath, args.slice(0, -1), {
      cwd: app,
      env: programEnv("readme-server", port),
      stdio: ["ignore", "ignore", "pipe"],
    });
    child.stderr?.on("data", (b: Buffer) => {
      serverStderr += b.toString();
    });
    server = child;
    serverExit = new Promise((resolve) => child.on("exit", (code) => resolve(code)));
    await waitForPort(port, PROCESS_HANG_GUARD_MS);
  } else if (cmd === "node") {
    const res = await runOk(process.execPath, args, {
      cwd: app,
      env: programEnv("readme-client", port),
      timeoutMs: PROCESS_HANG_GUARD_MS,
    });
    clientOutput += res.stdout;
  } else {
    throw new Error(`README quick start: test/readme.test.ts has no rule to run \`${line}\``);
  }
  ran.push(line);
}

beforeAll(async () => {
  requireDist();
  try {
    blocks = sectionBlocks(await readFile(path.join(repoRoot, "README.md"), "utf8"), "Quick start");
    receiver = await startOtlpReceiver();
    work = await makeUserDir("readme-");
    app = path.join(work, "app");
    await mkdir(app);
    packed = await packWorkspaces(work);
    const port = await freePort();
    for (const block of blocks) {
      if (block.lang === "sh") {
        for (const line of block.text.split("\n").map((l) => l.trim())) {
          if (line !== "" && !line.startsWith("#")) await runLine(line, port);
        }
      } else {
        await writeTree(app, { [fileName(block)]: block.text });
      }
    }
    // The server flushes its spans when it stops (SIGTERM, as the README's server handles it).
    server?.kill("SIGTERM");
    const code = await Promise.race([
      serverExit,
      new Promise((r) => setTimeout(() => r("timeout"), PROCESS_HANG_GUARD_MS)),
    ]);
    if (code !== 0) throw new Error(`the quick start's server ended with ${String(code)}\n${serverStderr}`);
  } catch (e) {
    setupError = e instanceof Error ? e : new Error(String(e));
  }
}, PROCESS_TEST_TIMEOUT_MS);

afterAll(async () => {
  server?.kill("SIGKILL");
  await receiver?.close();
  await removeUserDir(work);
}, PROCESS_TEST_TIMEOUT_MS);

function ready(): { spans: SpanRecord[] } {
  if (setupError !== undefined) throw setupError;
  return { spans: receiver?.spans() ?? [] };
}

function one(spans: SpanRecord[], name: string, kind: SpanRecord["kind"]): SpanRecord {
  const found = spans.filter((s) => s.name === name && s.kind === kind);
  expect(found, `${kind} spans named ${name} among ${spans.map((s) => `${s.name}/${s.kind}`)}`).toHaveLength(1);
  return found[0] as SpanRecord;
}

describe("README quick start", () => {
  it("has the blocks a new project needs, and every line of its sh blocks ran", () => {
    ready();
    const files = blocks.filter((b) => b.lang !== "sh").map(fileName);
    expect(files).toEqual(
      expect.arrayContaining(["tsconfig.json", "buf.yaml", "buf.gen.yaml", "src/server.ts", "src/client.ts"]),
    );
    expect(ran[0], "starts from an empty directory").toBe("npm init -y");
    expect(ran).toEqual(expect.arrayContaining(["npx buf generate", "npx tsc"]));
    expect(ran.filter((l) => l.startsWith("node ")).length).toBe(2);
  });

  it("installs the runtime as a dependency and the plugin as a dev dependency, in an ES module project", async () => {
    ready();
    const pkg = JSON.parse(await readFile(path.join(app, "package.json"), "utf8")) as {
      type?: string;
      dependencies?: Record<string, string>;
      devDependencies?: Record<string, string>;
    };
    expect(pkg.type).toBe("module");
    expect(Object.keys(pkg.dependencies ?? {})).toContain("connect-otel");
    expect(Object.keys(pkg.devDependencies ?? {})).toContain("protoc-gen-connect-otel");
    expect(Object.keys(pkg.dependencies ?? {})).not.toContain("protoc-gen-connect-otel");
  });

  it("generates _pb and _otel files, and the options proto's _pb that they import, offline", async () => {
    ready();
    const gen = await listFiles(path.join(app, "src", "gen"));
    expect(gen).toEqual(["connectotel/v1/options_pb.ts", "greet/v1/greet_otel.ts", "greet/v1/greet_pb.ts"]);
    const otel = await readFile(path.join(app, "src", "gen", "greet", "v1", "greet_otel.ts"), "utf8");
    expect(otel.split("\n").find((l) => l.startsWith("// @generated"))).toBe(
      `// @generated by protoc-gen-connect-otel v${packed?.plugin.version} with parameter "target=ts,import_extension=js"`,
    );
    expect(otel).toMatch(/from "connect-otel";/);
  });

  it("runs: the client prints what the server answered", () => {
    ready();
    expect(clientOutput.trim().split("\n")).toEqual([
      "hello Ada",
      "hello Grace #1",
      "hello Grace #2",
      "hello Grace #3",
    ]);
  });

  it("records a CLIENT span and its SERVER child for each call, one trace per call", () => {
    const { spans } = ready();
    for (const method of ["greet.v1.GreetService/Greet", "greet.v1.GreetService/GreetStream"]) {
      const client = one(spans, method, "CLIENT");
      const server = one(spans, method, "SERVER");
      expect(client.serviceName).toBe("readme-client");
      expect(server.serviceName).toBe("readme-server");
      expect(client.parentSpanId, "the client span is a root").toBeUndefined();
      expect(server.traceId).toBe(client.traceId);
      expect(server.parentSpanId, "the server span continues the client span").toBe(client.spanId);
      for (const s of [client, server]) {
        expect(s.attributes["rpc.method"], `${s.kind} ${method}`).toBe(method);
        expect(s.attributes["rpc.system.name"]).toBe("grpc");
        expect(s.status.code).toBe("UNSET");
      }
    }
    const greet = one(spans, "greet.v1.GreetService/Greet", "CLIENT");
    expect(greet.attributes["server.address"]).toBe("127.0.0.1");
    expect(typeof greet.attributes["server.port"]).toBe("number");
  });

  it("records the annotated field on both sides and never the debug_redact one", () => {
    const { spans } = ready();
    for (const kind of ["CLIENT", "SERVER"] as const) {
      expect(one(spans, "greet.v1.GreetService/Greet", kind).attributes["app.greet.name"]).toBe("Ada");
      expect(one(spans, "greet.v1.GreetService/GreetStream", kind).attributes["app.greet.name"]).toBe("Grace");
    }
    expect(JSON.stringify(spans)).not.toContain("secret");
  });

  it("records one rpc.message event per streamed message", () => {
    const { spans } = ready();
    const messages = (s: SpanRecord) =>
      s.events
        .filter((e) => e.name === "rpc.message")
        .map((e) => `${e.attributes["rpc.message.type"]} ${e.attributes["rpc.message.id"]}`);
    const method = "greet.v1.GreetService/GreetStream";
    expect(messages(one(spans, method, "CLIENT"))).toEqual(["SENT 1", "RECEIVED 1", "RECEIVED 2", "RECEIVED 3"]);
    expect(messages(one(spans, method, "SERVER"))).toEqual(["RECEIVED 1", "SENT 1", "SENT 2", "SENT 3"]);
  });
});
