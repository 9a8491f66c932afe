import type { Attributes, Context, Histogram, Meter, MeterProvider } from "@opentelemetry/api";
import {
  AggregationTemporality,
  DataPointType,
  MetricReader,
  MeterProvider as SdkMeterProvider,
} from "@opentelemetry/sdk-metrics";

/** One histogram data point as the SDK aggregated it. */
export interface HistogramPoint {
  readonly name: string;
  readonly unit: string;
  readonly scope: string;
  readonly attributes: Attributes;
  readonly count: number;
  readonly sum: number;
  /** Bucket boundaries the SDK used (the instrument's advice, or its defaults). */
  readonly boundaries: readonly number[];
}

/** The SDK's metrics pipeline with a reader that tests collect from, delta temporality. */
export interface MetricRecorder {
  readonly provider: MeterProvider;
  /** Histogram points recorded since the previous collect. */
  collect(): Promise<HistogramPoint[]>;
  shutdown(): Promise<void>;
}

/** A reader that exports nothing: tests call `collect()`. */
class CollectingReader extends MetricReader {
  constructor() {
    super({ aggregationTemporalitySelector: () => AggregationTemporality.DELTA });
  }
  protected async onShutdown(): Promise<void> {}
  protected async onForceFlush(): Promise<void> {}
}

/** A `MeterProvider` of `@opentelemetry/sdk-metrics` whose histogram points a test can collect. */
export function createMetricRecorder(): MetricRecorder {
  const reader = new CollectingReader();
  const provider = new SdkMeterProvider({ readers: [reader] });
  return {
    provider,
    async collect() {
      const { resourceMetrics, errors } = await reader.collect();
      if (errors.length > 0) throw new Error(`metric collection failed: ${errors.join("; ")}`);
      const points: HistogramPoint[] = [];
      for (const scopeMetrics of resourceMetrics.scopeMetrics) {
        for (const metric of scopeMetrics.metrics) {
          if (metric.dataPointType !== DataPointType.HISTOGRAM) continue;
          for (const p of metric.dataPoints) {
            if (p.value.count === 0) continue;
            points.push({
              name: metric.descriptor.name,
              unit: metric.descriptor.unit,
              scope: scopeMetrics.scope.name,
              attributes: p.attributes,
              count: p.value.count,
              sum: p.value.sum ?? Number.NaN,
              boundaries: p.value.buckets.boundaries,
            });
          }
        }
      }
      return points;
    },
    shutdown: () => provider.shutdown(),
  };
}

/** One call of `Histogram.record` as a {@link createRecordingMeterProvider} saw it. */
export interface RecordCall {
  readonly instrument: string;
  readonly value: number;
  readonly attributes: Attributes | undefined;
  readonly context: Context | undefined;
}

/**
 * A meter provider of the API that keeps every `record` call, with the context it got (which the
 * SDK would use for exemplars, and which its readers do not show).
 */
export function createRecordingMeterProvider(): { provider: MeterProvider; records: RecordCall[] } {
  const records: RecordCall[] = [];
  const histogram = (instrument: string): Histogram => ({
    record: (value, attributes, context) => records.push({ instrument, value, attributes, context }),
  });
  const meter = { createHistogram: histogram } as unknown as Meter;
  return { provider: { getMeter: () => meter }, records };
}
