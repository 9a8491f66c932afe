import { afterAll, beforeAll } from "vitest";

/** Errors that escaped every handler of the process while a test file ran. */
export interface Escapes {
  /** Returns the unhandled rejections and uncaught exceptions seen since the last call, and forgets them. */
  take(): unknown[];
}

/**
 * Listens for `unhandledRejection` and `uncaughtException` on the process from `beforeAll` to
 * `afterAll` of the calling test file, so that a test can assert that nothing escaped during it.
 * vitest reports such errors as well, but only for the whole run, not per test.
 */
export function watchEscapes(): Escapes {
  const seen: unknown[] = [];
  const record = (reason: unknown) => seen.push(reason);
  beforeAll(() => {
    process.on("unhandledRejection", record);
    process.on("uncaughtException", record);
  });
  afterAll(() => {
    process.off("unhandledRejection", record);
    process.off("uncaughtException", record);
  });
  return { take: () => seen.splice(0) };
}

/** What a piece of work gave and the errors that escaped every handler while it ran. */
export interface Captured<T> {
  readonly result: T;
  /** `uncaughtException` and `unhandledRejection` reasons, in order. */
  readonly escaped: unknown[];
}

/**
 * Runs `work` with the process's `uncaughtException` and `unhandledRejection` listeners (vitest's
 * among them) replaced by one that records what escapes, and puts them back once `work` settled
 * and the event loop has turned once more (an error that `work` threw from a `process.nextTick`
 * callback or an event listener surfaces before the next macrotask). For library code that lets
 * an error escape — connect's client does, for a request iterable that is not async — so that a
 * test can compare what escaped instead of failing the run.
 */
export async function captureEscapes<T>(work: () => Promise<T>): Promise<Captured<T>> {
  const escaped: unknown[] = [];
  const record = (reason: unknown) => escaped.push(reason);
  const uncaught = process.listeners("uncaughtException");
  const unhandled = process.listeners("unhandledRejection");
  process.removeAllListeners("uncaughtException").on("uncaughtException", record);
  process.removeAllListeners("unhandledRejection").on("unhandledRejection", record);
  try {
    return { result: await work(), escaped };
  } finally {
    await new Promise((resolve) => setImmediate(resolve));
    process.removeListener("uncaughtException", record).removeListener("unhandledRejection", record);
    for (const listener of uncaught) process.on("uncaughtException", listener);
    for (const listener of unhandled) process.on("unhandledRejection", listener);
  }
}
