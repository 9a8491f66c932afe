import * as path from "node:path";
import ts from "typescript";
import { repoRoot, runtimeTypes } from "./plugin-harness.js";

/** How a compilation resolves modules: Node's ESM/CJS rules, or a bundler's. */
export type ModuleMode = "nodenext" | "bundler";

/**
 * Compiles every TypeScript file below `dir` (generated sources or declarations, and consumers)
 * under the strictest settings a consumer may use, and returns the formatted diagnostics of those
 * files plus global and option diagnostics (`[]` when it compiles). `skipLibCheck` is off so
 * generated `.d.ts` files are checked; only files below `dir` are asked for their diagnostics, so
 * third-party declarations do not count. `connect-otel` resolves to the runtime's built `dist/esm/index.d.ts`
 * (see `requireDist`). When `expectedRoots` is given, a different number of root files found is
 * reported as the only diagnostic.
 */
export function typecheck(dir: string, module: ModuleMode, expectedRoots?: number): string[] {
  const moduleOptions =
    module === "nodenext"
      ? { module: "nodenext", moduleResolution: "nodenext" }
      : { module: "preserve", moduleResolution: "bundler" };
  const parsed = ts.parseJsonConfigFileContent(
    {
      compilerOptions: {
        ...moduleOptions,
        target: "es2022",
        lib: ["es2023", "dom", "dom.iterable"],
        types: ["node"],
        strict: true,
        noImplicitAny: true,
        noUncheckedIndexedAccess: true,
        exactOptionalPropertyTypes: true,
        noImplicitReturns: true,
        noFallthroughCasesInSwitch: true,
        verbatimModuleSyntax: true,
        isolatedModules: true,
        skipLibCheck: false,
        noEmit: true,
        typeRoots: [path.join(repoRoot, "node_modules", "@types")],
        paths: { "connect-otel": [runtimeTypes] },
      },
      include: ["**/*.ts", "**/*.cts", "**/*.mts"],
      exclude: ["node_modules"],
    },
    ts.sys,
    dir,
  );
  if (parsed.errors.length > 0) return parsed.errors.map(formatDiagnostic);
  const rootNames = parsed.fileNames;
  if (expectedRoots !== undefined && rootNames.length !== expectedRoots) {
    return [`expected ${expectedRoots} root files, tsconfig found: ${rootNames.join(", ")}`];
  }
  const program = ts.createProgram({ rootNames, options: parsed.options });
  const own = program.getSourceFiles().filter((sf) => !path.relative(dir, sf.fileName).startsWith(".."));
  const diagnostics = [
    ...program.getOptionsDiagnostics(),
    ...program.getGlobalDiagnostics(),
    ...own.flatMap((sf) => [...program.getSyntacticDiagnostics(sf), ...program.getSemanticDiagnostics(sf)]),
  ];
  return diagnostics.map(formatDiagnostic);
}

/** `file:line:column TS<code>: message` (or `TS<code>: message` without a location). */
export function formatDiagnostic(d: ts.Diagnostic): string {
  const text = ts.flattenDiagnosticMessageText(d.messageText, "\n");
  if (d.file === undefined || d.start === undefined) return `TS${d.code}: ${text}`;
  const { line, character } = d.file.getLineAndCharacterOfPosition(d.start);
  return `${d.file.fileName}:${line + 1}:${character + 1} TS${d.code}: ${text}`;
}
