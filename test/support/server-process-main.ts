import { UserService } from "../../generated/user/v1/user_pb.js";
import { createScenarioService } from "./scenario-service.js";
import type { Wire } from "./servers.js";
import { startServer } from "./servers.js";

// Entry of the child process that `startServerProcess` (server-process.ts) runs with
// `node --import tsx`: serves the scenario service, untraced (its spans would die with it), on
// the wire given as JSON in argv[2], prints `{"baseUrl": ...}` as one line to stdout, and runs
// until it is killed — or until its stdin closes, so that it never outlives the test process.

const wire = JSON.parse(process.argv[2] ?? "") as Wire;
const server = await startServer(wire, (router) => {
  router.service(UserService, createScenarioService([]));
});
process.stdout.write(`${JSON.stringify({ baseUrl: server.baseUrl })}\n`);
process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
