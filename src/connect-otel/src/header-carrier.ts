import type { TextMapGetter, TextMapSetter } from "@opentelemetry/api";

/**
 * Reads propagation fields from request `Headers` (gRPC metadata keys are lowercase; `Headers`
 * lookups are case-insensitive). Duplicated headers arrive joined by `, `, which the W3C
 * propagators reject as malformed, so the server starts a new trace. A key that `Headers` refuses
 * reads as absent: a malformed incoming header never throws.
 */
export const headerGetter: TextMapGetter<Headers> = {
  get(carrier, key) {
    try {
      return carrier.get(key) ?? undefined;
    } catch {
      return undefined;
    }
  },
  keys(carrier) {
    return Array.from(carrier.keys());
  },
};

/** Writes propagation fields into request `Headers`, replacing any value the caller set. */
export const headerSetter: TextMapSetter<Headers> = {
  set(carrier, key, value) {
    carrier.set(key, value);
  },
};

/**
 * Writes propagation fields into a plain header object, which a client passes to the transport as
 * its `HeadersInit` when the caller gave no headers and nothing else reads them: one `Headers`
 * fewer per call.
 */
export const recordSetter: TextMapSetter<Record<string, string>> = {
  set(carrier, key, value) {
    carrier[key] = value;
  },
};
