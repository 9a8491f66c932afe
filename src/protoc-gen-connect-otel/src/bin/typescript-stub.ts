/**
 * Stands in for `typescript` and `@typescript/vfs` in the bundled plugin (bundle-bin.mjs): it
 * exports what `@bufbuild/protoplugin`'s transpiler imports, and throws if that transpiler ever
 * runs. protoplugin imports the compiler at module load for its auto-transpiler (about 0.2 s of a
 * 0.3 s start), but this plugin prints JavaScript and declarations itself and never transpiles, and
 * buf starts one plugin process per proto directory.
 */
const off = (): never => {
  throw new Error("protoc-gen-connect-otel: the TypeScript transpiler is not loaded");
};

export default new Proxy({}, { get: off });
export const createDefaultMapFromNodeModules = off;
export const createSystem = off;
export const createVirtualCompilerHost = off;
