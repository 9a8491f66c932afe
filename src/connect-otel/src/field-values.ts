import { base64Encode } from "@bufbuild/protobuf/wire";
import type { Attributes, AttributeValue } from "@opentelemetry/api";
import type { FieldValue } from "./method-table.js";

/**
 * The name of an enum value, or of each value of a repeated enum field, from the value-name table
 * that generated code declares per enum (`{ 0: "ROLE_UNSPECIFIED", 1: "ROLE_ADMIN" }`). A number
 * the table lacks (an open enum's unknown value) is recorded as its decimal string; undefined
 * (unset optional field) stays undefined. Called by generated attribute extractors.
 */
export function enumValueName(
  names: Readonly<Record<number, string>>,
  value: number | readonly number[] | undefined,
): string | string[] | undefined {
  if (value === undefined) return undefined;
  if (typeof value === "number") return names[value] ?? String(value);
  return value.map((v) => names[v] ?? String(v));
}

/**
 * The value of a field with explicit presence that protobuf-es v2 serves from the message's
 * prototype when unset (proto2 `optional`, editions `EXPLICIT` presence): the own property of
 * `message` when the field is set, else undefined, also for an undefined `message` (an unset
 * message field on the path). Called by generated attribute extractors.
 */
export function setFieldValue<M extends object, K extends keyof M>(message: M | undefined, field: K): M[K] | undefined {
  return message !== undefined && Object.hasOwn(message, field) ? message[field] : undefined;
}

/**
 * Adds the values that an attribute extractor read to `target`, as attribute values: bigints
 * (64-bit integers) as decimal strings, exact beyond 2^53; Uint8Array (bytes) as standard base64;
 * arrays element by element. Undefined values add nothing. Returns `target`.
 */
export function addFieldValues(target: Attributes, values: Readonly<Record<string, FieldValue>>): Attributes {
  for (const key in values) {
    const value = values[key];
    if (value === undefined) continue;
    target[key] = attributeValue(value);
  }
  return target;
}

function attributeValue(value: Exclude<FieldValue, undefined>): AttributeValue {
  if (typeof value === "bigint") return value.toString();
  if (value instanceof Uint8Array) return base64Encode(value);
  if (!Array.isArray(value)) return value as string | number | boolean;
  const items = value as readonly unknown[];
  if (
    items.length > 0 &&
    typeof items[0] !== "string" &&
    typeof items[0] !== "number" &&
    typeof items[0] !== "boolean"
  ) {
    return items.map((item) => (item instanceof Uint8Array ? base64Encode(item) : String(item)));
  }
  return items as AttributeValue;
}
