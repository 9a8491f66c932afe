import type { ScenarioStep } from "../scenario.js";
import { SERVICES } from "../scenario.js";
import type { SpanRecord } from "../span-record.js";
import { type CheckResult, checkStepTrace, findStepTrace } from "../trace-checks.js";
import { groupByTrace } from "../waterfall.js";
import { anyStackStatusCode } from "./rpc-status.js";
import { languageOf, SDK_LANGUAGES } from "./span-language.js";

/**
 * Checks of the polyglot demo's spans against ./scenario.ts, with the checks of ../trace-checks.ts
 * for each step (connected, exactly the expected spans, parents, codes of any stack) and one more:
 * each trace holds spans of exactly the languages of its services. Pure functions.
 */

/** The language each service of the polyglot demo runs in, as its SDK names it. */
export const SERVICE_LANGUAGES: Readonly<Record<string, string>> = {
  [SERVICES.gateway]: SDK_LANGUAGES.go,
  [SERVICES.user]: SDK_LANGUAGES.ts,
  [SERVICES.payment]: SDK_LANGUAGES.python,
};

/**
 * Checks all received spans against the polyglot scenario.
 *
 * @param spans every span received
 * @param steps the scenario
 */
export function checkPolyglotTraces(spans: readonly SpanRecord[], steps: readonly ScenarioStep[]): CheckResult[] {
  const traces = groupByTrace(spans);
  const results: CheckResult[] = [
    result(
      `one trace per scenario step (${steps.length})`,
      traces.length === steps.length,
      `received ${traces.length} traces`,
    ),
  ];
  for (const step of steps) {
    const trace = findStepTrace(traces, step, SERVICES.gateway, false);
    if (trace === undefined) {
      results.push(
        result(`${step.name}: trace of ${step.method} ${step.path} received`, false, "no trace has that root"),
      );
      continue;
    }
    results.push(...checkStepTrace(step, trace, anyStackStatusCode));
    const expected = [...new Set(step.spans.map((s) => SERVICE_LANGUAGES[s.service] ?? "unknown"))].sort();
    const seen = [...new Set(trace.map(languageOf))].sort();
    results.push(
      result(
        `${step.name}: one trace through ${expected.join(", ")}`,
        JSON.stringify(seen) === JSON.stringify(expected),
        `its spans come from ${seen.join(", ")}`,
      ),
    );
  }
  return results;
}

function result(name: string, ok: boolean, detail: string): CheckResult {
  return ok ? { ok, name } : { ok, name, detail };
}
