import { readFile } from "node:fs/promises";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  bufBin,
  listFiles,
  makeTmpDir,
  PROCESS_HANG_GUARD_MS,
  PROCESS_TEST_TIMEOUT_MS,
  removeTmpDir,
  repoRoot,
  runOk,
} from "./support/plugin-harness.js";

/**
 * generated/ is the checked-in output of `buf generate` (buf.gen.yaml) for proto/: it must equal
 * what the current plugin (run from src/ with tsx, as buf.gen.yaml says) and protoc-gen-es write now.
 */
describe("generated/ is fresh", () => {
  let tmp: string | undefined;
  let fresh = "";
  const checkedIn = path.join(repoRoot, "generated");

  beforeAll(async () => {
    tmp = await makeTmpDir("plugin-freshness-");
    // `-o` prefixes every `out:` of the repository's own buf.gen.yaml, so this runs exactly the
    // checked-in configuration, writing <tmp>/generated instead of generated/.
    await runOk(bufBin, ["generate", "-o", tmp], { cwd: repoRoot, timeoutMs: PROCESS_HANG_GUARD_MS });
    fresh = path.join(tmp, "generated");
  }, PROCESS_TEST_TIMEOUT_MS);

  afterAll(async () => {
    await removeTmpDir(tmp);
  });

  it("has the same set of files", async () => {
    const want = await listFiles(fresh);
    const have = await listFiles(checkedIn);
    expect(want.length, "buf generate wrote no files").toBeGreaterThan(0);
    expect(
      have,
      "generated/ has other files than a fresh `buf generate` writes: run `npm run generate` and commit the result",
    ).toEqual(want);
  });

  it("has every file byte for byte as a fresh buf generate writes it", async () => {
    const stale: string[] = [];
    for (const name of await listFiles(fresh)) {
      const want = await readFile(path.join(fresh, name));
      const have = await readFile(path.join(checkedIn, name)).catch(() => undefined);
      if (have === undefined) continue; // reported by the file-set test
      if (!want.equals(have)) stale.push(`${name}: ${firstDifference(have.toString("utf8"), want.toString("utf8"))}`);
    }
    expect(stale, "generated/ is stale: run `npm run generate` and commit the result").toEqual([]);
  });
});

/** Where two texts first differ, as `line N: "<checked in>" != "<fresh>"`. */
function firstDifference(have: string, want: string): string {
  const a = have.split("\n");
  const b = want.split("\n");
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if (a[i] !== b[i]) {
      return `line ${i + 1}: checked in ${JSON.stringify(a[i] ?? "<end of file>")}, fresh ${JSON.stringify(b[i] ?? "<end of file>")}`;
    }
  }
  return "differs in bytes only (line endings or encoding)";
}
