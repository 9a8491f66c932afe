import type { SpanRecord } from "../../examples/span-record.js";

/**
 * A span search by tags, as the articles query Tempo (`/api/search` with `tags`) and Jaeger (tag
 * search): every tag must match. `span.kind` matches the kind in lowercase (`server`),
 * `status.code` the status in lowercase (`error`, `ok`, `unset`); any other tag an attribute of the
 * span or of its resource, compared as strings, so that `rpc.grpc.status_code: "14"` matches the
 * integer 14 (tag values are strings in both backends' search APIs).
 */
export function findByTags(spans: readonly SpanRecord[], tags: Readonly<Record<string, string>>): SpanRecord[] {
  return spans.filter((span) => Object.entries(tags).every(([key, value]) => tagValue(span, key) === value));
}

function tagValue(span: SpanRecord, key: string): string | undefined {
  if (key === "span.kind") return span.kind.toLowerCase();
  if (key === "status.code") return span.status.code.toLowerCase();
  const value = span.attributes[key] ?? span.resource[key];
  return value === undefined || value === null ? undefined : String(value);
}
