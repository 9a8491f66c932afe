/**
 * The parts of the OTLP/JSON encoding that traces and metrics share, as the OTLP specification maps
 * the protobuf messages to JSON: `KeyValue` lists of `AnyValue`s, enum values as integers or names,
 * 64-bit integers (times in nanoseconds, counts) as decimal strings or numbers. Used by
 * ./span-record.ts and ./metric-record.ts to decode what the demo's receiver gets.
 */

/** An attribute value after decoding an OTLP `AnyValue`. */
export type AttributeValue = string | number | boolean | null | AttributeValue[] | { [key: string]: AttributeValue };

/** Attributes by key. */
export type Attributes = Record<string, AttributeValue>;

/** Decodes a list of OTLP `KeyValue`s. Unknown value shapes decode to `null`; a non-array to `{}`. */
export function attributesFromOtlpJson(list: unknown): Attributes {
  const out: Attributes = {};
  if (!Array.isArray(list)) {
    return out;
  }
  for (const kv of list) {
    const key = field(kv, "key");
    if (typeof key === "string") {
      out[key] = decodeAnyValue(field(kv, "value"));
    }
  }
  return out;
}

function decodeAnyValue(value: unknown): AttributeValue {
  if (typeof value !== "object" || value === null) {
    return null;
  }
  const v = value as Record<string, unknown>;
  if (typeof v.stringValue === "string") return v.stringValue;
  if (typeof v.boolValue === "boolean") return v.boolValue;
  if (v.intValue !== undefined) return Number(v.intValue);
  if (v.doubleValue !== undefined) return Number(v.doubleValue);
  if (typeof v.bytesValue === "string") return v.bytesValue;
  if (v.arrayValue !== undefined) {
    return arrayField(v.arrayValue, "values").map(decodeAnyValue);
  }
  if (v.kvlistValue !== undefined) {
    return attributesFromOtlpJson(field(v.kvlistValue, "values"));
  }
  return null;
}

/**
 * The name of an enum value given as its number (`2`) or its full name (`SPAN_KIND_SERVER`).
 *
 * @param names the names without `prefix`, indexed by number
 * @param fallback the result for anything else
 */
export function enumName<T extends string>(value: unknown, names: readonly T[], prefix: string, fallback: T): T {
  if (typeof value === "number") {
    return names[value] ?? fallback;
  }
  if (typeof value === "string") {
    const name = value.startsWith(prefix) ? value.slice(prefix.length) : value;
    return names.find((n) => n === name) ?? fallback;
  }
  return fallback;
}

/**
 * Nanoseconds since the epoch, as a decimal string or a number, to ms (exact to the microsecond).
 *
 * @param what the field's name, for the error
 * @throws {TypeError} when `value` is neither
 */
export function nanosToMs(value: unknown, what: string): number {
  if (typeof value === "number") {
    return value / 1e6;
  }
  if (typeof value === "string" && /^\d+$/.test(value)) {
    const nanos = BigInt(value);
    return Number(nanos / 1000n) / 1000;
  }
  throw new TypeError(`otlp json: ${what} is not a number of nanoseconds: ${JSON.stringify(value)}`);
}

/** A property of an object; undefined for anything else. */
export function field(value: unknown, key: string): unknown {
  return typeof value === "object" && value !== null ? (value as Record<string, unknown>)[key] : undefined;
}

/** An array property of an object; `[]` when absent or not an array. */
export function arrayField(value: unknown, key: string): unknown[] {
  const v = field(value, key);
  return Array.isArray(v) ? v : [];
}
