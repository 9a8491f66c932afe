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
