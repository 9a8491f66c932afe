import { readFile } from "node:fs/promises";
import * as path from "node:path";
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import type { SemconvMode } from "connect-otel";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTracedUserServiceClient, traceUserService } from "../generated/user/v1/user_otel.js";
import { UserService } from "../generated/user/v1/user_pb.js";
import { repoRoot } from "./support/plugin-harness.js";
import type { TestServer, Wire } from "./support/servers.js";
import { startServer, wires } from "./support/servers.js";
import { createSpanRecorder } from "./support/span-recorder.js";
import { installTestTracing } from "./support/tracing.js";
import { errorOf } from "./support/user-calls.js";

// The README's table of semantic-convention modes is checked against the spans: for each mode,
// the attribute keys that the table marks are exactly the keys in the rpc., error. and server.
// namespaces that traced calls write (gRPC and Connect, success and failure, every allow-list).

installTestTracing();
const recorder = createSpanRecorder();
const MODES = ["stable", "legacy", "dup"] as const;
/** The key the README writes as `<key>`, allow-listed in every list. */
const KEY = "x-key";

/** The table's rows: attribute keys named in the first cell, and the modes whose column has ✓. */
async function readmeModeTable(): Promise<{ keys: string[]; modes: SemconvMode[] }[]> {
  const readme = await readFile(path.join(repoRoot, "README.md"), "utf8");
  const start = readme.indexOf("\n### Semantic-convention modes\n");
  if (start < 0) throw new Error('README.md has no section "### Semantic-convention modes"');
  const table = readme
    .slice(start)
    .split("\n\n")
    .find((block) => block.startsWith("| attribute"));
  if (table === undefined) throw new Error("the section has no table");
  const [header, , ...rows] = table.split("\n");
  const columns = (header ?? "").split("|").map((c) => c.trim());
  return rows.map((row) => {
    const cells = row.split("|").map((c) => c.trim());
    const keys = [...(cells[1] ?? "").matchAll(/`([^`]+)`/g)]
      .map((m) => m[1] ?? "")
      .filter((name) => /^[a-z_]+(\.[a-z_<>]+)+$/.test(name))
      .map((name) => name.replace("<key>", KEY));
    const modes = MODES.filter((mode) => cells[columns.indexOf(mode)] === "✓");
    return { keys, modes };
  });
}

/** FetchUser sets the listed header and trailer, and fails with the code `userId` names (> 0). */
const impl: Partial<ServiceImpl<typeof UserService>> = {
  async fetchUser(req, ctx) {
    ctx.responseHeader.set(KEY, "h");
    ctx.responseTrailer.set(KEY, "t");
    if (req.userId > 0) throw new ConnectError("refused", req.userId as Code);
    return { id: req.userId };
  },
};

const lists = { requestHeaders: [KEY], responseHeaders: [KEY], responseTrailers: [KEY] };
/** One gRPC and one Connect wire: between them they write every system's names. */
const someWires = [wires.find((w) => w.protocol === "grpc"), wires.find((w) => w.protocol === "connect")] as Wire[];
const servers: TestServer[] = [];
const observed = new Map<SemconvMode, Set<string>>();

beforeAll(async () => {
  for (const mode of MODES) {
    const keys = new Set<string>();
    observed.set(mode, keys);
    for (const wire of someWires) {
      const options = { tracerProvider: recorder.provider, semconv: mode, ...lists };
      const server = await startServer(wire, (router) => router.service(UserService, traceUserService(impl, options)));
      servers.push(server);
      recorder.reset();
      const client = createTracedUserServiceClient(server.transport(), { ...options, baseUrl: server.baseUrl });
      const headers = { [KEY]: "r" };
      await client.fetchUser({ userId: 0 }, { headers });
      for (const code of [Code.NotFound, Code.Unavailable])
        await errorOf(client.fetchUser({ userId: code }, { headers }));
      await recorder.settle();
      for (const span of recorder.spans()) {
        for (const key of Object.keys(span.attributes)) if (/^(rpc|error|server)\./.test(key)) keys.add(key);
      }
    }
  }
});

afterAll(async () => {
  for (const server of servers) await server.close();
});

describe("README: the table of semantic-convention modes", () => {
  it("names attributes in every row", async () => {
    const rows = await readmeModeTable();
    expect(rows.length).toBeGreaterThan(10);
    for (const row of rows) expect(row.keys.length, JSON.stringify(row)).toBeGreaterThan(0);
  });

  it.each(MODES)("%s: the keys marked in its column are exactly those the spans carry", async (mode) => {
    const rows = await readmeModeTable();
    const documented = new Set(rows.filter((r) => r.modes.includes(mode)).flatMap((r) => r.keys));
    expect([...(observed.get(mode) ?? [])].sort()).toEqual([...documented].sort());
  });
});
