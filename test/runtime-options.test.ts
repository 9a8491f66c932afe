import type { Transport } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import type { TracedClientOptions } from "connect-otel";
import { afterEach, describe, expect, it, vi } from "vitest";
import { createTracedUserServiceClient, traceUserService } from "../generated/user/v1/user_otel.js";
import { createUserImpl } from "./support/user-impl.js";

// Options are checked when a traced client or service wrapper is created, not at the first call.

// never contacted: creation alone must throw or not
const transport: Transport = createConnectTransport({ baseUrl: "http://127.0.0.1:9", httpVersion: "1.1" });

type Factory = (options: TracedClientOptions) => unknown;
const factories: readonly [string, Factory][] = [
  ["createTracedUserServiceClient", (options) => createTracedUserServiceClient(transport, options)],
  ["traceUserService", (options) => traceUserService(createUserImpl(), options)],
];

/** Invalid options: title, options, the option the message names, what it shows of the value (default: the value). */
const invalid: readonly [string, Record<string, unknown>, string, string?][] = [
  ["semconv bogus", { semconv: "bogus" }, "semconv"],
  ["semconv uppercase", { semconv: "STABLE" }, "semconv"],
  ["semconv rpc/dup (an environment value, not an option value)", { semconv: "rpc/dup" }, "semconv"],
  ["semconv toString (not an own key)", { semconv: "toString" }, "semconv"],
  ["exceptions bogus", { exceptions: "spans" }, "exceptions"],
  ["metrics as a string", { metrics: "false" }, "metrics"],
  ["meterProvider without getMeter", { meterProvider: {} }, "meterProvider", "got object"],
  ["loggerProvider without getLogger", { exceptions: "log", loggerProvider: {} }, "loggerProvider", "got object"],
  ["messageEvents x", { messageEvents: "x" }, "messageEvents"],
  ["maxMessageEvents -1", { maxMessageEvents: -1 }, "maxMessageEvents"],
  ["maxMessageEvents 1.5", { maxMessageEvents: 1.5 }, "maxMessageEvents"],
  ["maxMessageEvents NaN", { maxMessageEvents: Number.NaN }, "maxMessageEvents"],
  ["maxMessageEvents Infinity", { maxMessageEvents: Number.POSITIVE_INFINITY }, "maxMessageEvents"],
  ["maxMessageEvents as a string", { maxMessageEvents: "3" }, "maxMessageEvents"],
];

const validOptions: readonly Record<string, unknown>[] = [
  {},
  { semconv: "stable" },
  { semconv: "legacy" },
  { semconv: "dup" },
  { semconv: "current" },
  { semconv: "both" },
  { metrics: false },
  { metrics: true },
  { exceptions: "span" },
  { exceptions: "log" },
  { exceptions: "both" },
  // an invalid loggerProvider is not looked at while exceptions go to the span only
  { exceptions: "span", loggerProvider: {} },
  { messageEvents: "all" },
  { messageEvents: "streaming" },
  { messageEvents: "none" },
  { maxMessageEvents: 0 },
  { maxMessageEvents: 1 },
  { maxMessageEvents: 100_000 },
];

function thrownBy(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  return undefined;
}

afterEach(() => {
  vi.unstubAllEnvs();
});

describe.each(factories)("%s", (_name, create) => {
  it.each(invalid)("%s: TypeError naming the option", (_what, options, optionName, shown) => {
    const error = thrownBy(() => create(options as TracedClientOptions));
    expect(error).toBeInstanceOf(TypeError);
    const message = (error as TypeError).message;
    expect(message).toContain(optionName);
    expect(message).toContain(shown ?? String(Object.values(options)[0]));
    expect(message).not.toMatch(/\.$/);
  });

  it.each(validOptions)("accepts %o", (options) => {
    expect(() => create(options as TracedClientOptions)).not.toThrow();
  });

  it("an unknown OTEL_SEMCONV_STABILITY_OPT_IN value is not an error", () => {
    vi.stubEnv("OTEL_SEMCONV_STABILITY_OPT_IN", "garbage,,rpc/nonsense");
    expect(() => create({})).not.toThrow();
  });
});

describe("createTracedUserServiceClient baseUrl", () => {
  it("throws a TypeError at creation for a baseUrl that is not a URL", () => {
    expect(thrownBy(() => createTracedUserServiceClient(transport, { baseUrl: "not a url" }))).toBeInstanceOf(
      TypeError,
    );
  });

  it.each(["http://127.0.0.1:8080", "https://api.example.com", new URL("http://[::1]:9000/prefix")])(
    "accepts %s",
    (baseUrl) => {
      expect(() => createTracedUserServiceClient(transport, { baseUrl })).not.toThrow();
    },
  );
});

describe("createTracedUserServiceClient propagateTraceHeaderCorsUrls", () => {
  it.each([
    ["a number", 1, "number"],
    ["null", null, "null"],
    ["an object", { origin: "https://api.example.com" }, "object"],
    ["an array with a number", ["https://api.example.com/", 2], "number at index 1"],
  ])("throws a TypeError naming the option for %s", (_what, value, got) => {
    const error = thrownBy(() =>
      createTracedUserServiceClient(transport, {
        propagateTraceHeaderCorsUrls: value as TracedClientOptions["propagateTraceHeaderCorsUrls"],
      }),
    );
    expect(error).toBeInstanceOf(TypeError);
    expect((error as TypeError).message).toContain("option propagateTraceHeaderCorsUrls");
    expect((error as TypeError).message).toContain(`got ${got}`);
  });

  it.each([[[]], ["https://api.example.com/user.v1.UserService/FetchUser"], [/^https:\/\/api\./], [["x", /y/]]])(
    "accepts %o",
    (value) => {
      expect(() => createTracedUserServiceClient(transport, { propagateTraceHeaderCorsUrls: value })).not.toThrow();
    },
  );
});
