/**
 * How long a test waits for something that must happen (a span to end, a handler to start, a
 * condition to hold) before it reports a hang: a guard sized for a 2-core machine that runs other
 * CPU-heavy work at the same time, never a speed check. Waits end as soon as the thing happens.
 */
export const HANG_GUARD_MS = 15_000;

/** A one-shot flag that tests and handlers await: `open()` resolves `opened`. */
export interface Latch {
  readonly opened: Promise<void>;
  readonly isOpen: boolean;
  open(): void;
}

/** Creates a closed {@link Latch}. */
export function createLatch(): Latch {
  let resolve: () => void = () => {};
  let isOpen = false;
  const opened = new Promise<void>((r) => {
    resolve = r;
  });
  return {
    opened,
    get isOpen() {
      return isOpen;
    },
    open() {
      isOpen = true;
      resolve();
    },
  };
}

/** Resolves when `signal` aborts (at once if it already has). */
export function aborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));
}

/** Waits `ms` milliseconds; rejects with the signal's reason if it aborts first. */
export function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** `promise`, or a rejection naming `what` if it has not settled within `ms` milliseconds. */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
