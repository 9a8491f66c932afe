#!/usr/bin/env node
import * as nodeModule from "node:module";

// V8's compile cache (Node 22.1+) keeps the compiled plugin between the many starts of one
// `buf generate` (one process per proto directory); a no-op where Node lacks it.
(nodeModule as { enableCompileCache?: () => unknown }).enableCompileCache?.();
await import("./run-plugin.js");
