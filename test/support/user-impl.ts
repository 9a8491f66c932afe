import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import type { UserService } from "../../generated/user/v1/user_pb.js";

/** Request `user_id` values at or above this make FetchUser fail with code `user_id - ERROR_BASE`. */
export const ERROR_BASE = 1000;
/** Request `user_id` that makes FetchUser throw a plain `TypeError` (connect answers INTERNAL). */
export const THROW_TYPE_ERROR = 999;

/**
 * A UserService for tests. FetchUser answers `user-<id>` and fails on demand (see
 * {@link ERROR_BASE}); StreamUsers yields `page_size` users, and for a negative page size yields
 * one and then fails with INTERNAL; CreateUsers counts; Chat echoes every message. `onStep` runs
 * inside StreamUsers after its first message and inside CreateUsers' read loop: tests make nested
 * outgoing calls there.
 */
export function createUserImpl(onStep?: (ctx: HandlerContext) => Promise<void>): ServiceImpl<typeof UserService> {
  return {
    async fetchUser(req, ctx) {
      ctx.responseHeader.set("x-user-header", "h");
      ctx.responseTrailer.set("x-user-trailer", "t");
      if (req.userId === THROW_TYPE_ERROR) throw new TypeError("plain failure");
      if (req.userId >= ERROR_BASE) {
        throw new ConnectError(`failure ${req.userId - ERROR_BASE}`, (req.userId - ERROR_BASE) as Code);
      }
      return { id: req.userId, name: `user-${req.userId}`, email: `user-${req.userId}@example.com` };
    },
    async *streamUsers(req, ctx) {
      const count = Math.abs(req.pageSize);
      for (let i = 1; i <= count; i++) {
        yield { id: i, name: `user-${i}` };
        if (i === 1 && onStep) await onStep(ctx);
        if (req.pageSize < 0) throw new ConnectError("stream broke", Code.Internal);
      }
    },
    async createUsers(reqs, ctx) {
      let count = 0;
      for await (const _ of reqs) {
        count++;
        if (count === 1 && onStep) await onStep(ctx);
      }
      return { count };
    },
    async *chat(reqs) {
      for await (const m of reqs) {
        yield { user: "server", message: `echo ${m.message}`, timestamp: m.timestamp };
      }
    },
  };
}

/** A UserService whose every method fails with `code` and `message`, streams after one message. */
export function createFailingUserImpl(code: Code, message: string): ServiceImpl<typeof UserService> {
  return {
    async fetchUser() {
      throw new ConnectError(message, code);
    },
    async *streamUsers() {
      yield { id: 1 };
      throw new ConnectError(message, code);
    },
    async createUsers(reqs) {
      for await (const _ of reqs) break;
      throw new ConnectError(message, code);
    },
    async *chat(reqs) {
      for await (const m of reqs) {
        yield { message: m.message };
        throw new ConnectError(message, code);
      }
    },
  };
}

/**
 * {@link createUserImpl} whose every handler first runs `probe` with the method's name and the
 * handler context (awaited: a probe may make nested calls), then answers as `createUserImpl()`.
 */
export function createProbedUserImpl(
  probe: (method: "FetchUser" | "StreamUsers" | "CreateUsers" | "Chat", ctx: HandlerContext) => unknown,
): ServiceImpl<typeof UserService> {
  const base = createUserImpl();
  return {
    async fetchUser(req, ctx) {
      await probe("FetchUser", ctx);
      return base.fetchUser(req, ctx);
    },
    async *streamUsers(req, ctx) {
      await probe("StreamUsers", ctx);
      yield* base.streamUsers(req, ctx);
    },
    async createUsers(reqs, ctx) {
      await probe("CreateUsers", ctx);
      return base.createUsers(reqs, ctx);
    },
    async *chat(reqs, ctx) {
      await probe("Chat", ctx);
      yield* base.chat(reqs, ctx);
    },
  };
}
