import type { SpanRecord } from "../span-record.js";
import type { Language } from "./matrix-plan.js";

/**
 * The language of the process that recorded a span, from the `telemetry.sdk.language` attribute
 * that every OpenTelemetry SDK puts on its resource (semconv resource/telemetry.md).
 */

/** `telemetry.sdk.language` of the SDK each language of the polyglot system runs. */
export const SDK_LANGUAGES: Readonly<Record<Language, string>> = { go: "go", python: "python", ts: "nodejs" };

/** `go`, `python`, `nodejs`, ...; `unknown` when the resource does not say. */
export function languageOf(span: SpanRecord): string {
  const language = span.resource["telemetry.sdk.language"];
  return typeof language === "string" && language !== "" ? language : "unknown";
}

/**
 * The spans with their language after the service name, `gateway (go)`, so that the waterfall's
 * service column and trace header show it. The records are copies; the input is left as it is.
 */
export function labelledWithLanguage(spans: readonly SpanRecord[]): SpanRecord[] {
  return spans.map((span) => ({ ...span, serviceName: `${span.serviceName} (${languageOf(span)})` }));
}
