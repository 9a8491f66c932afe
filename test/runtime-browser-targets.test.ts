import { createRouterTransport } from "@connectrpc/connect";
import type { TracedClientOptions } from "connect-otel";
import { afterEach, describe, expect, it, vi } from "vitest";
import { createTracedUserServiceClient } from "../generated/user/v1/user_otel.js";
import { UserService } from "../generated/user/v1/user_pb.js";
import { installTestTracing } from "./support/tracing.js";

// Which calls of a traced client carry trace headers when the runtime thinks it is in a browser, with the
// browser's globals stubbed in Node. test/browser.test.ts runs the same rule in Chromium for same-origin,
// RegExp-listed and unlisted targets; here: what only stubs reach (strings, document.baseURI, workers).

installTestTracing();

const FETCH_USER_URL = "https://api.example.com/user.v1.UserService/FetchUser";

/** A transport whose FetchUser answers the `traceparent` it received as the user's name ("" for none). */
const transport = createRouterTransport(({ service }) => {
  service(UserService, {
    async fetchUser(_req, ctx) {
      return { name: ctx.requestHeader.get("traceparent") ?? "" };
    },
  });
});

async function sendsTraceparent(options: TracedClientOptions<typeof UserService>): Promise<boolean> {
  const user = await createTracedUserServiceClient(transport, options).fetchUser({ userId: 1 });
  return user.name !== "";
}

/**
 * A page at https://app.example.com/shop/index.html with `<base href="https://api.example.com/v2/">`:
 * fetch resolves relative URLs against the base, on another origin.
 */
function stubDocument(): void {
  vi.stubGlobal("document", { baseURI: "https://api.example.com/v2/" });
  vi.stubGlobal("location", { origin: "https://app.example.com", href: "https://app.example.com/shop/index.html" });
}

afterEach(() => {
  vi.unstubAllGlobals();
});

describe("in a document", () => {
  it("a string matches the whole request URL, as in the fetch instrumentation", async () => {
    stubDocument();
    const baseUrl = "https://api.example.com";
    expect(await sendsTraceparent({ baseUrl, propagateTraceHeaderCorsUrls: FETCH_USER_URL })).toBe(true);
    expect(await sendsTraceparent({ baseUrl, propagateTraceHeaderCorsUrls: baseUrl })).toBe(false);
  });

  it("a relative baseUrl resolves against document.baseURI, as fetch resolves it", async () => {
    stubDocument();
    expect(await sendsTraceparent({ baseUrl: "rpc" })).toBe(false);
    const listed = "https://api.example.com/v2/rpc/user.v1.UserService/FetchUser";
    expect(await sendsTraceparent({ baseUrl: "rpc", propagateTraceHeaderCorsUrls: [/^x/, listed] })).toBe(true);
  });
});

describe("in a worker", () => {
  it("cross-origin targets get no trace headers unless listed; the worker's location is the base", async () => {
    const workerScope = Object.defineProperty(() => {}, Symbol.hasInstance, {
      value: (value: unknown) => value === globalThis,
    });
    vi.stubGlobal("WorkerGlobalScope", workerScope);
    vi.stubGlobal("location", { origin: "https://app.example.com", href: "https://app.example.com/worker.js" });
    expect(await sendsTraceparent({ baseUrl: "https://api.example.com" })).toBe(false);
    expect(await sendsTraceparent({ baseUrl: "https://api.example.com", propagateTraceHeaderCorsUrls: /api\./ })).toBe(
      true,
    );
    expect(await sendsTraceparent({ baseUrl: "/rpc" })).toBe(true);
    expect(await sendsTraceparent({})).toBe(false);
  });
});
