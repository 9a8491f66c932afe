import { runNodeJs } from "@bufbuild/protoplugin";
import { protocGenConnectOtel } from "../index.js";

// The plugin process: reads a CodeGeneratorRequest from stdin, writes the response to stdout.
// `npm run build` bundles this module with its dependencies into dist/bin/run-plugin.js (see
// bundle-bin.mjs), so that a start parses one file and never loads the TypeScript compiler.
runNodeJs(protocGenConnectOtel);
