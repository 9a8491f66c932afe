import { createClient } from "@connectrpc/connect";
import type { TextMapPropagator } from "@opentelemetry/api";
import { SpanKind } from "@opentelemetry/api";
import { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } from "@opentelemetry/core";
import type { ReadableSpan } from "@opentelemetry/sdk-trace";
import { GrpcTraceBinPropagator } from "connect-otel";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createTracedUserServiceClient, traceUserService } from "../generated/user/v1/user_otel.js";
import { UserService } from "../generated/user/v1/user_pb.js";
import type { CallOutcome } from "./support/call-outcomes.js";
import { observeCall } from "./support/call-outcomes.js";
import { watchEscapes } from "./support/escapes.js";
import type { RawHeaders } from "./support/raw-requests.js";
import { postConnectJson } from "./support/raw-requests.js";
import type { HandlerView } from "./support/scenario-service.js";
import { createScenarioService, scenarioHeaders, viewsOf } from "./support/scenario-service.js";
import type { TestServer, Wire } from "./support/servers.js";
import { startServer, wires } from "./support/servers.js";
import { createSpanRecorder, spanOf } from "./support/span-recorder.js";
import { installTestTracing, isChildOf } from "./support/tracing.js";
import type { MethodCase } from "./support/user-calls.js";
import { methodCasesFor } from "./support/user-calls.js";

// Hostile propagation headers from the internet — malformed, oversized, duplicated `traceparent`,
// `tracestate` and `baggage` — never crash the server and never change the response: a traced
// server answers exactly as an untraced one does to the same request. An invalid traceparent
// makes the server span a new root; beside a valid traceparent, garbage in tracestate or baggage
// leaves the trace continued. Propagation is the OTel SDK's W3C trace-context + baggage
// propagator, registered globally by installTestTracing(); a second set of servers adds
// GrpcTraceBinPropagator, with malformed, short, oversized and wrong-version `grpc-trace-bin` values.

installTestTracing();
const recorder = createSpanRecorder();
const escapes = watchEscapes();

const TRACE_ID = "0af7651916cd43dd8448eb211c80319c";
const SPAN_ID = "b7ad6b7169203331";
const valid = `00-${TRACE_ID}-${SPAN_ID}-01`;
const KiB = 1024;

/** `text` as its UTF-8 bytes, one code point per byte: what a raw header line carries. */
const utf8Bytes = (text: string) => Buffer.from(text, "utf8").toString("latin1");
const list = (n: number, item: (i: number) => string) => Array.from({ length: n }, (_, i) => item(i)).join(",");

/** W3C limits the OTel propagators enforce: tracestate list members, baggage list members. */
const MAX_TRACESTATE_MEMBERS = 32;
const MAX_BAGGAGE_MEMBERS = 180;

interface HostileCase {
  readonly title: string;
  /** Header lines; a repeated name is appended (the Headers API joins repeats with `, `). */
  readonly headers: RawHeaders;
  /** True if the server must continue the trace of {@link valid}: the traceparent is fine. */
  readonly continues: boolean;
  /**
   * HTTP versions whose Node stack refuses the request for its size (HTTP/1.1: 431 above the 16 KiB
   * default `maxHeaderSize`; HTTP/2: the 64 KiB header list): traced and untraced then fail alike.
   */
  readonly refusedOver?: readonly ("1.1" | "2")[];
  /** A baggage entry the handler must see (the valid part of a list with garbage in it). */
  readonly baggageIncludes?: readonly [string, string];
}

const withValid = (name: string, value: string): RawHeaders => [
  ["traceparent", valid],
  [name, value],
];

/** Cases every HTTP client here can send: connect transports (all wires) and raw requests. */
const cases: readonly HostileCase[] = [
  // traceparent (W3C Trace Context §3.2): invalid, so the server starts a new trace
  { title: "traceparent: garbage", headers: [["traceparent", "garbage"]], continues: false },
  { title: "traceparent: empty", headers: [["traceparent", ""]], continues: false },
  { title: "traceparent: version ff", headers: [["traceparent", `ff-${TRACE_ID}-${SPAN_ID}-01`]], continues: false },
  {
    title: "traceparent: version not hex",
    headers: [["traceparent", `zz-${TRACE_ID}-${SPAN_ID}-01`]],
    continues: false,
  },
  { title: "traceparent: version 00 with extra field", headers: [["traceparent", `${valid}-extra`]], continues: false },
  {
    title: "traceparent: all-zero trace id",
    headers: [["traceparent", `00-${"0".repeat(32)}-${SPAN_ID}-01`]],
    continues: false,
  },
  {
    title: "traceparent: all-zero span id",
    headers: [["traceparent", `00-${TRACE_ID}-${"0".repeat(16)}-01`]],
    continues: false,
  },
  { title: "traceparent: upper-case hex", headers: [["traceparent", valid.toUpperCase()]], continues: false },
  {
    title: "traceparent: short trace id",
    headers: [["traceparent", `00-${TRACE_ID.slice(1)}-${SPAN_ID}-01`]],
    continues: false,
  },
  {
    title: "traceparent: long span id",
    headers: [["traceparent", `00-${TRACE_ID}-${SPAN_ID}ab-01`]],
    continues: false,
  },
  { title: "traceparent: flags not hex", headers: [["traceparent", `00-${TRACE_ID}-${SPAN_ID}-zz`]], continues: false },
  { title: "traceparent: trailing junk", headers: [["traceparent", `${valid};junk`]], continues: false },
  {
    title: "traceparent: a tab inside",
    headers: [["traceparent", `00-${TRACE_ID}\t-${SPAN_ID}-01`]],
    continues: false,
  },
  { title: "traceparent: latin1 bytes", headers: [["traceparent", `${valid}\u00e9\u00ff`]], continues: false },
  {
    title: "traceparent: 8 KiB",
    headers: [["traceparent", `00-${"a".repeat(8 * KiB)}-${SPAN_ID}-01`]],
    continues: false,
  },
  {
    title: "traceparent: 15 KiB (under Node's 16 KiB HTTP/1.1 header limit)",
    headers: [["traceparent", `00-${"a".repeat(15 * KiB)}-${SPAN_ID}-01`]],
    continues: false,
  },
  {
    title: "traceparent: 32 KiB",
    headers: [["traceparent", `00-${"a".repeat(32 * KiB)}-${SPAN_ID}-01`]],
    continues: false,
    refusedOver: ["1.1"],
  },
  {
    title: "traceparent: 64 KiB",
    headers: [["traceparent", `00-${"a".repeat(64 * KiB)}-${SPAN_ID}-01`]],
    continues: false,
    refusedOver: ["1.1", "2"],
  },
  {
    title: "traceparent: two different valid values",
    headers: [
      ["traceparent", valid],
      ["traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"],
    ],
    continues: false,
  },
  {
    title: "traceparent: the same valid value twice",
    headers: [
      ["traceparent", valid],
      ["traceparent", valid],
    ],
    continues: false,
  },
  // control: a higher version may carry more fields (W3C Trace Context §3.2.4), so this is continued
  {
    title: "traceparent: version 01 with extra field (valid)",
    headers: [["traceparent", `01-${valid.slice(3)}-x`]],
    continues: true,
  },
  // tracestate beside a valid traceparent
  { title: "tracestate: malformed list", headers: withValid("tracestate", "=,=,==,,,;;"), continues: true },
  { title: "tracestate: upper-case keys", headers: withValid("tracestate", "A=1,B=2"), continues: true },
  { title: "tracestate: key without value", headers: withValid("tracestate", "key"), continues: true },
  {
    title: "tracestate: 200 list members",
    headers: withValid(
      "tracestate",
      list(200, (i) => `k${i}=v${i}`),
    ),
    continues: true,
  },
  { title: "tracestate: 8 KiB member", headers: withValid("tracestate", `k=${"v".repeat(8 * KiB)}`), continues: true },
  {
    title: "tracestate: 64 KiB member",
    headers: withValid("tracestate", `k=${"v".repeat(64 * KiB)}`),
    continues: true,
    refusedOver: ["1.1", "2"],
  },
  { title: "tracestate: latin1 bytes", headers: withValid("tracestate", "k=\u00e9\u00ff"), continues: true },
  {
    title: "tracestate: duplicated",
    headers: [...withValid("tracestate", "a=1"), ["tracestate", "=garbage="]],
    continues: true,
  },
  // baggage (W3C Baggage) beside a valid traceparent
  { title: "baggage: malformed list", headers: withValid("baggage", "=;;,=,,;"), continues: true },
  { title: "baggage: bad percent-encoding", headers: withValid("baggage", "k=%zz,%E0%A4%A=v,x=%"), continues: true },
  {
    title: "baggage: one valid member among garbage",
    headers: withValid("baggage", "=,%zz=1,k=v%20w,;;"),
    continues: true,
    baggageIncludes: ["k", "v w"],
  },
  { title: "baggage: key without value", headers: withValid("baggage", "key"), continues: true },
  { title: "baggage: garbage properties", headers: withValid("baggage", "k=v;;;=;p=;=q"), continues: true },
  {
    title: "baggage: 1000 list members",
    headers: withValid(
      "baggage",
      list(1000, (i) => `k${i}=v${i}`),
    ),
    continues: true,
  },
  { title: "baggage: 4 KiB key", headers: withValid("baggage", `${"k".repeat(4 * KiB)}=v`), continues: true },
  { title: "baggage: 8 KiB value", headers: withValid("baggage", `k=${"v".repeat(8 * KiB)}`), continues: true },
  {
    title: "baggage: 15 KiB value",
    headers: withValid("baggage", `k=${"v".repeat(15 * KiB)}`),
    continues: true,
  },
  {
    title: "baggage: 32 KiB of list members",
    headers: withValid(
      "baggage",
      list(4 * KiB, (i) => `k${i}=v`),
    ),
    continues: true,
    refusedOver: ["1.1"],
  },
  {
    title: "baggage: 64 KiB value",
    headers: withValid("baggage", `k=${"v".repeat(64 * KiB)}`),
    continues: true,
    refusedOver: ["1.1", "2"],
  },
  { title: "baggage: latin1 bytes", headers: withValid("baggage", "k=\u00e9,\u00ff=v"), continues: true },
  { title: "baggage: duplicated", headers: [...withValid("baggage", "a=1"), ["baggage", "=;="]], continues: true },
  {
    title: "all three hostile at once",
    headers: [
      ["traceparent", `${valid}-extra`],
      ["tracestate", list(100, () => "=")],
      ["baggage", list(500, () => "%")],
    ],
    continues: false,
  },
];

/** Cases only raw requests can send: repeated header lines and UTF-8 bytes (the Headers API refuses both). */
const rawOnlyCases: readonly HostileCase[] = [
  {
    title: "raw: traceparent twice as separate lines",
    headers: [
      ["traceparent", valid],
      ["traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"],
    ],
    continues: false,
  },
  {
    title: "raw: tracestate and baggage twice as separate lines",
    headers: [
      ["traceparent", valid],
      ["tracestate", "a=1"],
      ["tracestate", "b=2"],
      ["baggage", "a=1"],
      ["baggage", "%"],
    ],
    continues: true,
  },
  { title: "raw: traceparent with UTF-8 bytes", headers: [["traceparent", utf8Bytes(`${valid}✓`)]], continues: false },
  {
    title: "raw: tracestate and baggage with UTF-8 bytes",
    headers: [
      ["traceparent", valid],
      ["tracestate", utf8Bytes("k=ünï✓")],
      ["baggage", utf8Bytes("ünï=✓,k=ü")],
    ],
    continues: true,
  },
];

/**
 * The binary OpenCensus trace context of {@link valid} (`grpc-trace-bin`, OpenCensus BinaryEncoding
 * version 0): version, field 0 + trace id, field 1 + span id, field 2 + options (sampled).
 */
const binaryContext = [0, 0, ...Buffer.from(TRACE_ID, "hex"), 1, ...Buffer.from(SPAN_ID, "hex"), 2, 1];
/** `bytes` as a `-bin` header value: base64 without padding, as gRPC and connect write it. */
const bin = (bytes: readonly number[]) => Buffer.from(bytes).toString("base64").replace(/=+$/, "");
/** {@link binaryContext} with the byte at `index` replaced by `value`. */
const binWith = (index: number, value: number) => bin(binaryContext.map((b, i) => (i === index ? value : b)));
const OTHER_TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/**
 * `grpc-trace-bin` values for a server that extracts with W3C trace context and baggage followed
 * by GrpcTraceBinPropagator: a valid value continues {@link valid}'s trace (and wins over a
 * traceparent, being last); anything else is ignored, leaving what traceparent says.
 */
const grpcTraceBinCases: readonly HostileCase[] = [
  // control: a valid value
  { title: "grpc-trace-bin: valid (control)", headers: [["grpc-trace-bin", bin(binaryContext)]], continues: true },
  {
    title: "grpc-trace-bin: valid, padded base64 (control)",
    headers: [["grpc-trace-bin", Buffer.from(binaryContext).toString("base64")]],
    continues: true,
  },
  {
    title: "grpc-trace-bin: valid, beside another traceparent (the last propagator wins)",
    headers: [
      ["traceparent", OTHER_TRACEPARENT],
      ["grpc-trace-bin", bin(binaryContext)],
    ],
    continues: true,
  },
  // malformed
  { title: "grpc-trace-bin: empty", headers: [["grpc-trace-bin", ""]], continues: false },
  { title: "grpc-trace-bin: not base64", headers: [["grpc-trace-bin", "%%%not base64%%%"]], continues: false },
  { title: "grpc-trace-bin: garbage bytes", headers: [["grpc-trace-bin", bin([255, 254, 253])]], continues: false },
  // short
  {
    title: "grpc-trace-bin: no options field (27 bytes)",
    headers: [["grpc-trace-bin", bin(binaryContext.slice(0, 27))]],
    continues: false,
  },
  {
    title: "grpc-trace-bin: trace id only (18 bytes)",
    headers: [["grpc-trace-bin", bin(binaryContext.slice(0, 18))]],
    continues: false,
  },
  { title: "grpc-trace-bin: version byte only", headers: [["grpc-trace-bin", bin([0])]], continues: false },
  // oversized
  {
    title: "grpc-trace-bin: one byte too many",
    headers: [["grpc-trace-bin", bin([...binaryContext, 0])]],
    continues: false,
  },
  {
    title: "grpc-trace-bin: 8 KiB",
    headers: [["grpc-trace-bin", bin([...binaryContext, ...new Array<number>(8 * KiB).fill(7)])]],
    continues: false,
  },
  {
    title: "grpc-trace-bin: 64 KiB",
    headers: [["grpc-trace-bin", "A".repeat(64 * KiB)]],
    continues: false,
    refusedOver: ["1.1", "2"],
  },
  // wrong version or field numbers
  { title: "grpc-trace-bin: version 1", headers: [["grpc-trace-bin", binWith(0, 1)]], continues: false },
  { title: "grpc-trace-bin: version 255", headers: [["grpc-trace-bin", binWith(0, 255)]], continues: false },
  { title: "grpc-trace-bin: trace id as field 3", headers: [["grpc-trace-bin", binWith(1, 3)]], continues: false },
  { title: "grpc-trace-bin: span id as field 0", headers: [["grpc-trace-bin", binWith(18, 0)]], continues: false },
  { title: "grpc-trace-bin: options as field 1", headers: [["grpc-trace-bin", binWith(27, 1)]], continues: false },
  // invalid ids
  {
    title: "grpc-trace-bin: all-zero trace id",
    headers: [["grpc-trace-bin", bin(binaryContext.map((b, i) => (i >= 2 && i < 18 ? 0 : b)))]],
    continues: false,
  },
  {
    title: "grpc-trace-bin: all-zero span id",
    headers: [["grpc-trace-bin", bin(binaryContext.map((b, i) => (i >= 19 && i < 27 ? 0 : b)))]],
    continues: false,
  },
  {
    title: "grpc-trace-bin: the same valid value twice (joined with a comma)",
    headers: [
      ["grpc-trace-bin", bin(binaryContext)],
      ["grpc-trace-bin", bin(binaryContext)],
    ],
    continues: false,
  },
  // beside a valid traceparent: ignored, the traceparent's context stays
  {
    title: "grpc-trace-bin: version 1 beside a valid traceparent",
    headers: withValid("grpc-trace-bin", binWith(0, 1)),
    continues: true,
  },
  {
    title: "grpc-trace-bin: not base64 beside a valid traceparent",
    headers: withValid("grpc-trace-bin", "@@@"),
    continues: true,
  },
];

/** Asserts the server span of a call made with `hostile` headers and no traced client. */
function expectServerSpan(span: ReadableSpan, hostile: HostileCase): void {
  if (hostile.continues) {
    expect(span.spanContext().traceId).toBe(TRACE_ID);
    expect(span.parentSpanContext?.spanId).toBe(SPAN_ID);
  } else {
    expect(span.parentSpanContext).toBeUndefined();
    expect(span.spanContext().traceId).not.toBe(TRACE_ID);
    expect(span.spanContext().traceId).not.toMatch(/^0+$/);
  }
  const members = span.spanContext().traceState?.serialize().split(",") ?? [];
  expect(members.length).toBeLessThanOrEqual(MAX_TRACESTATE_MEMBERS);
}

/** Asserts what the handler had of the call: it ran, with baggage within the W3C limits. */
function expectHandlerView(views: readonly HandlerView[], hostile: HostileCase): void {
  expect(views).toHaveLength(1);
  const { baggage } = views[0] as HandlerView;
  if (hostile.baggageIncludes) expect(baggage).toContainEqual(hostile.baggageIncludes);
  expect(baggage.length).toBeLessThanOrEqual(MAX_BAGGAGE_MEMBERS);
  for (const [key, value] of baggage) {
    expect(typeof key).toBe("string");
    expect(typeof value).toBe("string");
  }
}

/**
 * A plain and a traced UserService server of the scenario service on `wire`, started before the
 * enclosing describe block's tests and closed after them, with what the traced handlers saw. Each
 * test starts with no spans, and ends with its spans settled and no escaped error. The traced
 * server extracts with `propagator`, the global W3C one by default.
 */
function plainAndTracedServers(wire: Wire, propagator?: TextMapPropagator) {
  const tracedViews: HandlerView[] = [];
  let plain: TestServer | undefined;
  let traced: TestServer | undefined;
  const started = (server: TestServer | undefined): TestServer => {
    if (server === undefined) throw new Error("servers not started");
    return server;
  };
  beforeAll(async () => {
    plain = await startServer(wire, (router) => router.service(UserService, createScenarioService([])));
    traced = await startServer(wire, (router) => {
      router.service(
        UserService,
        traceUserService(createScenarioService(tracedViews), {
          tracerProvider: recorder.provider,
          ...(propagator === undefined ? {} : { propagator }),
        }),
      );
    });
  });
  afterAll(async () => {
    await plain?.close();
    await traced?.close();
  });
  beforeEach(() => recorder.reset());
  afterEach(async () => {
    await recorder.settle();
    tracedViews.length = 0;
    expect(escapes.take()).toEqual([]);
  });
  return { tracedViews, plainServer: () => started(plain), tracedServer: () => started(traced) };
}

describe.each(wires)("$name", (wire) => {
  const { tracedViews, plainServer, tracedServer } = plainAndTracedServers(wire);
  /** Outcome of the standard call without hostile headers, per method. */
  const baselines = new Map<string, CallOutcome>();

  async function baseline(mc: MethodCase): Promise<CallOutcome> {
    let outcome = baselines.get(mc.method);
    if (outcome === undefined) {
      outcome = await observeCall(mc, createClient(UserService, plainServer().transport()));
      baselines.set(mc.method, outcome);
    }
    return outcome;
  }

  describe.each(methodCasesFor(wire))("$method", (mc) => {
    it.each(cases)("$title: same outcome as untraced, server span as the header says", async (hostile) => {
      const headers = () => scenarioHeaders({ kind: "ok" }, hostile.headers as [string, string][]);
      const plain = await observeCall(mc, createClient(UserService, plainServer().transport()), { headers: headers() });
      if (hostile.refusedOver?.includes(wire.httpVersion)) expect(plain.error).toBeDefined();
      else expect(plain).toEqual(await baseline(mc));

      // an untraced caller (as from the internet) to the traced server
      const sent = headers();
      const traced = await observeCall(mc, createClient(UserService, tracedServer().transport()), { headers: sent });
      expect(traced).toEqual(plain);
      if (traced.error === undefined || viewsOf(tracedViews, sent).length > 0) {
        expectHandlerView(viewsOf(tracedViews, sent), hostile);
        expectServerSpan(await spanOf(recorder, mc.spanName, SpanKind.SERVER), hostile);
      }
      await recorder.settle();
      recorder.reset();

      // a traced caller given the hostile headers: it replaces traceparent and passes the rest on,
      // so it gets what an untraced caller gets for the headers without traceparent
      const others = hostile.headers.filter(([name]) => name !== "traceparent") as [string, string][];
      const expected =
        others.length === hostile.headers.length
          ? plain
          : await observeCall(mc, createClient(UserService, plainServer().transport()), {
              headers: scenarioHeaders({ kind: "ok" }, others),
            });
      const client = createTracedUserServiceClient(tracedServer().transport(), { tracerProvider: recorder.provider });
      const viaTraced = await observeCall(mc, client, { headers: headers() });
      expect(viaTraced).toEqual(expected);
      if (viaTraced.error === undefined) {
        const clientSpan = await spanOf(recorder, mc.spanName, SpanKind.CLIENT);
        expect(isChildOf(await spanOf(recorder, mc.spanName, SpanKind.SERVER), clientSpan)).toBe(true);
      }
    });
  });
});

describe.each(wires)("$name, a server with GrpcTraceBinPropagator after W3C", (wire) => {
  const propagator = new CompositePropagator({
    propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator(), new GrpcTraceBinPropagator()],
  });
  const { tracedViews, plainServer, tracedServer } = plainAndTracedServers(wire, propagator);

  describe.each(methodCasesFor(wire))("$method", (mc) => {
    it.each(grpcTraceBinCases)("$title: same outcome as untraced, server span as the header says", async (hostile) => {
      const headers = () => scenarioHeaders({ kind: "ok" }, hostile.headers as [string, string][]);
      const plain = await observeCall(mc, createClient(UserService, plainServer().transport()), { headers: headers() });
      if (hostile.refusedOver?.includes(wire.httpVersion)) expect(plain.error).toBeDefined();
      else expect(plain.error).toBeUndefined();
      const sent = headers();
      const traced = await observeCall(mc, createClient(UserService, tracedServer().transport()), { headers: sent });
      expect(traced).toEqual(plain);
      if (traced.error === undefined) {
        expectHandlerView(viewsOf(tracedViews, sent), hostile);
        expectServerSpan(await spanOf(recorder, mc.spanName, SpanKind.SERVER), hostile);
      }
    });
  });
});

describe.each(wires.filter((w) => w.protocol === "connect"))("raw Connect requests over $name", (wire) => {
  const { tracedViews, plainServer, tracedServer } = plainAndTracedServers(wire);

  const path = "/user.v1.UserService/FetchUser";
  const post = (server: TestServer, headers: RawHeaders) =>
    postConnectJson(server.baseUrl, wire.httpVersion, path, { userId: 7 }, headers);

  it.each([...cases, ...rawOnlyCases])(
    "$title: same response as untraced, server span as the header says",
    async (hostile) => {
      const plain = await post(plainServer(), hostile.headers);
      if (hostile.refusedOver?.includes(wire.httpVersion)) {
        expect(plain).not.toMatchObject({ response: { status: 200 } });
      } else {
        expect(plain).toMatchObject({ response: { status: 200 } });
        expect(plain).toEqual(await post(plainServer(), []));
      }
      const traced = await post(tracedServer(), hostile.headers);
      expect(traced).toEqual(plain);
      if ("response" in traced && traced.response.status === 200) {
        expect(JSON.parse(traced.response.body)).toMatchObject({ id: 7 });
        expect(tracedViews).toHaveLength(1);
        expectHandlerView(tracedViews, hostile);
        expectServerSpan(await spanOf(recorder, "user.v1.UserService/FetchUser", SpanKind.SERVER), hostile);
      }
    },
  );

  it("the server still answers after all of the above", async () => {
    const res = await post(tracedServer(), [["traceparent", valid]]);
    expect(res).toMatchObject({ response: { status: 200 } });
  });
});
