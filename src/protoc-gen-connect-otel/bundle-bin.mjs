// Bundles the plugin process (dist/bin/run-plugin.js, as tsc wrote it) with @bufbuild/protoplugin
// and @bufbuild/protobuf into that one file, with `typescript` and `@typescript/vfs` replaced by
// dist/bin/typescript-stub.js: a start then parses one file and loads no compiler, on every Node
// the package supports (no module hooks needed). Run by `npm run build` after tsc.
import { build } from "esbuild";

await build({
  entryPoints: ["dist/bin/run-plugin.js"],
  outfile: "dist/bin/run-plugin.js",
  allowOverwrite: true,
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node22",
  alias: {
    typescript: "./dist/bin/typescript-stub.js",
    "@typescript/vfs": "./dist/bin/typescript-stub.js",
  },
  logLevel: "warning",
});
