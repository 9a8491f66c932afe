/** Small statistics for benchmark rounds: medians and spreads of a handful of numbers. */

/** The median and the extremes of a sample. */
export interface Spread {
  readonly median: number;
  readonly min: number;
  readonly max: number;
}

/**
 * The q-quantile (0 ≤ q ≤ 1) of already sorted numbers, by linear interpolation between the two
 * nearest ranks (type 7 of Hyndman and Fan, what numpy and R use by default); NaN when empty.
 */
export function quantileSorted(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  if (n === 0) return Number.NaN;
  const at = (n - 1) * q;
  const lo = Math.floor(at);
  const hi = Math.min(n - 1, lo + 1);
  const low = sorted[lo] as number;
  const high = sorted[hi] as number;
  return low + (high - low) * (at - lo);
}

/** Median, minimum and maximum of `values`; NaN for all three when there are none. */
export function spread(values: readonly number[]): Spread {
  const sorted = [...values].sort((a, b) => a - b);
  return {
    median: quantileSorted(sorted, 0.5),
    min: sorted[0] ?? Number.NaN,
    max: sorted.at(-1) ?? Number.NaN,
  };
}

/** A growable list of float samples that does not allocate per sample once it has grown. */
export class Samples {
  #data = new Float64Array(4096);
  #length = 0;

  push(value: number): void {
    if (this.#length === this.#data.length) {
      const grown = new Float64Array(this.#data.length * 2);
      grown.set(this.#data);
      this.#data = grown;
    }
    this.#data[this.#length++] = value;
  }

  get length(): number {
    return this.#length;
  }

  /** Empties the list, keeping its storage. */
  clear(): void {
    this.#length = 0;
  }

  /** p50, mean and p99 of the samples, in their unit; NaN when there are none. */
  summary(): { p50: number; mean: number; p99: number } {
    const sorted = this.#data.slice(0, this.#length).sort();
    let sum = 0;
    for (const v of sorted) sum += v;
    return {
      p50: quantileSorted(sorted, 0.5),
      mean: this.#length === 0 ? Number.NaN : sum / this.#length,
      p99: quantileSorted(sorted, 0.99),
    };
  }
}
