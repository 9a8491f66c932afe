#!/usr/bin/env node
import { skipTranspilerImports } from "./skip-transpiler.js";

// Before protoplugin loads: see skipTranspilerImports.
skipTranspilerImports();
const { runNodeJs } = await import("@bufbuild/protoplugin");
const { protocGenConnectOtel } = await import("../index.js");
runNodeJs(protocGenConnectOtel);
