/**
 * The OpenTelemetry SDK pipeline a production user runs, minus the network: a TracerProvider with a
 * BatchSpanProcessor (the SDK defaults: batches of 512, queue of 2,048, 5 s delay) whose exporter
 * encodes each batch to OTLP protobuf, exactly as `@opentelemetry/exporter-trace-otlp-proto` does
 * before it sends, and then drops the bytes; and a MeterProvider with a PeriodicExportingMetricReader
 * whose exporter does the same with OTLP metrics. The encoding is the part of exporting that runs on
 * the application's thread, so a benchmark that discards spans without encoding them (a no-op
 * exporter) leaves out a cost every user pays.
 */

import { ProtobufMetricsSerializer, ProtobufTraceSerializer } from "@opentelemetry/otlp-transformer";
import type { PushMetricExporter, ResourceMetrics } from "@opentelemetry/sdk-metrics";
import { MeterProvider, PeriodicExportingMetricReader } from "@opentelemetry/sdk-metrics";
import type { ReadableSpan, Sampler, SpanExporter } from "@opentelemetry/sdk-trace";
import { BatchSpanProcessor, TracerProvider } from "@opentelemetry/sdk-trace";

/** `ExportResultCode.SUCCESS` of `@opentelemetry/core`, as a number: the SDK packages nest their own copy of the enum. */
const SUCCESS = 0;

/** What an exporter of this module has been given so far; the benchmark reads and resets it per phase. */
export interface ExportTally {
  /** Spans (or metric export calls) handed to the exporter. */
  items: number;
  /** Bytes of OTLP protobuf produced (and dropped). */
  bytes: number;
}

/** A span exporter that encodes every batch to an OTLP `ExportTraceServiceRequest` and drops it. */
export interface EncodingSpanExporter extends SpanExporter {
  readonly tally: ExportTally;
}

/**
 * Creates a span exporter that serializes each batch with `ProtobufTraceSerializer` (what the OTLP
 * proto and gRPC exporters send) and discards the bytes. With `encode: false` it drops the spans
 * without encoding them, which is what the repository's first benchmark did.
 */
export function createEncodingSpanExporter(encode = true): EncodingSpanExporter {
  const tally: ExportTally = { items: 0, bytes: 0 };
  return {
    tally,
    export(spans: ReadableSpan[], done) {
      tally.items += spans.length;
      if (encode) tally.bytes += ProtobufTraceSerializer.serializeRequest(spans)?.length ?? 0;
      done({ code: SUCCESS });
    },
    shutdown: async () => {},
    forceFlush: async () => {},
  };
}

/** A metric exporter that encodes every collection to an OTLP `ExportMetricsServiceRequest` and drops it. */
export interface EncodingMetricExporter extends PushMetricExporter {
  readonly tally: ExportTally;
}

/** Creates a metric exporter that serializes with `ProtobufMetricsSerializer` and discards the bytes. */
export function createEncodingMetricExporter(): EncodingMetricExporter {
  const tally: ExportTally = { items: 0, bytes: 0 };
  return {
    tally,
    export(metrics: ResourceMetrics, done) {
      tally.items++;
      tally.bytes += ProtobufMetricsSerializer.serializeRequest(metrics)?.length ?? 0;
      done({ code: SUCCESS });
    },
    forceFlush: async () => {},
    shutdown: async () => {},
  };
}

/** A tracer provider with its batch processor's exporter. */
export interface TracePipeline {
  readonly provider: TracerProvider;
  readonly exporter: EncodingSpanExporter;
}

/**
 * Creates a TracerProvider with the SDK's default resource and span limits, the given sampler (the
 * SDK default, parent-based always-on, when none) and a BatchSpanProcessor with its default
 * settings that exports to {@link createEncodingSpanExporter}.
 */
export function createTracePipeline(options: { sampler?: Sampler; encode?: boolean } = {}): TracePipeline {
  const exporter = createEncodingSpanExporter(options.encode ?? true);
  const provider = new TracerProvider({
    ...(options.sampler ? { sampler: options.sampler } : {}),
    spanProcessors: [new BatchSpanProcessor({ exporter })],
  });
  return { provider, exporter };
}

/** A meter provider with its periodic reader's exporter. */
export interface MetricPipeline {
  readonly provider: MeterProvider;
  readonly exporter: EncodingMetricExporter;
}

/**
 * Creates a MeterProvider whose PeriodicExportingMetricReader (default interval, 60 s) exports to
 * {@link createEncodingMetricExporter}. The benchmark flushes it at the end of every timed phase,
 * so each phase pays one collection and encoding, more often than a 60 s interval would.
 */
export function createMetricPipeline(): MetricPipeline {
  const exporter = createEncodingMetricExporter();
  const provider = new MeterProvider({ readers: [new PeriodicExportingMetricReader({ exporter })] });
  return { provider, exporter };
}
