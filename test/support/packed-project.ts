import { mkdtemp, readFile, rm } from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { PROCESS_HANG_GUARD_MS, pluginDir, type RunResult, repoRoot, runOk, runtimeDir } from "./plugin-harness.js";

/**
 * Projects of a user, outside the repository: the two workspaces packed with `npm pack`, installed
 * from their tarballs into a new project with the other packages at the versions the repository
 * pins. Such a project lives in the OS temp directory, not in `<repo>/.tmp/`: below the
 * repository, Node and tsc would fall back to the repository's node_modules for anything the
 * tarballs' dependencies miss, which is what these tests are there to catch.
 */

/** One package packed by {@link packWorkspaces}. */
export interface PackedPackage {
  readonly name: string;
  readonly version: string;
  /** Absolute path of the `.tgz`. */
  readonly tarball: string;
  /** Paths inside the package, sorted (`package.json`, `dist/esm/index.js`, ...). */
  readonly files: readonly string[];
}

/** The two packages of the repository, packed. */
export interface PackedWorkspaces {
  readonly runtime: PackedPackage;
  readonly plugin: PackedPackage;
}

/** What package.json files here hold that the tests read. */
export interface PackageJson {
  name: string;
  version: string;
  type?: string;
  engines?: Record<string, string>;
  scripts?: Record<string, string>;
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  bin?: Record<string, string>;
  exports?: Record<string, unknown>;
  files?: string[];
}

/** Reads and parses `<dir>/package.json`. */
export async function readPackageJson(dir: string): Promise<PackageJson> {
  return JSON.parse(await readFile(path.join(dir, "package.json"), "utf8")) as PackageJson;
}

/**
 * The version of `name` that the repository's root package.json pins (devDependencies), so that a
 * user's project gets what the tests use.
 *
 * @throws Error if the repository pins no version of `name`
 */
export async function pinnedVersion(name: string): Promise<string> {
  const root = await readPackageJson(repoRoot);
  const version = root.devDependencies?.[name] ?? root.dependencies?.[name];
  if (version === undefined) throw new Error(`the repository's package.json pins no version of ${name}`);
  return version;
}

/**
 * Environment for npm, buf and node in a user's project: the repository's Node 24 first on PATH
 * (so npm, buf's shim and the plugin's `#!/usr/bin/env node` use it), and none of the variables
 * `npm test` sets for its own script (package, lifecycle, local prefix), so the project's npm acts
 * on the project alone. `extra` is added last.
 */
export function userEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const inherited = Object.entries(process.env).filter(
    ([k]) => !/^npm_(package_|lifecycle_|command$|execpath$|node_execpath$|config_local_prefix$)|^INIT_CWD$/.test(k),
  );
  return {
    ...Object.fromEntries(inherited),
    PATH: [path.dirname(process.execPath), process.env.PATH ?? ""].join(path.delimiter),
    ...extra,
  };
}

/**
 * `userEnv` for buf with no way out: an empty buf cache below `work` and every proxy variable
 * pointing at a closed loopback port, so that any attempt to reach the BSR or the network fails.
 */
export function offlineEnv(work: string): NodeJS.ProcessEnv {
  const closed = "http://127.0.0.1:9";
  return userEnv({
    BUF_CACHE_DIR: path.join(work, "buf-cache"),
    HTTPS_PROXY: closed,
    HTTP_PROXY: closed,
    ALL_PROXY: closed,
    NO_PROXY: "",
  });
}

/**
 * Packs both workspaces into `dest` with `npm pack`. Scripts are not run (`--ignore-scripts`):
 * `prepack` would rebuild `dist/` while other test files use it; `npm test` builds before vitest.
 */
export async function packWorkspaces(dest: string): Promise<PackedWorkspaces> {
  const pack = async (dir: string): Promise<PackedPackage> => {
    const res = await runOk("npm", ["pack", "--ignore-scripts", "--json", "--pack-destination", dest], {
      cwd: dir,
      env: userEnv(),
      timeoutMs: PROCESS_HANG_GUARD_MS,
    });
    const [info] = JSON.parse(res.stdout) as {
      name: string;
      version: string;
      filename: string;
      files: { path: string }[];
    }[];
    if (info === undefined) throw new Error(`npm pack in ${dir} printed no package: ${res.stdout}`);
    return {
      name: info.name,
      version: info.version,
      tarball: path.join(dest, info.filename),
      files: info.files.map((f) => f.path).sort(),
    };
  };
  const [runtime, plugin] = await Promise.all([pack(runtimeDir), pack(pluginDir)]);
  return { runtime, plugin };
}

/**
 * Rewrites the package names of an `npm install` the way a test installs them: the repository's
 * own packages as their tarballs, every other name at the version the repository pins.
 */
export async function installSpecs(names: readonly string[], packed: PackedWorkspaces): Promise<string[]> {
  const own = new Map([packed.runtime, packed.plugin].map((p) => [p.name, p.tarball]));
  return Promise.all(names.map(async (name) => own.get(name) ?? `${name}@${await pinnedVersion(name)}`));
}

/** `npm <args>` in `cwd` for a user's project, preferring the local cache; throws unless it exits 0. */
export function npm(cwd: string, args: readonly string[], timeoutMs = PROCESS_HANG_GUARD_MS): Promise<RunResult> {
  return runOk("npm", [...args, "--prefer-offline", "--no-audit", "--no-fund", "--no-update-notifier"], {
    cwd,
    env: userEnv(),
    timeoutMs,
  });
}

/** A new directory `<os tmp>/connect-otel-<prefix>XXXXXX` for a user's project. */
export function makeUserDir(prefix: string): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), `connect-otel-${prefix}`));
}

/** Removes a directory made by {@link makeUserDir}, unless `KEEP_TEST_TMP=1`; refuses any other path. */
export async function removeUserDir(dir: string | undefined): Promise<void> {
  if (dir === undefined) return;
  if (process.env.KEEP_TEST_TMP === "1") {
    console.info(`KEEP_TEST_TMP=1: keeping ${dir}`);
    return;
  }
  if (!path.basename(dir).startsWith("connect-otel-") || path.dirname(dir) !== os.tmpdir()) {
    throw new Error(`refusing to remove ${dir}`);
  }
  await rm(dir, { recursive: true, force: true, maxRetries: 3 });
}

/** One package in the output of `npm ls --all --json`. */
interface LsNode {
  version?: string;
  path?: string;
  dependencies?: Record<string, LsNode>;
}

/**
 * Every installed copy of every package in a project, by name, from `npm ls --all --json --long`
 * (`omitDev`: what `npm install --omit=dev` would keep). A deduped entry is the same copy and is
 * counted once, by its path.
 */
export async function installedCopies(project: string, omitDev = false): Promise<Map<string, Set<string>>> {
  const args = ["ls", "--all", "--json", "--long", ...(omitDev ? ["--omit=dev"] : [])];
  const res = await runOk("npm", args, { cwd: project, env: userEnv(), timeoutMs: PROCESS_HANG_GUARD_MS });
  const copies = new Map<string, Set<string>>();
  const walk = (deps: Record<string, LsNode> | undefined) => {
    for (const [name, node] of Object.entries(deps ?? {})) {
      if (node.path === undefined) continue;
      const paths = copies.get(name) ?? new Set<string>();
      copies.set(name, paths.add(node.path));
      walk(node.dependencies);
    }
  };
  walk((JSON.parse(res.stdout) as LsNode).dependencies);
  return copies;
}
