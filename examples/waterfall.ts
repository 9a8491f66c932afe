import { type AttributeValue, rpcStatusCode, type SpanRecord } from "./span-record.js";

/**
 * Terminal waterfall of traces: a pure function from span records to text, one block per trace.
 *
 * ```
 * trace 0af7651916cd43dd8448eb211c80319c · 3 spans · gateway, user-service · 12.00 ms
 * gateway       server  GET /api/user/{id}                  |████████████████████|  12.00 ms  UNSET            0 events
 * gateway       client  └─ user.v1.UserService/FetchUser    |  ██████████        |   6.00 ms  ERROR NOT_FOUND  1 event
 * user-service  server     └─ user.v1.UserService/FetchUser |   ████████         |   4.00 ms  UNSET NOT_FOUND  1 event
 *                             app.user.id=999999 error="user 999999 not found"
 * ```
 *
 * Per span: service (`service.name` of the resource), kind, the name indented by the tree of
 * parent span ids, a bar placed and scaled on the trace's extent (earliest start to latest end),
 * the duration in ms, the span status plus `rpc.status_code` when present, and the event
 * count. A second line lists the notable attributes (see {@link isNotableAttribute}) and the status
 * message. Spans whose parent is not among the trace's spans are drawn as roots and marked.
 */

/** Options of {@link renderWaterfall}. */
export interface WaterfallOptions {
  /** Width of the duration bar, in characters. Default 32; at least 1. */
  barWidth?: number;
  /** Which attributes go on a span's second line. Default {@link isNotableAttribute}. */
  showAttribute?: (key: string, value: AttributeValue, span: SpanRecord) => boolean;
  /** Longest attribute value shown, in characters; longer ones are cut with `…`. Default 60. */
  maxValueChars?: number;
  /**
   * The RPC status code shown after a span's status. Default {@link rpcStatusCode}, what
   * connect-otel records; other instrumentations record theirs elsewhere.
   */
  statusOf?: (span: SpanRecord) => string | undefined;
}

/** A span with its children, ordered by start time. */
export interface SpanNode {
  span: SpanRecord;
  children: SpanNode[];
  /** True when the span has a parent span id that is not among the trace's spans. */
  orphan: boolean;
}

const FILLED = "█";
const EMPTY = " ";

/** Attributes that the span line already shows, or that are routine on every RPC/HTTP span. */
const HIDDEN_KEYS = new Set([
  "rpc.system.name",
  "rpc.system",
  "rpc.method",
  "rpc.service",
  "rpc.status_code",
  "http.route",
  "http.request.method",
  "url.scheme",
  "network.protocol.version",
]);
const HIDDEN_PREFIXES = ["server.", "client.", "network.peer.", "net.", "user_agent."];

/**
 * The default attribute filter: everything but what the span line shows already (`rpc.method`,
 * `rpc.status_code`, ...) and routine connection details (`server.*`, `client.*`,
 * `network.peer.*`). So `connect_otel.*`, application attributes (`app.*`), attributes recorded
 * from request fields, metadata (`rpc.request.metadata.*`), `url.path` and
 * `http.response.status_code` are shown. `error.type` is shown only when it differs from
 * `rpc.status_code`.
 */
export function isNotableAttribute(key: string, value: AttributeValue, span: SpanRecord): boolean {
  if (HIDDEN_KEYS.has(key) || HIDDEN_PREFIXES.some((p) => key.startsWith(p))) {
    return false;
  }
  if (key === "error.type") {
    return value !== span.attributes["rpc.status_code"];
  }
  return true;
}

/**
 * Groups spans by trace id, ordered by each trace's earliest span start.
 *
 * @returns one array per trace, spans in input order
 */
export function groupByTrace(spans: readonly SpanRecord[]): SpanRecord[][] {
  const traces = new Map<string, SpanRecord[]>();
  for (const span of spans) {
    let list = traces.get(span.traceId);
    if (list === undefined) {
      list = [];
      traces.set(span.traceId, list);
    }
    list.push(span);
  }
  return [...traces.values()].sort((a, b) => earliestStart(a) - earliestStart(b));
}

/**
 * Builds the span tree of one trace from parent span ids. Roots are the spans without a parent
 * and the orphans (parent not among `spans`); siblings are ordered by start time, then name.
 */
export function buildSpanTree(spans: readonly SpanRecord[]): SpanNode[] {
  const byId = new Map<string, SpanNode>();
  for (const span of spans) {
    byId.set(span.spanId, { span, children: [], orphan: false });
  }
  const roots: SpanNode[] = [];
  for (const node of byId.values()) {
    const parentId = node.span.parentSpanId;
    const parent = parentId === undefined ? undefined : byId.get(parentId);
    if (parent !== undefined && parent !== node) {
      parent.children.push(node);
    } else {
      node.orphan = parentId !== undefined;
      roots.push(node);
    }
  }
  const order = (a: SpanNode, b: SpanNode) => a.span.startMs - b.span.startMs || a.span.name.localeCompare(b.span.name);
  const sortDeep = (nodes: SpanNode[]) => {
    nodes.sort(order);
    for (const n of nodes) sortDeep(n.children);
  };
  sortDeep(roots);
  return roots;
}

/**
 * Renders every trace among `spans` as a waterfall, traces separated by a blank line.
 *
 * @returns the text, ending with a newline; an empty string for no spans
 */
export function renderWaterfall(spans: readonly SpanRecord[], options: WaterfallOptions = {}): string {
  return groupByTrace(spans)
    .map((trace) => renderTrace(trace, options))
    .join("\n");
}

/**
 * Renders the spans of one trace (all of the same trace id) as a waterfall block.
 *
 * @throws {RangeError} when `options.barWidth` is not a positive integer
 */
export function renderTrace(spans: readonly SpanRecord[], options: WaterfallOptions = {}): string {
  const barWidth = options.barWidth ?? 32;
  if (!Number.isInteger(barWidth) || barWidth < 1) {
    throw new RangeError(`barWidth ${barWidth} is not a positive integer`);
  }
  if (spans.length === 0) {
    return "";
  }
  const showAttribute = options.showAttribute ?? isNotableAttribute;
  const maxValueChars = options.maxValueChars ?? 60;
  const t0 = earliestStart(spans);
  const t1 = Math.max(...spans.map((s) => s.endMs));
  const extent = t1 - t0;

  type Row = { node: SpanNode; prefix: string; childPrefix: string };
  const rows: Row[] = [];
  const walk = (nodes: SpanNode[], prefix: string, isRoot: boolean) => {
    nodes.forEach((node, i) => {
      const last = i === nodes.length - 1;
      rows.push({
        node,
        prefix: isRoot ? "" : prefix + (last ? "└─ " : "├─ "),
        childPrefix: isRoot ? "" : prefix + (last ? "   " : "│  "),
      });
      walk(node.children, isRoot ? "" : prefix + (last ? "   " : "│  "), false);
    });
  };
  walk(buildSpanTree(spans), "", true);

  const services = [...new Set(rows.map((r) => r.node.span.serviceName))];
  const serviceWidth = Math.max(...services.map((s) => s.length));
  const kindWidth = Math.max(...rows.map((r) => kindLabel(r.node.span).length));
  const names = rows.map((r) => r.prefix + r.node.span.name + (r.node.orphan ? " (parent not received)" : ""));
  const nameWidth = Math.max(...names.map((n) => n.length));
  const durations = rows.map((r) => formatMs(r.node.span.endMs - r.node.span.startMs));
  const durationWidth = Math.max(...durations.map((d) => d.length));
  const statuses = rows.map((r) => statusLabel(r.node.span, options.statusOf));
  const statusWidth = Math.max(...statuses.map((s) => s.length));

  const lines = [
    `trace ${spans[0]?.traceId} · ${plural(spans.length, "span")} · ${services.join(", ")} · ${formatMs(extent)}`,
  ];
  rows.forEach((row, i) => {
    const span = row.node.span;
    const bar = renderBar(span.startMs - t0, span.endMs - t0, extent, barWidth);
    lines.push(
      [
        span.serviceName.padEnd(serviceWidth),
        kindLabel(span).padEnd(kindWidth),
        (names[i] ?? "").padEnd(nameWidth),
        `|${bar}|`,
        (durations[i] ?? "").padStart(durationWidth),
        (statuses[i] ?? "").padEnd(statusWidth),
        plural(span.events.length, "event"),
      ].join("  "),
    );
    const details = detailsOf(span, showAttribute, maxValueChars);
    if (details !== "") {
      const indent = " ".repeat(serviceWidth + 2 + kindWidth + 2);
      lines.push(`${indent}${row.childPrefix}${row.node.children.length > 0 ? "│  " : "   "}${details}`.trimEnd());
    }
  });
  return `${lines.join("\n")}\n`;
}

/**
 * The duration bar of a span: `width` characters, filled from the span's start to its end, both
 * in ms relative to the trace start, on a scale where `extent` ms spans the whole width. A span
 * always fills at least one character.
 */
export function renderBar(startMs: number, endMs: number, extent: number, width: number): string {
  if (extent <= 0) {
    return FILLED.repeat(width);
  }
  const clamp = (n: number) => Math.min(width, Math.max(0, n));
  let from = clamp(Math.floor((startMs / extent) * width));
  let to = clamp(Math.ceil((endMs / extent) * width));
  if (to <= from) {
    if (from >= width) {
      from = width - 1;
    }
    to = from + 1;
  }
  return EMPTY.repeat(from) + FILLED.repeat(to - from) + EMPTY.repeat(width - to);
}

/**
 * `OK`, `ERROR`, `UNSET`, followed by the RPC status code when the span has one: by default
 * `rpc.status_code` ({@link rpcStatusCode}), or what `statusOf` reads.
 */
export function statusLabel(
  span: SpanRecord,
  statusOf: (span: SpanRecord) => string | undefined = rpcStatusCode,
): string {
  const rpc = statusOf(span);
  return rpc === undefined ? span.status.code : `${span.status.code} ${rpc}`;
}

function kindLabel(span: SpanRecord): string {
  return span.kind.toLowerCase();
}

function detailsOf(
  span: SpanRecord,
  show: (key: string, value: AttributeValue, span: SpanRecord) => boolean,
  maxValueChars: number,
): string {
  const parts: string[] = [];
  for (const key of Object.keys(span.attributes).sort()) {
    const value = span.attributes[key] as AttributeValue;
    if (show(key, value, span)) {
      parts.push(`${key}=${formatValue(value, maxValueChars)}`);
    }
  }
  if (span.status.message !== undefined) {
    parts.push(`error=${formatValue(span.status.message, maxValueChars)}`);
  }
  return parts.join(" ");
}

function formatValue(value: AttributeValue, maxChars: number): string {
  let text = typeof value === "string" && /^[\w.:/@+-]+$/.test(value) ? value : JSON.stringify(value);
  if (text.length > maxChars) {
    text = `${text.slice(0, Math.max(0, maxChars - 1))}…`;
  }
  return text;
}

/** Milliseconds with two decimals, e.g. `12.34 ms`. */
function formatMs(ms: number): string {
  return `${ms.toFixed(2)} ms`;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

function earliestStart(spans: readonly SpanRecord[]): number {
  return Math.min(...spans.map((s) => s.startMs));
}
