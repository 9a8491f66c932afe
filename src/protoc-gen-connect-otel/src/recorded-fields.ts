import type { DescExtension, DescField, DescFile, DescMessage } from "@bufbuild/protobuf";
import type { Annotations } from "./annotations.js";
import { GenerationError } from "./generation-error.js";

/** One annotated field that a message's extractor records, and how to reach it from the message. */
export interface RecordedField {
  /** Span or event attribute key, `app.user.id`. */
  readonly key: string;
  /** Fields from the top-level message down to the annotated field, which is last. */
  readonly path: readonly DescField[];
}

/**
 * Attribute key syntax: dot-separated lowercase words (semconv docs/general/naming.md, "General
 * naming considerations").
 */
const keySyntax = /^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$/;

/**
 * Namespaces the runtime writes (the RPC, error, server and network semantic conventions, the
 * legacy message event attributes, and this project's own): a field recorded there would
 * overwrite what the tracer records.
 */
const reservedNamespaces = ["rpc.", "error.", "server.", "network.", "message.", "connect_otel."];

/**
 * Checks the `(connectotel.v1.field)` annotations of everything `file` declares, so that a mistake
 * fails generation even when no method uses the message: every message (nested messages included)
 * is walked as a method's request or response would be, and an annotated extension is refused.
 *
 * @throws GenerationError for an annotation on a `debug_redact` field or reached through one, on a
 * field of an unsupported type (message, map, repeated message, extension), with an invalid
 * attribute key, or for a key that two paths of one message record (see {@link recordedFields}).
 */
export function checkFieldAnnotations(file: DescFile, annotations: Annotations): void {
  const refuseExtension = (extension: DescExtension): void => {
    if (annotations.field(extension) === undefined) return;
    throw new GenerationError(
      file,
      `extension ${extension.typeName}`,
      "an extension field cannot be recorded; annotate a field of the message instead",
    );
  };
  const visit = (message: DescMessage): void => {
    recordedFields(message, annotations);
    message.nestedExtensions.forEach(refuseExtension);
    message.nestedMessages.forEach(visit);
  };
  file.messages.forEach(visit);
  file.extensions.forEach(refuseExtension);
}

/**
 * The annotated fields recorded from `message`: its own and, through singular message fields and
 * oneof members, those of nested messages. A message type already on the path is not entered again,
 * so recursive messages end.
 *
 * @throws GenerationError when an annotated field is invalid (see {@link checkFieldAnnotations}),
 * is reached through a `debug_redact` field, or when two paths record the same key.
 */
export function recordedFields(message: DescMessage, annotations: Annotations): RecordedField[] {
  const found: RecordedField[] = [];
  const annotated = messagesWithAnnotations(message, annotations);
  const walk = (current: DescMessage, path: readonly DescField[], stack: readonly string[]): void => {
    for (const field of current.fields) {
      const next = [...path, field];
      const key = checkAnnotatedField(field, annotations);
      if (key !== undefined) {
        refuseRedactedPath(next);
        const earlier = found.find((r) => r.key === key);
        if (earlier !== undefined) {
          throw new GenerationError(
            message.file,
            `message ${message.typeName}`,
            `attribute "${key}" is recorded from two fields, ${pathName(earlier.path)} and ${pathName(next)}; give them different keys`,
          );
        }
        found.push({ key, path: next });
      }
      if (field.fieldKind !== "message") continue;
      const nested = field.message;
      if (stack.includes(nested.typeName)) continue;
      if (annotated.get(nested.typeName) !== true) continue;
      walk(nested, next, [...stack, nested.typeName]);
    }
  };
  walk(message, [], [message.typeName]);
  return found;
}

/**
 * The attribute key of an annotated field, undefined for a field without annotation.
 *
 * @throws GenerationError when the annotation cannot be honoured
 */
function checkAnnotatedField(field: DescField, annotations: Annotations): string | undefined {
  const annotation = annotations.field(field);
  if (annotation === undefined) return undefined;
  const element = `field ${field.parent.typeName}.${field.name}`;
  const fail = (problem: string): never => {
    throw new GenerationError(field.parent.file, element, problem);
  };
  const key = annotation.attribute;
  if (isRedacted(field)) {
    fail("(connectotel.v1.field).attribute is set on a field marked debug_redact, which is never recorded");
  }
  if (key === "") fail("(connectotel.v1.field).attribute is empty; give the attribute key, e.g. app.user.id");
  if (!keySyntax.test(key)) {
    fail(`(connectotel.v1.field).attribute "${key}" is not an attribute key: use dot-separated lowercase words`);
  }
  const reserved = reservedNamespaces.find((ns) => key.startsWith(ns));
  if (reserved !== undefined) {
    fail(
      `(connectotel.v1.field).attribute "${key}" is in the namespace ${reserved.slice(0, -1)}, which the tracer writes`,
    );
  }
  switch (field.fieldKind) {
    case "message":
      fail(`a message field cannot be recorded; annotate fields of ${field.message.typeName} instead`);
      break;
    case "map":
      fail("a map field cannot be recorded");
      break;
    case "list":
      if (field.listKind === "message") fail("a repeated message field cannot be recorded");
      break;
  }
  return key;
}

/** @throws GenerationError when a field on the path to a recorded field is marked `debug_redact` */
function refuseRedactedPath(path: readonly DescField[]): void {
  const redacted = path.slice(0, -1).find(isRedacted);
  if (redacted === undefined) return;
  const last = path[path.length - 1] as DescField;
  throw new GenerationError(
    last.parent.file,
    `field ${last.parent.typeName}.${last.name}`,
    `is recorded through ${redacted.parent.typeName}.${redacted.name}, which is marked debug_redact and never recorded`,
  );
}

/** True if a field carries protobuf's own `debug_redact = true` option (descriptor.proto, FieldOptions). */
export function isRedacted(field: DescField): boolean {
  return field.proto.options?.debugRedact === true;
}

/**
 * Whether a message type has an annotated field or reaches one through message fields, per
 * annotations reader: a property of the whole message graph, so it is computed once per type and
 * shared by every message walked from.
 */
const reachesAnnotation = new WeakMap<Annotations, Map<string, boolean>>();

/**
 * Whether each message type, among `root` and those reachable from it through message fields, has
 * an annotated field or reaches one: a fixpoint over the message graph, cycles included, over the
 * types not known from an earlier call. Returns a map that holds every type reachable from `root`.
 */
function messagesWithAnnotations(root: DescMessage, annotations: Annotations): ReadonlyMap<string, boolean> {
  let known = reachesAnnotation.get(annotations);
  if (known === undefined) {
    known = new Map();
    reachesAnnotation.set(annotations, known);
  }
  const reachable = new Map<string, DescMessage>();
  const pending = [root];
  for (let m = pending.pop(); m !== undefined; m = pending.pop()) {
    // a known type's answer is final: all it reaches was known or computed with it
    if (reachable.has(m.typeName) || known.has(m.typeName)) continue;
    reachable.set(m.typeName, m);
    for (const field of m.fields) if (field.fieldKind === "message") pending.push(field.message);
  }
  const result = new Set<string>();
  for (let changed = true; changed; ) {
    changed = false;
    for (const m of reachable.values()) {
      if (result.has(m.typeName)) continue;
      const yes = m.fields.some(
        (field) =>
          annotations.field(field) !== undefined ||
          (field.fieldKind === "message" &&
            (result.has(field.message.typeName) || known.get(field.message.typeName) === true)),
      );
      if (yes) {
        result.add(m.typeName);
        changed = true;
      }
    }
  }
  for (const typeName of reachable.keys()) known.set(typeName, result.has(typeName));
  return known;
}

/** `user.v1.Outer.inner.id`: the top-level message and the proto field names of a path. */
function pathName(path: readonly DescField[]): string {
  const first = path[0] as DescField;
  return [first.parent.typeName, ...path.map((field) => field.name)].join(".");
}
