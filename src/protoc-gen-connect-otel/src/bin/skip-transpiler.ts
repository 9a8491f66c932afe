import * as nodeModule from "node:module";

/**
 * A module standing in for `typescript` and `@typescript/vfs` when protoplugin imports them: it
 * exports what protoplugin's transpiler imports, and throws if that transpiler ever runs.
 */
const stub = `data:text/javascript,${encodeURIComponent(
  [
    "const off = () => { throw new Error('protoc-gen-connect-otel: the TypeScript transpiler is not loaded'); };",
    "export default new Proxy({}, { get: off });",
    "export const createDefaultMapFromNodeModules = off, createSystem = off, createVirtualCompilerHost = off;",
  ].join("\n"),
)}`;

/**
 * Keeps the TypeScript compiler out of the plugin process. protoplugin imports it at module load
 * for its auto-transpiler (about 0.2 s of a 0.3 s start here), but this plugin prints JavaScript and
 * declarations itself and never transpiles, and buf starts one plugin process per proto directory.
 * Uses Node's synchronous module hooks (`module.registerHooks`, Node 22.15+); a no-op where they
 * are missing, which only costs the time.
 */
export function skipTranspilerImports(): void {
  const registerHooks = (nodeModule as { registerHooks?: typeof nodeModule.registerHooks }).registerHooks;
  if (typeof registerHooks !== "function") return;
  registerHooks({
    resolve(specifier, context, nextResolve) {
      if (
        (specifier === "typescript" || specifier === "@typescript/vfs") &&
        context.parentURL?.includes("/@bufbuild/protoplugin/")
      ) {
        return { url: stub, format: "module", shortCircuit: true };
      }
      return nextResolve(specifier, context);
    },
  });
}
