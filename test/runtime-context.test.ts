import type { ServiceImpl } from "@connectrpc/connect";
import { SpanKind, trace } from "@opentelemetry/api";
import type { ReadableSpan } from "@opentelemetry/sdk-trace";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createTracedUserServiceClient, traceUserService } from "../generated/user/v1/user_otel.js";
import { UserService } from "../generated/user/v1/user_pb.js";
import { startPaymentPeer } from "./support/payment-server.js";
import type { TestServer } from "./support/servers.js";
import { startServer, wires } from "./support/servers.js";
import { createSpanRecorder, spanOf } from "./support/span-recorder.js";
import { installTestTracing, isChildOf, waitFor } from "./support/tracing.js";
import { collect, iterate, methodCasesFor, withParent } from "./support/user-calls.js";
import { createUserImpl } from "./support/user-impl.js";

// Handler code runs in the server span's context at every step, so nested outgoing calls continue
// the trace. Over real sockets: an in-memory router transport would leak the caller's context into
// handlers and hide a lost context.

installTestTracing();
const recorder = createSpanRecorder();
const GET_BALANCE = "payment.v1.PaymentService/GetBalance";

/** Nested GetBalance calls of one test and the span that was active when each was made. */
const nested: { activeSpanId: string | undefined }[] = [];

describe.each(wires)("$name", (wire) => {
  let payments: TestServer;
  let users: TestServer;
  beforeAll(async () => {
    const peer = await startPaymentPeer(wire, recorder.provider);
    payments = peer.server;
    const payment = peer.client;
    const nestedCall = async () => {
      nested.push({ activeSpanId: trace.getActiveSpan()?.spanContext().spanId });
      const balance = await payment.getBalance({ userId: 4 });
      expect(balance.amount).toBe(40);
    };
    const base = createUserImpl(nestedCall);
    const impl: ServiceImpl<typeof UserService> = {
      ...base,
      async fetchUser(req, ctx) {
        // after an await, in a later tick: the context must still be the server span's
        await new Promise((resolve) => setTimeout(resolve, 1));
        await nestedCall();
        return base.fetchUser(req, ctx);
      },
      async *chat(reqs) {
        await nestedCall(); // before the first read
        for await (const m of reqs) {
          yield { message: `echo ${m.message}` };
          await nestedCall(); // after each yield: the generator resumes when the framework pulls
        }
      },
    };
    users = await startServer(wire, (router) => {
      router.service(UserService, traceUserService(impl, { tracerProvider: recorder.provider }));
    });
  });
  afterAll(async () => {
    await users.close();
    await payments.close();
  });
  beforeEach(() => {
    recorder.reset();
    nested.length = 0;
  });
  afterEach(() => recorder.settle());

  const expectedNested: Record<string, number> = { FetchUser: 1, StreamUsers: 1, CreateUsers: 1, Chat: 4 };

  describe.each(methodCasesFor(wire))("$method", (mc) => {
    it("a nested traced call inside the handler is the child of the server span, in the same trace", async () => {
      const client = createTracedUserServiceClient(users.transport(), { tracerProvider: recorder.provider });
      const traceId = await withParent(recorder.tracer, async (parent) => {
        await mc.run(client);
        return parent.spanContext().traceId;
      });
      const outerServer = await spanOf(recorder, mc.spanName, SpanKind.SERVER);
      const outerClient = await spanOf(recorder, mc.spanName, SpanKind.CLIENT);
      expect(isChildOf(outerServer, outerClient)).toBe(true);
      const count = expectedNested[mc.method] as number;
      await waitFor(() => recorder.spans().filter((s) => s.name === GET_BALANCE).length === 2 * count);
      const nestedClients = recorder.spans().filter((s) => s.name === GET_BALANCE && s.kind === SpanKind.CLIENT);
      const nestedServers = recorder.spans().filter((s) => s.name === GET_BALANCE && s.kind === SpanKind.SERVER);
      expect(nestedClients).toHaveLength(count);
      expect(nestedServers).toHaveLength(count);
      for (const nestedClient of nestedClients) {
        expect(nestedClient.spanContext().traceId).toBe(traceId);
        expect(isChildOf(nestedClient, outerServer)).toBe(true);
        const nestedServer = nestedServers.find((s) => isChildOf(s, nestedClient));
        expect(nestedServer).toBeDefined();
      }
      // the active span in handler code was the server span at every step
      expect(nested.map((n) => n.activeSpanId)).toEqual(Array(count).fill(outerServer.spanContext().spanId));
    });
  });

  it("concurrent calls keep their contexts apart", async () => {
    const client = createTracedUserServiceClient(users.transport(), { tracerProvider: recorder.provider });
    await Promise.all([
      withParent(recorder.tracer, () => collect(client.streamUsers({ pageSize: 2 }))),
      withParent(recorder.tracer, () => collect(client.streamUsers({ pageSize: 2 }))),
      withParent(recorder.tracer, () => client.createUsers(iterate([{ name: "a" }, { name: "b" }]))),
    ]);
    await waitFor(() => recorder.spans().filter((s) => s.name === GET_BALANCE).length === 6);
    const spans = recorder.spans();
    const byId = new Map(spans.map((s) => [s.spanContext().spanId, s]));
    const parentOf = (s: ReadableSpan) => byId.get(s.parentSpanContext?.spanId ?? "");
    const outerServers = spans.filter((s) => s.kind === SpanKind.SERVER && s.name.startsWith("user.v1"));
    expect(outerServers).toHaveLength(3);
    // every nested client span hangs under a different outer server span, in that span's trace
    const parents = spans
      .filter((s) => s.name === GET_BALANCE && s.kind === SpanKind.CLIENT)
      .map((s) => {
        const parent = parentOf(s);
        expect(parent?.kind).toBe(SpanKind.SERVER);
        expect(parent?.spanContext().traceId).toBe(s.spanContext().traceId);
        return parent?.spanContext().spanId;
      });
    expect(new Set(parents).size).toBe(3);
    expect(new Set(outerServers.map((s) => s.spanContext().traceId)).size).toBe(3);
  });
});
