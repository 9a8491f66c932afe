import type { DescMessage, MessageInitShape } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import type { Attributes, Baggage, SpanContext } from "@opentelemetry/api";
import { context, propagation, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import type { ReadableSpan } from "@opentelemetry/sdk-trace";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  createTracedAuditServiceClient,
  createTracedInventoryServiceClient,
  createTracedProbeServiceClient,
  traceAuditService,
  traceInventoryService,
  traceProbeService,
} from "../generated/annotated/v1/inventory_otel.js";
import {
  AuditService,
  Category,
  type GetItemRequestSchema,
  InventoryService,
  ItemSchema,
  ProbeService,
  RestockSchema,
  RestockSummarySchema,
  WatchItemsRequestSchema,
} from "../generated/annotated/v1/inventory_pb.js";
import { createTracedUserServiceClient, traceUserService } from "../generated/user/v1/user_otel.js";
import { UserService } from "../generated/user/v1/user_pb.js";
import type { UntracedStep } from "./support/inventory-impl.js";
import {
  CHECK_UNAVAILABLE,
  createAuditImpl,
  createInventoryImpl,
  createProbeImpl,
  ITEM_ID_OFFSET,
  OWNER_EMAIL,
  RESERVE_NOT_FOUND,
  RESERVE_UNAVAILABLE,
} from "./support/inventory-impl.js";
import { statusName } from "./support/semconv.js";
import type { TestServer, Wire } from "./support/servers.js";
import { startServer, wires } from "./support/servers.js";
import { callSpans, createSpanRecorder, spanOf } from "./support/span-recorder.js";
import { installTestTracing, isChildOf } from "./support/tracing.js";
import { collect, errorOf, iterate, sizeOf, withParent } from "./support/user-calls.js";
import { createUserImpl } from "./support/user-impl.js";

// Schema annotations at run time, over real sockets on every wire, client and server spans alike:
// (connectotel.v1.field).attribute values at span start, at span end and on message events;
// debug_redact fields nowhere; per-method server error codes; untraced methods and services that
// start no span yet carry the caller's trace context to their handlers.

installTestTracing();
const recorder = createSpanRecorder();

const INVENTORY = "annotated.v1.InventoryService";
const GET_ITEM = `${INVENTORY}/GetItem`;
const WATCH_ITEMS = `${INVENTORY}/WatchItems`;
const RESTOCK_ITEMS = `${INVENTORY}/RestockItems`;
const SYNC_ITEMS = `${INVENTORY}/SyncItems`;
const RESERVE = `${INVENTORY}/Reserve`;
const CHECK = `${INVENTORY}/Check`;
const PROBE_CHECK = "annotated.v1.ProbeService/Check";
const FETCH_USER = "user.v1.UserService/FetchUser";

/** Values of debug_redact fields the tests send; no span may show any of them. */
const SECRET_NOTE = "secret-note-must-not-leak";
const STREET = "street-must-not-leak";
const SUPPLIER_TOKEN = "supplier-token-must-not-leak";
const redacted = [SECRET_NOTE, STREET, SUPPLIER_TOKEN, OWNER_EMAIL] as const;

/** Events past this cap are only counted (server and client option of the capped server). */
const EVENT_CAP = 3;

/** What the current test's untraced handlers (Ping, AuditService.Record) do. */
let untracedStep: UntracedStep = async () => {};

/** The `app.*` attributes (the annotated fields) of a set of attributes. */
function appAttributes(attributes: Attributes): Attributes {
  return Object.fromEntries(Object.entries(attributes).filter(([key]) => key.startsWith("app.")));
}

/** Attributes of the span's `rpc.message` events of one direction, in order. */
function eventsOf(span: ReadableSpan, type: "SENT" | "RECEIVED"): Attributes[] {
  return span.events
    .filter((e) => e.name === "rpc.message" && e.attributes?.["rpc.message.type"] === type)
    .map((e) => e.attributes ?? {});
}

/** The attributes an `rpc.message` event must have: the annotated `fields`, type, id and exact size. */
function messageEvent(
  type: "SENT" | "RECEIVED",
  id: number,
  schema: DescMessage,
  message: unknown,
  fields: Attributes = {},
): Attributes {
  return {
    ...fields,
    "rpc.message.type": type,
    "rpc.message.id": id,
    "rpc.message.uncompressed_size": sizeOf(schema, message),
  };
}

/**
 * Every text a span exposes to an exporter: name, status message, attribute values (arrays
 * element by element), event names and event attribute values, link attribute values.
 */
function textsOf(span: ReadableSpan): string[] {
  const texts = [span.name, span.status.message ?? ""];
  const add = (attributes: Attributes | undefined) => {
    for (const value of Object.values(attributes ?? {})) {
      for (const item of Array.isArray(value) ? value : [value]) texts.push(String(item));
    }
  };
  add(span.attributes);
  for (const event of span.events) {
    texts.push(event.name);
    add(event.attributes);
  }
  for (const link of span.links) add(link.attributes);
  return texts;
}

/** Fails if any of `secrets` appears (also as a substring) in anything the spans expose. */
function expectNoLeak(spans: readonly ReadableSpan[], secrets: readonly string[]): void {
  expect(spans.length).toBeGreaterThan(0);
  for (const span of spans) {
    for (const text of textsOf(span)) {
      for (const secret of secrets) expect(text, `${span.name} shows ${secret}`).not.toContain(secret);
    }
  }
}

const spansOf = (name: string) => callSpans(recorder, name);

type GetItemInit = MessageInitShape<typeof GetItemRequestSchema>;

interface GetItemCase {
  readonly name: string;
  readonly request: GetItemInit;
  /** The `app.*` attributes both spans start with. */
  readonly atStart: Attributes;
}

const checksum = new Uint8Array([0xfb, 0xff, 0x00, 0x41]);

const getItemCases: readonly GetItemCase[] = [
  {
    name: "every field set: int64 above 2^53, bytes, enums, nested path, oneof sku, optional set",
    request: {
      itemId: 9007199254740993n, // 2^53 + 1: not representable as a double
      quantity: 3,
      includeHistory: true,
      category: Category.BOOK,
      tags: ["red", "blue"],
      categories: [Category.BOOK, Category.GAME, 9 as Category],
      checksum,
      warehouse: { region: "eu-west", address: { city: "Lyon", street: STREET } },
      lookup: { case: "sku", value: "SKU-42" },
      maxPrice: 19.5,
      secretNote: SECRET_NOTE,
      relatedIds: [-5n, 9223372036854775807n],
    },
    atStart: {
      "app.item.id": "9007199254740993",
      "app.item.quantity": 3,
      "app.item.include_history": true,
      "app.item.category": "CATEGORY_BOOK",
      "app.item.tags": ["red", "blue"],
      "app.item.categories": ["CATEGORY_BOOK", "CATEGORY_GAME", "9"],
      "app.item.checksum": "+/8AQQ==", // standard base64, not base64url
      "app.warehouse.region": "eu-west",
      "app.warehouse.city": "Lyon",
      "app.item.sku": "SKU-42",
      "app.item.max_price": 19.5,
      "app.item.related_ids": ["-5", "9223372036854775807"],
    },
  },
  {
    name: "defaults: unknown enum number, oneof barcode, no warehouse, optional unset",
    request: {
      itemId: 1n,
      category: 7 as Category,
      lookup: { case: "barcode", value: 12345 },
      secretNote: SECRET_NOTE,
    },
    atStart: {
      "app.item.id": "1",
      "app.item.quantity": 0,
      "app.item.include_history": false,
      "app.item.category": "7",
      "app.item.tags": [],
      "app.item.categories": [],
      "app.item.checksum": "",
      "app.item.barcode": 12345,
      "app.item.related_ids": [],
    },
  },
  {
    name: "warehouse without address, optional set to zero, oneof set to the empty string",
    request: {
      itemId: 5n,
      warehouse: { region: "us-east" },
      lookup: { case: "sku", value: "" },
      maxPrice: 0,
    },
    atStart: {
      "app.item.id": "5",
      "app.item.quantity": 0,
      "app.item.include_history": false,
      "app.item.category": "CATEGORY_UNSPECIFIED",
      "app.item.tags": [],
      "app.item.categories": [],
      "app.item.checksum": "",
      "app.warehouse.region": "us-east",
      "app.item.sku": "",
      "app.item.max_price": 0,
      "app.item.related_ids": [],
    },
  },
];

const restocks = [
  { itemId: 1152921504606846976n, quantity: 4, supplierToken: SUPPLIER_TOKEN }, // 2^60
  { itemId: 7n, quantity: 1, supplierToken: SUPPLIER_TOKEN },
] as const;

const restockFields = (r: (typeof restocks)[number]): Attributes => ({
  "app.restock.item_id": String(r.itemId),
  "app.restock.quantity": r.quantity,
});

/** Starts a server on `wire` with the inventory, probe, audit and user services, traced with `options`. */
function startAnnotatedServer(wire: Wire, maxMessageEvents?: number): Promise<TestServer> {
  const options = {
    tracerProvider: recorder.provider,
    ...(maxMessageEvents === undefined ? {} : { maxMessageEvents }),
  };
  const untraced: UntracedStep = (method, ctx) => untracedStep(method, ctx);
  return startServer(wire, (router) => {
    router.service(InventoryService, traceInventoryService(createInventoryImpl(untraced), options));
    router.service(ProbeService, traceProbeService(createProbeImpl(), options));
    router.service(AuditService, traceAuditService(createAuditImpl(untraced), options));
    router.service(UserService, traceUserService(createUserImpl(), options));
  });
}

describe.each(wires)("$name", (wire) => {
  let server: TestServer;
  let capped: TestServer;
  beforeAll(async () => {
    server = await startAnnotatedServer(wire);
    capped = await startAnnotatedServer(wire, EVENT_CAP);
  });
  afterAll(async () => {
    await server.close();
    await capped.close();
  });
  beforeEach(() => {
    recorder.reset();
    untracedStep = async () => {};
  });
  afterEach(() => recorder.settle());

  const inventory = (to: TestServer = server, maxMessageEvents?: number) =>
    createTracedInventoryServiceClient(to.transport(), {
      tracerProvider: recorder.provider,
      ...(maxMessageEvents === undefined ? {} : { maxMessageEvents }),
    });

  describe("GetItem (unary)", () => {
    it.each(getItemCases)("$name: request fields at start, response fields at end, on both sides", async (c) => {
      const response = await inventory().getItem(c.request);
      const itemId = c.request.itemId as bigint;
      expect(response.id).toBe(itemId + ITEM_ID_OFFSET);
      const { client, server: serverSpan } = await spansOf(GET_ITEM);
      const atEnd = {
        ...c.atStart,
        "app.item.id": String(itemId + ITEM_ID_OFFSET),
        "app.item.name": `item-${itemId}`,
        "app.item.category": "CATEGORY_GAME",
      };
      for (const span of [client, serverSpan]) {
        expect(appAttributes(recorder.startAttributes(span))).toEqual(c.atStart);
        expect(appAttributes(span.attributes)).toEqual(atEnd);
        // a unary call's fields are span attributes, never event attributes
        for (const event of span.events) expect(appAttributes(event.attributes ?? {})).toEqual({});
      }
      expectNoLeak(recorder.spans(), redacted);
    });

    it("debug_redact values appear in no span, attribute or event, whatever the method", async () => {
      const client = inventory();
      await client.getItem(getItemCases[0]?.request as GetItemInit);
      await collect(client.watchItems({ category: Category.BOOK, limit: 2 }));
      await client.restockItems(iterate(restocks));
      if (wire.httpVersion === "2") await collect(client.syncItems(iterate(restocks)));
      const names = new Set(recorder.spans().map((s) => `${s.name}/${s.kind}`));
      expect(names).toContain(`${GET_ITEM}/${SpanKind.SERVER}`);
      expect(names).toContain(`${RESTOCK_ITEMS}/${SpanKind.CLIENT}`);
      expectNoLeak(recorder.spans(), redacted);
    });
  });

  describe("WatchItems (server streaming)", () => {
    const request = { category: Category.BOOK, limit: 5 };
    const items = [1, 2, 3, 4, 5].map((i) => ({
      id: BigInt(i),
      name: `item-${i}`,
      ownerEmail: OWNER_EMAIL,
      category: Category.BOOK,
    }));
    const itemFields = (i: (typeof items)[number]): Attributes => ({
      "app.item.id": String(i.id),
      "app.item.name": i.name,
      "app.item.category": "CATEGORY_BOOK",
    });

    it("request fields at start; each item's fields on its own message event, never as span attributes", async () => {
      const received = await collect(inventory().watchItems(request));
      expect(received.map((i) => i.name)).toEqual(items.map((i) => i.name));
      const { client, server: serverSpan } = await spansOf(WATCH_ITEMS);
      const itemEvents = (type: "SENT" | "RECEIVED") =>
        items.map((item, i) => messageEvent(type, i + 1, ItemSchema, item, itemFields(item)));
      expect(eventsOf(client, "SENT")).toEqual([messageEvent("SENT", 1, WatchItemsRequestSchema, request)]);
      expect(eventsOf(client, "RECEIVED")).toEqual(itemEvents("RECEIVED"));
      expect(eventsOf(serverSpan, "RECEIVED")).toEqual([messageEvent("RECEIVED", 1, WatchItemsRequestSchema, request)]);
      expect(eventsOf(serverSpan, "SENT")).toEqual(itemEvents("SENT"));
      for (const span of [client, serverSpan]) {
        expect(appAttributes(recorder.startAttributes(span))).toEqual({ "app.watch.category": "CATEGORY_BOOK" });
        expect(appAttributes(span.attributes)).toEqual({ "app.watch.category": "CATEGORY_BOOK" });
      }
      expectNoLeak(recorder.spans(), redacted);
    });

    it(`with maxMessageEvents ${EVENT_CAP}: later items have no event and no attributes, totals count all`, async () => {
      const received = await collect(inventory(capped, EVENT_CAP).watchItems(request));
      expect(received).toHaveLength(items.length);
      const { client, server: serverSpan } = await spansOf(WATCH_ITEMS);
      // the request's event counts against the cap: two item events fit
      const first = items.slice(0, EVENT_CAP - 1);
      expect(eventsOf(client, "SENT")).toEqual([messageEvent("SENT", 1, WatchItemsRequestSchema, request)]);
      expect(eventsOf(client, "RECEIVED")).toEqual(
        first.map((item, i) => messageEvent("RECEIVED", i + 1, ItemSchema, item, itemFields(item))),
      );
      expect(eventsOf(serverSpan, "RECEIVED")).toEqual([messageEvent("RECEIVED", 1, WatchItemsRequestSchema, request)]);
      expect(eventsOf(serverSpan, "SENT")).toEqual(
        first.map((item, i) => messageEvent("SENT", i + 1, ItemSchema, item, itemFields(item))),
      );
      for (const span of [client, serverSpan]) {
        expect(span.events).toHaveLength(EVENT_CAP);
        expect(appAttributes(span.attributes)).toEqual({ "app.watch.category": "CATEGORY_BOOK" });
      }
      expect(client.attributes["connect_otel.messages.sent"]).toBe(1);
      expect(client.attributes["connect_otel.messages.received"]).toBe(items.length);
      expect(serverSpan.attributes["connect_otel.messages.sent"]).toBe(items.length);
      expect(serverSpan.attributes["connect_otel.messages.received"]).toBe(1);
    });
  });

  describe("RestockItems (client streaming)", () => {
    it("each restock's fields on its message event; the summary total as a span attribute at end", async () => {
      const summary = await inventory().restockItems(iterate(restocks));
      expect(summary.total).toBe(5);
      const { client, server: serverSpan } = await spansOf(RESTOCK_ITEMS);
      const restockEvents = (type: "SENT" | "RECEIVED") =>
        restocks.map((r, i) => messageEvent(type, i + 1, RestockSchema, r, restockFields(r)));
      // the single response's fields go to the span, not to its event
      expect(eventsOf(client, "SENT")).toEqual(restockEvents("SENT"));
      expect(eventsOf(client, "RECEIVED")).toEqual([messageEvent("RECEIVED", 1, RestockSummarySchema, { total: 5 })]);
      expect(eventsOf(serverSpan, "RECEIVED")).toEqual(restockEvents("RECEIVED"));
      expect(eventsOf(serverSpan, "SENT")).toEqual([messageEvent("SENT", 1, RestockSummarySchema, { total: 5 })]);
      for (const span of [client, serverSpan]) {
        expect(appAttributes(recorder.startAttributes(span))).toEqual({});
        expect(appAttributes(span.attributes)).toEqual({ "app.restock.total": 5 });
      }
      expectNoLeak(recorder.spans(), redacted);
    });
  });

  describe.runIf(wire.httpVersion === "2")("SyncItems (bidi streaming)", () => {
    it("the fields of both directions' messages on their own events", async () => {
      const received = await collect(inventory().syncItems(iterate(restocks)));
      expect(received).toHaveLength(restocks.length);
      const { client, server: serverSpan } = await spansOf(SYNC_ITEMS);
      const restockEvents = (type: "SENT" | "RECEIVED") =>
        restocks.map((r, i) => messageEvent(type, i + 1, RestockSchema, r, restockFields(r)));
      const itemEvents = (type: "SENT" | "RECEIVED") =>
        restocks.map((r, i) =>
          messageEvent(
            type,
            i + 1,
            ItemSchema,
            { id: r.itemId, name: `restocked-${r.quantity}`, ownerEmail: OWNER_EMAIL, category: Category.BOOK },
            {
              "app.item.id": String(r.itemId),
              "app.item.name": `restocked-${r.quantity}`,
              "app.item.category": "CATEGORY_BOOK",
            },
          ),
        );
      expect(eventsOf(client, "SENT")).toEqual(restockEvents("SENT"));
      expect(eventsOf(client, "RECEIVED")).toEqual(itemEvents("RECEIVED"));
      expect(eventsOf(serverSpan, "RECEIVED")).toEqual(restockEvents("RECEIVED"));
      expect(eventsOf(serverSpan, "SENT")).toEqual(itemEvents("SENT"));
      for (const span of [client, serverSpan]) {
        expect(appAttributes(recorder.startAttributes(span))).toEqual({});
        expect(appAttributes(span.attributes)).toEqual({});
      }
      expectNoLeak(recorder.spans(), redacted);
    });
  });

  describe("server error codes", () => {
    const cases = [
      {
        name: "Reserve NOT_FOUND (annotated): server Error",
        itemId: RESERVE_NOT_FOUND,
        code: Code.NotFound,
        error: true,
      },
      {
        name: "Reserve UNAVAILABLE (left out by the annotation): server Unset",
        itemId: RESERVE_UNAVAILABLE,
        code: Code.Unavailable,
        error: false,
      },
    ];
    it.each(cases)("$name; the client span is an Error", async ({ itemId, code, error }) => {
      const failure = await errorOf(inventory().reserve({ itemId }));
      expect(failure.code).toBe(code);
      const { client, server: serverSpan } = await spansOf(RESERVE);
      expect(client.status.code).toBe(SpanStatusCode.ERROR);
      expect(client.attributes["error.type"]).toBe(statusName(wire, code));
      expect(serverSpan.attributes["rpc.status_code"]).toBe(statusName(wire, code));
      if (error) {
        expect(serverSpan.status.code).toBe(SpanStatusCode.ERROR);
        expect(serverSpan.attributes["error.type"]).toBe(statusName(wire, code));
      } else {
        expect(serverSpan.status.code).toBe(SpanStatusCode.UNSET);
        expect(serverSpan.attributes).not.toHaveProperty(["error.type"]);
      }
      for (const span of [client, serverSpan]) {
        expect(appAttributes(recorder.startAttributes(span))).toEqual({ "app.item.id": String(itemId) });
      }
    });

    it("control: Check, without the annotation, makes UNAVAILABLE a server Error (the semconv default)", async () => {
      const failure = await errorOf(inventory().check({ target: CHECK_UNAVAILABLE }));
      expect(failure.code).toBe(Code.Unavailable);
      const { client, server: serverSpan } = await spansOf(CHECK);
      expect(client.status.code).toBe(SpanStatusCode.ERROR);
      expect(serverSpan.status.code).toBe(SpanStatusCode.ERROR);
      expect(serverSpan.attributes["error.type"]).toBe(statusName(wire, Code.Unavailable));
    });
  });

  describe("untraced method and service", () => {
    interface Seen {
      readonly method: string;
      readonly spanContext: SpanContext | undefined;
      readonly recording: boolean | undefined;
      readonly baggage: Baggage | undefined;
    }

    /**
     * Makes the untraced handlers note what is active there and call ProbeService.Check (traced)
     * on the same server; returns what they saw.
     */
    function observeUntraced(): Seen[] {
      const seen: Seen[] = [];
      untracedStep = async (method) => {
        const active = trace.getActiveSpan();
        seen.push({
          method,
          spanContext: active?.spanContext(),
          recording: active?.isRecording(),
          baggage: propagation.getActiveBaggage(),
        });
        const probe = createTracedProbeServiceClient(server.transport(), { tracerProvider: recorder.provider });
        await probe.check({ target: "from-untraced-handler" });
      };
      return seen;
    }

    const untracedCalls = [
      {
        name: "Ping (untraced method)",
        method: `${INVENTORY}/Ping`,
        call: (to: TestServer) =>
          createTracedInventoryServiceClient(to.transport(), { tracerProvider: recorder.provider }).ping({ n: 1 }),
      },
      {
        name: "AuditService.Record (untraced service)",
        method: "annotated.v1.AuditService/Record",
        call: (to: TestServer) =>
          createTracedAuditServiceClient(to.transport(), { tracerProvider: recorder.provider }).record({
            event: "login",
          }),
      },
    ];

    it.each(untracedCalls)(
      "$name: no client or server span; the handler runs in the caller's context; a call made there is the caller's child",
      async ({ method, call }) => {
        const seen = observeUntraced();
        const bag = propagation.createBaggage({ tenant: { value: "acme" } });
        const parent = await context.with(propagation.setBaggage(context.active(), bag), () =>
          withParent(recorder.tracer, async (p) => {
            await call(server);
            return p.spanContext();
          }),
        );
        expect(seen).toHaveLength(1);
        const [inHandler] = seen;
        expect(inHandler?.method).toBe(method);
        // the caller's span itself, carried over the wire: same trace id and span id, and no span of its own
        expect(inHandler?.spanContext?.traceId).toBe(parent.traceId);
        expect(inHandler?.spanContext?.spanId).toBe(parent.spanId);
        expect(inHandler?.spanContext?.isRemote).toBe(true);
        expect(inHandler?.recording).toBe(false);
        expect(inHandler?.baggage?.getEntry("tenant")?.value).toBe("acme");

        const probeClient = await spanOf(recorder, PROBE_CHECK, SpanKind.CLIENT);
        const probeServer = await spanOf(recorder, PROBE_CHECK, SpanKind.SERVER);
        expect(isChildOf(probeClient, parent)).toBe(true);
        expect(isChildOf(probeServer, probeClient)).toBe(true);
        await recorder.settle();
        const names = recorder
          .spans()
          .map((s) => `${s.name} ${SpanKind[s.kind]}`)
          .sort();
        expect(names).toEqual([`${PROBE_CHECK} CLIENT`, `${PROBE_CHECK} SERVER`, "test parent INTERNAL"]);
      },
    );
  });

  describe("user.proto seed", () => {
    it("FetchUser records app.user.id on both sides; the response's email appears nowhere", async () => {
      const client = createTracedUserServiceClient(server.transport(), { tracerProvider: recorder.provider });
      const user = await client.fetchUser({ userId: 7 });
      expect(user.email).toBe("user-7@example.com");
      const { client: clientSpan, server: serverSpan } = await spansOf(FETCH_USER);
      for (const span of [clientSpan, serverSpan]) {
        expect(appAttributes(recorder.startAttributes(span))).toEqual({ "app.user.id": 7 });
        expect(appAttributes(span.attributes)).toEqual({ "app.user.id": 7 });
      }
      expectNoLeak(recorder.spans(), [user.email]);
    });
  });
});
