import type { DescEnum, DescField } from "@bufbuild/protobuf";
import { FeatureSet_FieldPresence } from "@bufbuild/protobuf/wkt";
import type { GeneratedFile, Printable } from "@bufbuild/protoplugin";
import type { RecordedField } from "./recorded-fields.js";
import { RUNTIME_MODULE } from "./runtime-module.js";

/**
 * Prints the typed attribute extractors of one `_otel` file: an arrow function per message that
 * returns `{ "<key>": <value>, ... }` read by property access (no reflection at run time), and one
 * table of value names per enum that a recorded field uses, declared once per file.
 */
export interface ExtractorPrinter {
  /**
   * `(m) => ({ "app.user.id": m.userId })`, one property per line beyond two fields; the
   * parameter's type comes from the method table's type.
   */
  extractor(fields: readonly RecordedField[]): Printable;
  /** Prints the enum name tables that the extractors printed so far refer to; call once, first. */
  declarations(): void;
}

/**
 * An extractor printer for `f`. Values are what protobuf-es holds: numbers, strings, booleans,
 * bigints (64-bit integers), Uint8Array (bytes) and arrays of these, which the runtime turns into
 * attribute values; enum values go through the runtime's `enumValueName` with the enum's table.
 */
export function createExtractorPrinter(f: GeneratedFile, ts: boolean): ExtractorPrinter {
  const enumTables = new Map<string, { name: string; desc: DescEnum }>();
  const usedNames = new Set<string>();
  const tableOf = (desc: DescEnum): string => {
    let entry = enumTables.get(desc.typeName);
    if (entry === undefined) {
      let name = `${desc.name}$names`;
      for (let i = 2; usedNames.has(name); i++) name = `${desc.name}$names${i}`;
      usedNames.add(name);
      entry = { name, desc };
      enumTables.set(desc.typeName, entry);
    }
    return entry.name;
  };
  return {
    extractor(fields) {
      const entries = fields.map((recorded): Printable[] => [
        f.string(recorded.key),
        ": ",
        valueExpression(f, recorded.path, tableOf),
      ]);
      if (entries.length <= 2) return ["(m) => ({ ", ...entries.flatMap((e, i) => (i > 0 ? [", ", ...e] : e)), " })"];
      return ["(m) => ({\n", ...entries.flatMap((e) => ["      ", ...e, ",\n"]), "    })"];
    },
    declarations() {
      for (const { name, desc } of enumTables.values()) {
        const seen = new Set<number>();
        const entries: string[] = [];
        for (const value of desc.values) {
          if (seen.has(value.number)) continue; // allow_alias: the first name of a number wins
          seen.add(value.number);
          entries.push(
            `${value.number < 0 ? JSON.stringify(String(value.number)) : value.number}: ${JSON.stringify(value.name)}`,
          );
        }
        f.print(f.jsDoc(`Value names of ${desc.typeName}, by number.`));
        const type = ts ? ": Readonly<Record<number, string>>" : "";
        f.print("const ", name, type, " = { ", entries.join(", "), " };");
        f.print();
      }
    },
  };
}

/** The value expression of one recorded field: property accesses from `m`, an enum name lookup. */
function valueExpression(f: GeneratedFile, path: readonly DescField[], tableOf: (desc: DescEnum) => string): Printable {
  const access = accessExpression(f, path);
  const last = path[path.length - 1] as DescField;
  const desc = last.fieldKind === "enum" ? last.enum : last.fieldKind === "list" ? last.enum : undefined;
  if (desc === undefined) return access;
  return [f.import("enumValueName", RUNTIME_MODULE), "(", tableOf(desc), ", ", ...access, ")"];
}

/**
 * `m.a?.b`: the property path of a field from the message `m`. A singular message field may be
 * unset (undefined), so later steps use optional chaining; a oneof member is read as
 * `(x.oneof.case === "member" ? x.oneof.value : undefined)`. A field with explicit presence that
 * protobuf-es reads as its default when unset (proto2 `optional`, editions `EXPLICIT`; proto3
 * `optional` reads undefined) is read through the runtime's `setFieldValue(x, "field")`, which is
 * undefined unless the field is set.
 */
function accessExpression(f: GeneratedFile, path: readonly DescField[]): Printable[] {
  let expr: Printable[] = ["m"];
  let optional = false;
  for (const field of path) {
    const dot = optional ? "?." : ".";
    const local = JSON.stringify(field.localName);
    if (field.oneof === undefined && readsDefaultWhenUnset(field)) {
      expr = [f.import("setFieldValue", RUNTIME_MODULE), "(", ...expr, `, ${local})`];
      optional = true;
    } else if (field.oneof !== undefined) {
      const group = [...expr, dot, field.oneof.localName];
      expr = ["(", ...group, `.case === ${local} ? `, ...group, ".value : undefined)"];
      optional = true;
    } else {
      expr = [...expr, dot, field.localName];
      optional ||= field.fieldKind === "message";
    }
  }
  return expr;
}

/**
 * True for a scalar or enum field with explicit presence whose unset value protobuf-es v2 serves
 * from the message prototype (its default) rather than as undefined: every explicit-presence field
 * but a proto3 `optional` one.
 */
function readsDefaultWhenUnset(field: DescField): boolean {
  if (field.fieldKind !== "scalar" && field.fieldKind !== "enum") return false;
  return field.presence === FeatureSet_FieldPresence.EXPLICIT && field.proto.proto3Optional !== true;
}
