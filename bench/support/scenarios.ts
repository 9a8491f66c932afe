/** The calls the benchmarks make: what one call of each scenario is and what unit it counts. */

import type { UserCalls } from "./grpc-js-user.js";

/** Names of the scenarios, in the order they run and print. */
export const SCENARIO_NAMES = ["unary", "unary-concurrent", "stream-100", "stream-10000", "bidi"] as const;
export type ScenarioName = (typeof SCENARIO_NAMES)[number];

/** One benchmark scenario: what a call is and what unit its throughput counts. */
export interface Scenario {
  readonly name: ScenarioName;
  readonly title: string;
  /** What throughput counts: calls, messages, or message pairs (one each way). */
  readonly unit: "call" | "msg" | "pair";
  /** Calls in flight at once; 1 runs them one after the other and records their latencies. */
  readonly concurrency: number;
  /** Makes one call and resolves to the units it completed. */
  call(calls: UserCalls): Promise<number>;
}

/** Runs a call that must deliver `count` messages and resolves to `count`. */
async function exactly(count: number, received: Promise<number>): Promise<number> {
  const n = await received;
  if (n !== count) throw new Error(`expected ${count} messages, received ${n}`);
  return count;
}

/** The scenarios, with `concurrency` calls in flight in `unary-concurrent`. */
export function scenarios(concurrency: number): Record<ScenarioName, Scenario> {
  return {
    unary: {
      name: "unary",
      title: "unary FetchUser, one call at a time",
      unit: "call",
      concurrency: 1,
      call: (c) => c.unary().then(() => 1),
    },
    "unary-concurrent": {
      name: "unary-concurrent",
      title: `unary FetchUser, ${concurrency} calls in flight`,
      unit: "call",
      concurrency,
      call: (c) => c.unary().then(() => 1),
    },
    "stream-100": {
      name: "stream-100",
      title: "server stream StreamUsers of 100 messages, one call at a time",
      unit: "msg",
      concurrency: 1,
      call: (c) => exactly(100, c.serverStream(100)),
    },
    "stream-10000": {
      name: "stream-10000",
      title: "server stream StreamUsers of 10,000 messages, one call at a time",
      unit: "msg",
      concurrency: 1,
      call: (c) => exactly(10_000, c.serverStream(10_000)),
    },
    bidi: {
      name: "bidi",
      title: "bidi Chat of 100 messages each way, one call at a time",
      unit: "pair",
      concurrency: 1,
      call: (c) => exactly(100, c.bidi(100)),
    },
  };
}
