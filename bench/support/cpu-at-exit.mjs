// Loaded with `node --import` into each plugin process that bench/plugin-start.ts starts (directly
// or through `buf generate`, via NODE_OPTIONS). When the process exits it appends one line to the
// file named by BENCH_CPU_FILE: the script it ran, its CPU time in µs (user, system; the whole
// process since it started, so Node's own start-up is included) and the ms since its time origin.
// Plain JavaScript, so that it loads without tsx and on every Node the plugin supports.
import { appendFileSync } from "node:fs";

const file = process.env.BENCH_CPU_FILE;
if (file) {
  process.on("exit", () => {
    const { user, system } = process.cpuUsage();
    appendFileSync(file, `${process.argv[1] ?? ""}\t${user}\t${system}\t${performance.now().toFixed(2)}\n`);
  });
}
