import type { Plugin } from "@bufbuild/protoplugin";
import { createEcmaScriptPlugin } from "@bufbuild/protoplugin";
import { generate } from "./generate.js";
import { VERSION } from "./version.js";

/**
 * The protoc-gen-connect-otel plugin: `run(CodeGeneratorRequest)` returns the
 * `CodeGeneratorResponse` with one `*_otel` file per proto file that has services.
 *
 * Options are protoplugin's standard ones (`target=ts|js|dts` joined by `+`, `import_extension`,
 * `js_import_style`, `rewrite_imports`, `keep_empty_files`, `ts_nocheck`); any other option fails
 * generation with `invalid option "<option>"`. JavaScript and declarations are printed directly,
 * never transpiled.
 */
export const protocGenConnectOtel: Plugin = createEcmaScriptPlugin({
  name: "protoc-gen-connect-otel",
  version: `v${VERSION}`,
  generateTs: generate,
  generateJs: generate,
  generateDts: generate,
});
