import { mkdir, readFile } from "node:fs/promises";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { VERSION as RUNTIME_VERSION } from "../src/connect-otel/src/version.js";
import { VERSION as PLUGIN_VERSION } from "../src/protoc-gen-connect-otel/src/version.js";
import {
  installedCopies,
  installSpecs,
  makeUserDir,
  npm,
  type PackageJson,
  type PackedWorkspaces,
  packWorkspaces,
  readPackageJson,
  removeUserDir,
} from "./support/packed-project.js";
import {
  listFiles,
  PROCESS_TEST_TIMEOUT_MS,
  pluginDir,
  repoRoot,
  requireDist,
  runtimeDir,
} from "./support/plugin-harness.js";

/**
 * The two published packages as npm packs them, and what a production install of the runtime
 * brings: its peers, one copy each, and no generator.
 */

const PEERS = ["@bufbuild/protobuf", "@connectrpc/connect", "@opentelemetry/api"];
/** Scripts npm runs in a consumer's install; a published package must have none. */
const INSTALL_SCRIPTS = ["preinstall", "install", "postinstall", "prepare"];

let work: string | undefined;
let packed: PackedWorkspaces;
let runtimePkg: PackageJson;
let pluginPkg: PackageJson;
let rootPkg: PackageJson;
/** Installed copies in a production install of the runtime with an older protobuf. */
let production: Map<string, Set<string>>;
let setupError: Error | undefined;

beforeAll(async () => {
  requireDist();
  [runtimePkg, pluginPkg, rootPkg] = await Promise.all([
    readPackageJson(runtimeDir),
    readPackageJson(pluginDir),
    readPackageJson(repoRoot),
  ]);
  try {
    work = await makeUserDir("packages-");
    packed = await packWorkspaces(work);
    const app = path.join(work, "app");
    await mkdir(app);
    await npm(app, ["init", "-y"]);
    // An app on an older protobuf than the repository's, inside the runtime's peer range.
    const specs = await installSpecs(["connect-otel", "@connectrpc/connect", "@opentelemetry/api"], packed);
    await npm(app, ["install", "--omit=dev", ...specs, "@bufbuild/protobuf@2.13.0"]);
    production = await installedCopies(app);
  } catch (e) {
    setupError = e instanceof Error ? e : new Error(String(e));
  }
}, PROCESS_TEST_TIMEOUT_MS);

afterAll(() => removeUserDir(work), PROCESS_TEST_TIMEOUT_MS);

function ready(): void {
  if (setupError !== undefined) throw setupError;
}

/** Every file a package.json `exports` map points at, without `./`. */
function exportTargets(value: unknown): string[] {
  if (typeof value === "string") return [value.replace(/^\.\//, "")];
  if (typeof value === "object" && value !== null) return Object.values(value).flatMap(exportTargets);
  return [];
}

describe("npm pack", () => {
  it("packs the runtime's ESM and CommonJS builds with declarations, and nothing else of the repository", () => {
    ready();
    const files = packed.runtime.files;
    expect(files).toEqual(
      expect.arrayContaining([
        "LICENSE",
        "README.md",
        "package.json",
        "dist/esm/index.js",
        "dist/esm/index.d.ts",
        "dist/cjs/index.js",
        "dist/cjs/index.d.ts",
        "dist/cjs/package.json",
      ]),
    );
    expect(files.filter((f) => !/^(dist\/(esm|cjs)\/|LICENSE$|README\.md$|package\.json$)/.test(f))).toEqual([]);
    expect(files.filter((f) => /(^|\/)(proto|bin|test|generated)\//.test(f) || f.endsWith(".map"))).toEqual([]);
  });

  it("packs the plugin's bin, entry point and options proto", () => {
    ready();
    const files = packed.plugin.files;
    expect(files).toEqual(
      expect.arrayContaining([
        "LICENSE",
        "README.md",
        "package.json",
        "dist/index.js",
        "dist/index.d.ts",
        "proto/connectotel/v1/options.proto",
        ...Object.values(pluginPkg.bin ?? {}),
      ]),
    );
    expect(files.filter((f) => !/^(dist\/|proto\/|LICENSE$|README\.md$|package\.json$)/.test(f))).toEqual([]);
  });

  it.each(["runtime", "plugin"] as const)("packs every file the %s's exports map names", (which) => {
    ready();
    const pkg = which === "runtime" ? runtimePkg : pluginPkg;
    const targets = exportTargets(pkg.exports).filter((t) => t !== "package.json");
    expect(targets.length).toBeGreaterThan(0);
    expect(packed[which].files).toEqual(expect.arrayContaining(targets));
  });

  it.each(["runtime", "plugin"] as const)(
    "packs no stale build output in the %s: every dist/**/*.js has a source",
    async (which) => {
      ready();
      const dir = which === "runtime" ? runtimeDir : pluginDir;
      const sources = new Set((await listFiles(path.join(dir, "src"))).map((f) => f.replace(/\.ts$/, "")));
      const stale = packed[which].files
        .filter((f) => f.startsWith("dist/") && f.endsWith(".js"))
        .filter((f) => !sources.has(f.replace(/^dist\/((esm|cjs)\/)?/, "").replace(/\.js$/, "")));
      expect(stale, "dist/ files without a source (rebuild from scratch)").toEqual([]);
    },
  );
});

describe("package manifests", () => {
  it("give the runtime its peers and the semantic-convention names (pinned to a minor), and the plugin the generator's", () => {
    expect(runtimePkg.dependencies ?? {}).toEqual({ "@opentelemetry/semantic-conventions": "~1.45.0" });
    expect(Object.keys(runtimePkg.peerDependencies ?? {}).sort()).toEqual(PEERS);
    expect(Object.keys(pluginPkg.dependencies ?? {}).sort()).toEqual(["@bufbuild/protobuf", "@bufbuild/protoplugin"]);
    expect(pluginPkg.peerDependencies).toBeUndefined();
  });

  it("move their versions together, and the code's VERSION constants with them", () => {
    expect(pluginPkg.version).toBe(runtimePkg.version);
    expect(RUNTIME_VERSION).toBe(runtimePkg.version);
    expect(PLUGIN_VERSION).toBe(pluginPkg.version);
  });

  it("run no script in a consumer's install, and build in prepack", () => {
    for (const pkg of [runtimePkg, pluginPkg]) {
      const scripts = Object.keys(pkg.scripts ?? {});
      expect(
        scripts.filter((s) => INSTALL_SCRIPTS.includes(s)),
        pkg.name,
      ).toEqual([]);
      expect(pkg.scripts?.prepack, pkg.name).toBe("npm run build");
    }
  });

  it("claim the Node.js line that CI runs as the oldest", async () => {
    const ci = await readFile(path.join(repoRoot, ".ci", "run"), "utf8");
    const oldest = /node@(\d+)\.\d+\.\d+/.exec(ci)?.[1];
    expect(oldest, ".ci/run installs a second, older Node").toBeDefined();
    for (const pkg of [runtimePkg, pluginPkg]) expect(pkg.engines?.node, pkg.name).toBe(`>=${oldest}`);
    expect(rootPkg.devDependencies?.node, "the repository's own Node runs every suite").toMatch(/^\d+\./);
  });
});

describe("a production install of the runtime and its peers", () => {
  it("holds no TypeScript and no protoplugin", () => {
    ready();
    expect(
      [...production.keys()].filter((name) => /^(typescript|@bufbuild\/protoplugin|@typescript\/)/.test(name)),
    ).toEqual([]);
  });

  it("holds exactly one copy of each peer, the app's own (no nested protobuf under connect-otel)", () => {
    ready();
    for (const peer of PEERS) expect([...(production.get(peer) ?? [])], peer).toHaveLength(1);
    const protobuf = [...(production.get("@bufbuild/protobuf") ?? [])][0] ?? "";
    expect(protobuf.endsWith(path.join("app", "node_modules", "@bufbuild", "protobuf"))).toBe(true);
  });
});
