import type { ServiceImpl } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import type { SpanContext, TextMapPropagator } from "@opentelemetry/api";
import { ROOT_CONTEXT, SpanKind, TraceFlags, trace } from "@opentelemetry/api";
import { CompositePropagator, W3CTraceContextPropagator } from "@opentelemetry/core";
import type { ReadableSpan } from "@opentelemetry/sdk-trace";
import { AlwaysOffSampler } from "@opentelemetry/sdk-trace";
import { GRPC_TRACE_BIN_HEADER, GrpcTraceBinPropagator } from "connect-otel";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createTracedUserServiceClient, traceUserService } from "../generated/user/v1/user_otel.js";
import { UserService } from "../generated/user/v1/user_pb.js";
import type { PeerProcess } from "./support/go-peer.js";
import { buildGoPeer, startPeerProcess } from "./support/go-peer.js";
import { runOk } from "./support/plugin-harness.js";
import type { TestServer, Wire } from "./support/servers.js";
import { startServer, wires } from "./support/servers.js";
import { HANG_GUARD_MS } from "./support/signals.js";
import { createSpanRecorder, spanOf } from "./support/span-recorder.js";
import { installTestTracing, waitFor } from "./support/tracing.js";
import { createUserImpl } from "./support/user-impl.js";

// GrpcTraceBinPropagator against a real peer that speaks `grpc-trace-bin`: a Go program on
// go.opencensus.io/plugin/ocgrpc (test/peers/opencensus-go), both directions, alone and in a
// composite with W3C, sampled and not. The peer prints the spans OpenCensus ends as JSON lines;
// its server also answers with headers naming the span it started for the call. Malformed values
// are in runtime-hostile-headers.test.ts.

installTestTracing();
const recorder = createSpanRecorder();
const offRecorder = createSpanRecorder({ sampler: new AlwaysOffSampler() });
const FETCH_USER = "user.v1.UserService/FetchUser";
const grpcWire = wires.find((w) => w.protocol === "grpc") as Wire;

/** A span as the Go peer prints it (its `lineExporter`). */
interface PeerSpan {
  readonly name: string;
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId: string;
  readonly remoteParent: boolean;
  /** OpenCensus span kinds: 1 server, 2 client. */
  readonly kind: number;
}

/** The span lines among a peer's output lines. */
function spansIn(lines: readonly string[]): PeerSpan[] {
  return lines.flatMap((line) => {
    const parsed = JSON.parse(line) as { span?: PeerSpan };
    return parsed.span === undefined ? [] : [parsed.span];
  });
}

const propagators: readonly { readonly name: string; make(): TextMapPropagator }[] = [
  { name: "alone", make: () => new GrpcTraceBinPropagator() },
  {
    name: "in a composite with W3C",
    make: () =>
      new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new GrpcTraceBinPropagator()] }),
  },
];

let peerBinary: string;
beforeAll(async () => {
  peerBinary = await buildGoPeer("opencensus-go");
}, 20 * 60_000);

describe("traced client to an ocgrpc server (go.opencensus.io)", () => {
  let peer: PeerProcess;
  beforeAll(async () => {
    peer = await startPeerProcess(peerBinary, ["server"]);
  });
  afterAll(() => peer.stop());
  beforeEach(() => {
    recorder.reset();
    offRecorder.reset();
  });

  const baseUrl = () => `http://127.0.0.1:${peer.port}`;

  /** The span the Go server started for the call whose response headers are `header`. */
  async function peerServerSpan(header: Headers): Promise<PeerSpan> {
    const spanId = header.get("x-oc-span-id");
    await waitFor(() => spansIn(peer.lines).some((s) => s.spanId === spanId));
    return spansIn(peer.lines).find((s) => s.spanId === spanId) as PeerSpan;
  }

  describe.each(propagators)("GrpcTraceBinPropagator $name", ({ make }) => {
    it("the Go server span continues the client span: same trace, remote parent, sampled", async () => {
      const client = createTracedUserServiceClient(createGrpcTransport({ baseUrl: baseUrl() }), {
        tracerProvider: recorder.provider,
        propagator: make(),
      });
      let header = new Headers();
      await client.fetchUser({ userId: 7 }, { onHeader: (h) => (header = h) });
      const clientSpan = await spanOf(recorder, FETCH_USER, SpanKind.CLIENT);
      const { traceId, spanId } = clientSpan.spanContext();
      expect(header.get("x-oc-trace-id")).toBe(traceId);
      expect(header.get("x-oc-sampled")).toBe("true");
      const goSpan = await peerServerSpan(header);
      expect(goSpan).toMatchObject({ name: "user.v1.UserService.FetchUser", kind: 1, traceId, parentSpanId: spanId });
      expect(goSpan.remoteParent).toBe(true);
    });

    it("an unsampled client span: the Go server span is in its trace and not sampled", async () => {
      const client = createTracedUserServiceClient(createGrpcTransport({ baseUrl: baseUrl() }), {
        tracerProvider: offRecorder.provider,
        propagator: make(),
      });
      let sent: SpanContext | undefined;
      let header = new Headers();
      await offRecorder.tracer.startActiveSpan("unsampled parent", async (parent) => {
        sent = parent.spanContext();
        await client.fetchUser({ userId: 7 }, { onHeader: (h) => (header = h) });
        parent.end();
      });
      expect(sent?.traceFlags).toBe(TraceFlags.NONE);
      expect(header.get("x-oc-trace-id")).toBe(sent?.traceId);
      expect(header.get("x-oc-sampled")).toBe("false");
      expect(spansIn(peer.lines).filter((s) => s.traceId === sent?.traceId)).toEqual([]);
    });
  });

  it("control: with the default W3C propagator the Go server starts a trace of its own", async () => {
    const client = createTracedUserServiceClient(createGrpcTransport({ baseUrl: baseUrl() }), {
      tracerProvider: recorder.provider,
    });
    let header = new Headers();
    await client.fetchUser({ userId: 7 }, { onHeader: (h) => (header = h) });
    const clientSpan = await spanOf(recorder, FETCH_USER, SpanKind.CLIENT);
    expect(header.get("x-oc-trace-id")).not.toBe(clientSpan.spanContext().traceId);
    // a root span of the Go server: its default sampler samples no root
    expect(header.get("x-oc-sampled")).toBe("false");
  });
});

describe("ocgrpc client (go.opencensus.io) to a traced server", () => {
  /** Active span contexts the handlers saw, one per call. */
  const seen: (SpanContext | undefined)[] = [];
  const probed: ServiceImpl<typeof UserService> = {
    ...createUserImpl(),
    async fetchUser(req, ctx) {
      seen.push(trace.getActiveSpan()?.spanContext());
      return createUserImpl().fetchUser(req, ctx);
    },
  };
  const servers = new Map<string, TestServer>();
  beforeAll(async () => {
    for (const { name, make } of [...propagators, { name: "default (W3C)", make: () => undefined }]) {
      const propagator = make();
      const options = { tracerProvider: recorder.provider, ...(propagator ? { propagator } : {}) };
      servers.set(
        name,
        await startServer(grpcWire, (router) => router.service(UserService, traceUserService(probed, options))),
      );
    }
  });
  afterAll(async () => {
    for (const server of servers.values()) await server.close();
  });
  beforeEach(() => {
    recorder.reset();
    seen.length = 0;
  });
  afterEach(() => recorder.settle());

  /** Runs the Go client once against `server`; returns its root span context line and its spans. */
  async function goCall(server: TestServer, sampled: boolean) {
    const address = new URL(server.baseUrl).host;
    const { stdout } = await runOk(peerBinary, ["client", address, `/${FETCH_USER}`, String(sampled)], {
      timeoutMs: HANG_GUARD_MS,
    });
    const lines = stdout.trim().split("\n");
    const root = (JSON.parse(lines.at(-1) ?? "{}") as { root: { traceId: string; spanId: string; sampled: boolean } })
      .root;
    return { root, spans: spansIn(lines) };
  }

  describe.each(propagators)("GrpcTraceBinPropagator $name", ({ name }) => {
    it("the server span is the child of the ocgrpc client span, in its trace, sampled", async () => {
      const { root, spans } = await goCall(servers.get(name) as TestServer, true);
      const goClient = spans.find((s) => s.kind === 2 && s.traceId === root.traceId) as PeerSpan;
      expect(goClient).toMatchObject({ name: "user.v1.UserService.FetchUser", parentSpanId: root.spanId });
      const server: ReadableSpan = await spanOf(recorder, FETCH_USER, SpanKind.SERVER);
      expect(server.spanContext().traceId).toBe(root.traceId);
      expect(server.parentSpanContext).toMatchObject({ spanId: goClient.spanId, isRemote: true });
      expect(server.spanContext().traceFlags & TraceFlags.SAMPLED).toBe(TraceFlags.SAMPLED);
    });

    it("an unsampled ocgrpc client: the handler runs in the Go trace, the server span does not record", async () => {
      const { root, spans } = await goCall(servers.get(name) as TestServer, false);
      expect(root.sampled).toBe(false);
      expect(spans).toEqual([]);
      expect(seen).toHaveLength(1);
      expect(seen[0]?.traceId).toBe(root.traceId);
      expect(seen[0]?.traceFlags).toBe(TraceFlags.NONE);
      expect(recorder.spans().filter((s) => s.kind === SpanKind.SERVER)).toEqual([]);
    });
  });

  it("control: a server with the default W3C propagator starts a new trace", async () => {
    const { root } = await goCall(servers.get("default (W3C)") as TestServer, true);
    const server = await spanOf(recorder, FETCH_USER, SpanKind.SERVER);
    expect(server.parentSpanContext).toBeUndefined();
    expect(server.spanContext().traceId).not.toBe(root.traceId);
  });
});

describe("GrpcTraceBinPropagator on its own", () => {
  it("fields() names the header; inject writes 29 bytes in base64 that extract reads back", () => {
    const propagator = new GrpcTraceBinPropagator();
    expect(propagator.fields()).toEqual([GRPC_TRACE_BIN_HEADER]);
    expect(GRPC_TRACE_BIN_HEADER).toBe("grpc-trace-bin");
    const sc: SpanContext = {
      traceId: "0af7651916cd43dd8448eb211c80319c",
      spanId: "b7ad6b7169203331",
      traceFlags: TraceFlags.SAMPLED,
    };
    const carrier: Record<string, string> = {};
    propagator.inject(trace.setSpanContext(ROOT_CONTEXT, sc), carrier, {
      set: (c, k, v) => {
        (c as Record<string, string>)[k] = v;
      },
    });
    const bytes = Buffer.from(carrier[GRPC_TRACE_BIN_HEADER] ?? "", "base64");
    expect([...bytes]).toEqual([0, 0, ...Buffer.from(sc.traceId, "hex"), 1, ...Buffer.from(sc.spanId, "hex"), 2, 1]);
    const getter = { get: (c: unknown, k: string) => (c as Record<string, string>)[k], keys: Object.keys };
    const extracted = propagator.extract(ROOT_CONTEXT, carrier, getter);
    expect(trace.getSpanContext(extracted)).toEqual({ ...sc, isRemote: true });
  });
});
