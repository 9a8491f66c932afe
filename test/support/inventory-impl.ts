import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import type { AuditService, InventoryService, ProbeService } from "../../generated/annotated/v1/inventory_pb.js";
import { Category } from "../../generated/annotated/v1/inventory_pb.js";

/*
 * Implementations of the services of proto/annotated/v1/inventory.proto for tests of schema
 * annotations at run time. Every message they answer carries the debug_redact fields filled with
 * the marker values below, which no span may ever show.
 */

/** Value of `Item.owner_email` (debug_redact) in every item the services answer. */
export const OWNER_EMAIL = "owner-must-not-leak@example.com";

/** GetItem answers an item whose `id` is the request's `item_id` plus this. */
export const ITEM_ID_OFFSET = 2n;

/** Reserve answers NOT_FOUND for this `item_id` (an annotated server error code). */
export const RESERVE_NOT_FOUND = 404n;
/** Reserve answers UNAVAILABLE for this `item_id` (a default server error code the annotation leaves out). */
export const RESERVE_UNAVAILABLE = 503n;
/** Check answers UNAVAILABLE for this target (the method keeps the default server error codes). */
export const CHECK_UNAVAILABLE = "unavailable";

/**
 * What the untraced handlers (InventoryService.Ping, AuditService.Record) run: tests observe the
 * active context there and make nested calls. `method` is the fully-qualified method name.
 */
export type UntracedStep = (method: string, ctx: HandlerContext) => Promise<void>;

/**
 * An InventoryService for tests:
 * - GetItem answers `{ id: item_id + ITEM_ID_OFFSET, name: "item-<item_id>", category: GAME }`;
 * - WatchItems yields `limit` items `{ id: i, name: "item-<i>", category: <request category> }`, i from 1;
 * - RestockItems answers the sum of the restocked quantities as `total`;
 * - SyncItems answers every restock with `{ id: item_id, name: "restocked-<quantity>", category: BOOK }`;
 * - Check answers reachable, or UNAVAILABLE for {@link CHECK_UNAVAILABLE};
 * - Reserve fails with NOT_FOUND / UNAVAILABLE for {@link RESERVE_NOT_FOUND} / {@link RESERVE_UNAVAILABLE};
 * - Ping runs `untraced` (see {@link UntracedStep}).
 * Every item has `owner_email` {@link OWNER_EMAIL}.
 */
export function createInventoryImpl(untraced: UntracedStep): ServiceImpl<typeof InventoryService> {
  return {
    async getItem(req) {
      return {
        id: req.itemId + ITEM_ID_OFFSET,
        name: `item-${req.itemId}`,
        ownerEmail: OWNER_EMAIL,
        category: Category.GAME,
      };
    },
    async *watchItems(req) {
      for (let i = 1; i <= req.limit; i++) {
        yield { id: BigInt(i), name: `item-${i}`, ownerEmail: OWNER_EMAIL, category: req.category };
      }
    },
    async restockItems(reqs) {
      let total = 0;
      for await (const restock of reqs) total += restock.quantity;
      return { total };
    },
    async *syncItems(reqs) {
      for await (const restock of reqs) {
        yield {
          id: restock.itemId,
          name: `restocked-${restock.quantity}`,
          ownerEmail: OWNER_EMAIL,
          category: Category.BOOK,
        };
      }
    },
    async check(req) {
      if (req.target === CHECK_UNAVAILABLE) throw new ConnectError("target down", Code.Unavailable);
      return { reachable: true };
    },
    async reserve(req) {
      if (req.itemId === RESERVE_NOT_FOUND) throw new ConnectError("no such item", Code.NotFound);
      if (req.itemId === RESERVE_UNAVAILABLE) throw new ConnectError("stock service down", Code.Unavailable);
      return {};
    },
    async ping(_req, ctx) {
      await untraced("annotated.v1.InventoryService/Ping", ctx);
      return {};
    },
  };
}

/** A ProbeService whose Check always answers reachable. */
export function createProbeImpl(): ServiceImpl<typeof ProbeService> {
  return {
    async check() {
      return { reachable: true };
    },
  };
}

/** An AuditService whose Record runs `untraced` (see {@link UntracedStep}). */
export function createAuditImpl(untraced: UntracedStep): ServiceImpl<typeof AuditService> {
  return {
    async record(_req, ctx) {
      await untraced("annotated.v1.AuditService/Record", ctx);
      return {};
    },
  };
}
