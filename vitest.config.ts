import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

export default defineConfig({
  resolve: {
    // Tests and generated code import both packages by name; resolve them to their sources.
    alias: {
      "connect-otel": fileURLToPath(new URL("./src/connect-otel/src/index.ts", import.meta.url)),
      "protoc-gen-connect-otel": fileURLToPath(new URL("./src/protoc-gen-connect-otel/src/index.ts", import.meta.url)),
    },
  },
  test: {
    include: ["test/**/*.test.ts"],
    // Hang guards, not speed checks: sized for a 2-core machine that runs other CPU-heavy work.
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
