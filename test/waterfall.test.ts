import { describe, expect, it } from "vitest";
import { type SpanRecord, spansFromOtlpJson } from "../examples/span-record.js";
import {
  buildSpanTree,
  groupByTrace,
  renderBar,
  renderTrace,
  renderWaterfall,
  statusLabel,
} from "../examples/waterfall.js";

// The demo's terminal waterfall on hand-built spans: tree order, bars, status, attributes.

const TRACE_A = "0af7651916cd43dd8448eb211c80319c";
const TRACE_B = "4bf92f3577b34da6a3ce929d0e0e4736";
const T0 = 1_700_000_000_000;

function span(spanId: string, init: Partial<SpanRecord> & { start: number; end: number }): SpanRecord {
  const { start, end, ...rest } = init;
  return {
    traceId: TRACE_A,
    spanId: spanId.padStart(16, "0"),
    name: `span ${spanId}`,
    kind: "INTERNAL",
    startMs: T0 + start,
    endMs: T0 + end,
    status: { code: "UNSET" },
    attributes: {},
    events: [],
    serviceName: "svc",
    resource: {},
    ...rest,
  };
}

/** gateway server 0..100 ms -> FetchUser client 10..60 -> FetchUser server 20..50; GetBalance client 70..90. */
function profileTrace(): SpanRecord[] {
  return [
    // Deliberately out of order: rendering must sort by the tree, then start time.
    span("3", {
      name: "user.v1.UserService/FetchUser",
      kind: "SERVER",
      serviceName: "user-service",
      parentSpanId: "0000000000000002",
      start: 20,
      end: 50,
      status: { code: "UNSET" },
      attributes: {
        "rpc.status_code": "NOT_FOUND",
        "rpc.method": "user.v1.UserService/FetchUser",
        "app.user.id": 7,
      },
      events: [{ name: "rpc.message", timeMs: T0 + 21, attributes: {} }],
    }),
    span("4", {
      name: "payment.v1.PaymentService/GetBalance",
      kind: "CLIENT",
      serviceName: "gateway",
      parentSpanId: "0000000000000001",
      start: 70,
      end: 90,
      status: { code: "UNSET" },
      attributes: { "rpc.status_code": "OK", "server.address": "127.0.0.1" },
      events: [
        { name: "rpc.message", timeMs: T0 + 71, attributes: {} },
        { name: "rpc.message", timeMs: T0 + 89, attributes: {} },
      ],
    }),
    span("1", { name: "GET /api/user/{id}", kind: "SERVER", serviceName: "gateway", start: 0, end: 100 }),
    span("2", {
      name: "user.v1.UserService/FetchUser",
      kind: "CLIENT",
      serviceName: "gateway",
      parentSpanId: "0000000000000001",
      start: 10,
      end: 60,
      status: { code: "ERROR", message: "user 7 not found" },
      attributes: { "rpc.status_code": "NOT_FOUND", "connect_otel.messages.sent": 1 },
    }),
  ];
}

function spanLines(text: string): string[] {
  return text.split("\n").filter((l) => /\|[█ ]+\|/.test(l));
}

describe("buildSpanTree", () => {
  it("nests spans by parent span id and orders siblings by start time", () => {
    const roots = buildSpanTree(profileTrace());
    expect(roots).toHaveLength(1);
    const root = roots[0];
    expect(root?.span.spanId).toBe("0000000000000001");
    expect(root?.children.map((c) => c.span.spanId)).toEqual(["0000000000000002", "0000000000000004"]);
    expect(root?.children[0]?.children.map((c) => c.span.spanId)).toEqual(["0000000000000003"]);
    expect(root?.orphan).toBe(false);
  });

  it("draws a span whose parent is missing as a marked root", () => {
    const spans = profileTrace().filter((s) => s.spanId !== "0000000000000002");
    const roots = buildSpanTree(spans);
    expect(roots.map((r) => [r.span.spanId, r.orphan])).toEqual([
      ["0000000000000001", false],
      ["0000000000000003", true],
    ]);
    expect(renderTrace(spans)).toContain("user.v1.UserService/FetchUser (parent not received)");
  });
});

describe("renderBar", () => {
  it("fills the span's share of the trace extent", () => {
    expect(renderBar(0, 100, 100, 10)).toBe("██████████");
    expect(renderBar(50, 100, 100, 10)).toBe("     █████");
    expect(renderBar(10, 60, 100, 10)).toBe(" █████    ");
    expect(renderBar(20, 50, 100, 10)).toBe("  ███     ");
  });

  it("rounds outwards and always fills at least one character", () => {
    expect(renderBar(12, 13, 100, 10)).toBe(" █        ");
    expect(renderBar(100, 100, 100, 10)).toBe("         █");
    expect(renderBar(0, 0, 0, 4)).toBe("████");
  });
});

describe("statusLabel", () => {
  it("appends rpc.status_code to the span status", () => {
    const [server, , , client] = profileTrace();
    expect(statusLabel(client as SpanRecord)).toBe("ERROR NOT_FOUND");
    expect(statusLabel(server as SpanRecord)).toBe("UNSET NOT_FOUND");
    expect(statusLabel(span("9", { start: 0, end: 1, status: { code: "OK" } }))).toBe("OK");
  });
});

describe("renderTrace", () => {
  const text = renderTrace(profileTrace(), { barWidth: 10 });
  const lines = spanLines(text);

  it("starts with a header naming the trace, span count, services and extent", () => {
    expect(text.split("\n")[0]).toBe(`trace ${TRACE_A} · 4 spans · gateway, user-service · 100.00 ms`);
  });

  it("lists spans in tree order with tree glyphs", () => {
    expect(lines).toHaveLength(4);
    expect(lines[0]).toMatch(/^gateway +server +GET \/api\/user\/\{id\} /);
    expect(lines[1]).toMatch(/^gateway +client +├─ user\.v1\.UserService\/FetchUser /);
    expect(lines[2]).toMatch(/^user-service +server +│ {2}└─ user\.v1\.UserService\/FetchUser /);
    expect(lines[3]).toMatch(/^gateway +client +└─ payment\.v1\.PaymentService\/GetBalance /);
  });

  it("draws bars on the trace's time scale, with durations in ms", () => {
    expect(lines[0]).toContain("|██████████|  100.00 ms");
    expect(lines[1]).toContain("| █████    |   50.00 ms");
    expect(lines[2]).toContain("|  ███     |   30.00 ms");
    expect(lines[3]).toContain("|       ██ |   20.00 ms");
  });

  it("shows status, rpc status code and event count", () => {
    expect(lines[0]).toMatch(/ UNSET +0 events$/);
    expect(lines[1]).toMatch(/ ERROR NOT_FOUND +0 events$/);
    expect(lines[2]).toMatch(/ UNSET NOT_FOUND +1 event$/);
    expect(lines[3]).toMatch(/ UNSET OK +2 events$/);
  });

  it("aligns the columns of all span lines", () => {
    const barColumns = lines.map((l) => l.indexOf("|"));
    expect(new Set(barColumns).size).toBe(1);
  });

  it("prints notable attributes and the status message under the span, routine ones not", () => {
    const all = text.split("\n");
    const clientIndex = all.findIndex((l) => l.includes("├─ user.v1.UserService/FetchUser"));
    expect(all[clientIndex + 1]).toMatch(/│ {2}│ {2}connect_otel\.messages\.sent=1 error="user 7 not found"$/);
    const serverIndex = all.findIndex((l) => l.includes("└─ user.v1.UserService/FetchUser"));
    expect(all[serverIndex + 1]?.trim()).toBe("│        app.user.id=7".trim());
    expect(text).not.toContain("rpc.method=");
    expect(text).not.toContain("server.address=");
    expect(text).not.toContain("rpc.status_code=");
  });

  it("takes an attribute filter, to show attributes recorded from the schema", () => {
    const custom = renderTrace(profileTrace(), { showAttribute: (key) => key === "server.address" });
    expect(custom).toContain("server.address=127.0.0.1");
    expect(custom).not.toContain("app.user.id=");
  });

  it("cuts long attribute values", () => {
    const long = span("1", { start: 0, end: 1, attributes: { "app.note": "x".repeat(100) } });
    expect(renderTrace([long], { maxValueChars: 10 })).toContain(`app.note=${"x".repeat(9)}…`);
  });

  it("rejects a bar width that is not a positive integer", () => {
    expect(() => renderTrace(profileTrace(), { barWidth: 0 })).toThrow(/barWidth 0/);
  });
});

describe("renderWaterfall", () => {
  it("renders one block per trace, ordered by trace start", () => {
    const later = profileTrace();
    const earlier = [span("a", { traceId: TRACE_B, name: "POST /api/chat", start: -50, end: -40 })];
    const text = renderWaterfall([...later, ...earlier]);
    const headers = text.split("\n").filter((l) => l.startsWith("trace "));
    expect(headers).toEqual([
      `trace ${TRACE_B} · 1 span · svc · 10.00 ms`,
      `trace ${TRACE_A} · 4 spans · gateway, user-service · 100.00 ms`,
    ]);
    expect(groupByTrace([...later, ...earlier]).map((t) => t.length)).toEqual([1, 4]);
  });

  it("renders nothing for no spans", () => {
    expect(renderWaterfall([])).toBe("");
  });
});

describe("spansFromOtlpJson", () => {
  // The shape @opentelemetry/otlp-transformer's JSON serializer sends (http/json exporter).
  const body = {
    resourceSpans: [
      {
        resource: {
          attributes: [
            { key: "service.name", value: { stringValue: "gateway" } },
            { key: "process.pid", value: { intValue: 42 } },
          ],
        },
        scopeSpans: [
          {
            scope: { name: "connect-otel" },
            spans: [
              {
                traceId: TRACE_A.toUpperCase(),
                spanId: "00f067aa0ba902b7",
                parentSpanId: "",
                name: "user.v1.UserService/FetchUser",
                kind: 3,
                startTimeUnixNano: "1700000000000000000",
                endTimeUnixNano: "1700000000012345678",
                attributes: [
                  { key: "rpc.status_code", value: { stringValue: "NOT_FOUND" } },
                  { key: "connect_otel.messages.sent", value: { intValue: "1" } },
                  { key: "ratio", value: { doubleValue: 0.5 } },
                  { key: "ok", value: { boolValue: false } },
                  { key: "list", value: { arrayValue: { values: [{ stringValue: "a" }, { intValue: 2 }] } } },
                ],
                events: [{ name: "rpc.message", timeUnixNano: "1700000000001000000", attributes: [] }],
                status: { code: 2, message: "user 7 not found" },
              },
              {
                traceId: TRACE_A,
                spanId: "b7ad6b7169203331",
                parentSpanId: "00f067aa0ba902b7",
                name: "child",
                kind: "SPAN_KIND_SERVER",
                startTimeUnixNano: 1_700_000_000_001_000_000,
                endTimeUnixNano: 1_700_000_000_002_000_000,
                status: {},
              },
            ],
          },
        ],
      },
    ],
  };

  it("decodes ids, kinds, times, attributes, events and status", () => {
    const [first, second] = spansFromOtlpJson(body);
    expect(first).toMatchObject({
      traceId: TRACE_A,
      spanId: "00f067aa0ba902b7",
      kind: "CLIENT",
      serviceName: "gateway",
      status: { code: "ERROR", message: "user 7 not found" },
      attributes: {
        "rpc.status_code": "NOT_FOUND",
        "connect_otel.messages.sent": 1,
        ratio: 0.5,
        ok: false,
        list: ["a", 2],
      },
      resource: { "service.name": "gateway", "process.pid": 42 },
    });
    expect(first?.parentSpanId).toBeUndefined();
    expect((first?.endMs ?? 0) - (first?.startMs ?? 0)).toBeCloseTo(12.345678, 2);
    expect(first?.events).toHaveLength(1);
    expect(second).toMatchObject({ kind: "SERVER", parentSpanId: "00f067aa0ba902b7", status: { code: "UNSET" } });
  });

  it("rejects a span without a valid trace id", () => {
    const bad = { resourceSpans: [{ scopeSpans: [{ spans: [{ traceId: "xyz", spanId: "00f067aa0ba902b7" }] }] }] };
    expect(() => spansFromOtlpJson(bad)).toThrow(/traceId is not 32 hex digits/);
  });

  it("accepts an empty request", () => {
    expect(spansFromOtlpJson({})).toEqual([]);
  });
});
