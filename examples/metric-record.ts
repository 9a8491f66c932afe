import { type Attributes, arrayField, attributesFromOtlpJson, enumName, field, nanosToMs } from "./otlp-json.js";

/**
 * Metric data points as the demo's receiver keeps them: one flat record per data point, decoded
 * from an OTLP/JSON `ExportMetricsServiceRequest`
 * (opentelemetry-proto `opentelemetry/proto/collector/metrics/v1/metrics_service.proto`, JSON
 * mapping as in the OTLP specification: enum values as integers, 64-bit integers as decimal strings
 * or numbers). ./otlp-protobuf.ts decodes the protobuf encoding into the same records.
 *
 * Gauges, sums and explicit-bucket histograms are kept whole; of exponential histograms and
 * summaries only the count and sum (the demo reads explicit-bucket histograms).
 */

/** Names of `opentelemetry.proto.metrics.v1.AggregationTemporality`, without the prefix. */
export type TemporalityName = "UNSPECIFIED" | "DELTA" | "CUMULATIVE";

/** {@link TemporalityName}s by their number. */
export const TEMPORALITY_NAMES: readonly TemporalityName[] = ["UNSPECIFIED", "DELTA", "CUMULATIVE"];

/** What every data point record carries. */
interface MetricPointBase {
  /** The metric's name, e.g. `rpc.server.call.duration`. */
  metric: string;
  /** The metric's unit, e.g. `s`; `""` when it has none. */
  unit: string;
  /** Name of the instrumentation scope (the meter), e.g. `connect-otel`. */
  scope: string;
  /** Attributes of the data point. */
  attributes: Attributes;
  /** Start of the point's aggregation interval, ms since the Unix epoch (fractional); 0 when unset. */
  startMs: number;
  /** When the point was taken, ms since the Unix epoch (fractional). */
  timeMs: number;
  /** Temporality of the metric's data; `UNSPECIFIED` for gauges and summaries, which have none. */
  temporality: TemporalityName;
  /** `service.name` of the resource; `unknown_service` when the resource has none. */
  serviceName: string;
  /** Attributes of the resource. */
  resource: Attributes;
}

/** A point of a gauge or a sum. */
export interface NumberPointRecord extends MetricPointBase {
  type: "gauge" | "sum";
  value: number;
}

/** A point of an explicit-bucket histogram. */
export interface HistogramPointRecord extends MetricPointBase {
  type: "histogram";
  count: number;
  sum?: number;
  min?: number;
  max?: number;
  /** Upper bounds of all buckets but the last (which is unbounded), ascending. */
  explicitBounds: number[];
  /** Counts per bucket, `explicitBounds.length + 1` of them (or none when the point has no buckets). */
  bucketCounts: number[];
}

/** A point of an exponential histogram or a summary: its count and sum only. */
export interface AggregatePointRecord extends MetricPointBase {
  type: "exponentialHistogram" | "summary";
  count: number;
  sum?: number;
}

/** One data point of a received metric. */
export type MetricPointRecord = NumberPointRecord | HistogramPointRecord | AggregatePointRecord;

/** The data point fields of `type`, after {@link MetricPointBase}'s. */
export type PointData =
  | Pick<NumberPointRecord, "type" | "value">
  | Pick<HistogramPointRecord, "type" | "count" | "sum" | "min" | "max" | "explicitBounds" | "bucketCounts">
  | Pick<AggregatePointRecord, "type" | "count" | "sum">;

/** The metric kinds of `opentelemetry.proto.metrics.v1.Metric.data`, as the JSON encoding names them. */
const DATA_FIELDS = ["gauge", "sum", "histogram", "exponentialHistogram", "summary"] as const;

/**
 * Decodes the body of an OTLP/JSON `POST /v1/metrics` into data point records.
 *
 * @param body the parsed JSON body (`JSON.parse` of the request)
 * @returns the points of all resources, scopes and metrics, in the order of the request; a metric
 *   with no data field, or one unknown to opentelemetry-proto v1.9.0, gives none
 * @throws {TypeError} when the body's `resourceMetrics` is not an array, or a point lacks its time
 */
export function metricsFromOtlpJson(body: unknown): MetricPointRecord[] {
  const resourceMetrics = field(body, "resourceMetrics");
  if (resourceMetrics === undefined) {
    return [];
  }
  if (!Array.isArray(resourceMetrics)) {
    throw new TypeError("otlp json: resourceMetrics is not an array");
  }
  const out: MetricPointRecord[] = [];
  for (const rm of resourceMetrics) {
    const resource = attributesFromOtlpJson(field(field(rm, "resource"), "attributes"));
    const serviceName = typeof resource["service.name"] === "string" ? resource["service.name"] : "unknown_service";
    for (const sm of arrayField(rm, "scopeMetrics")) {
      const scope = String(field(field(sm, "scope"), "name") ?? "");
      for (const metric of arrayField(sm, "metrics")) {
        const type = DATA_FIELDS.find((name) => field(metric, name) !== undefined);
        if (type === undefined) {
          continue;
        }
        const data = field(metric, type);
        const temporality = enumName(
          field(data, "aggregationTemporality"),
          TEMPORALITY_NAMES,
          "AGGREGATION_TEMPORALITY_",
          "UNSPECIFIED",
        );
        for (const point of arrayField(data, "dataPoints")) {
          const start = field(point, "startTimeUnixNano");
          out.push({
            metric: String(field(metric, "name") ?? ""),
            unit: String(field(metric, "unit") ?? ""),
            scope,
            attributes: attributesFromOtlpJson(field(point, "attributes")),
            startMs: start === undefined ? 0 : nanosToMs(start, "startTimeUnixNano"),
            timeMs: nanosToMs(field(point, "timeUnixNano"), "timeUnixNano"),
            temporality,
            serviceName,
            resource,
            ...pointData(type, point),
          });
        }
      }
    }
  }
  return out;
}

function pointData(type: (typeof DATA_FIELDS)[number], point: unknown): PointData {
  switch (type) {
    case "gauge":
    case "sum":
      return { type, value: Number(field(point, "asDouble") ?? field(point, "asInt") ?? 0) };
    case "histogram": {
      const data: Extract<PointData, { type: "histogram" }> = {
        type,
        count: Number(field(point, "count") ?? 0),
        explicitBounds: arrayField(point, "explicitBounds").map(Number),
        bucketCounts: arrayField(point, "bucketCounts").map(Number),
      };
      setNumber(data, "sum", field(point, "sum"));
      setNumber(data, "min", field(point, "min"));
      setNumber(data, "max", field(point, "max"));
      return data;
    }
    default: {
      const data: Extract<PointData, { type: "exponentialHistogram" | "summary" }> = {
        type,
        count: Number(field(point, "count") ?? 0),
      };
      // A summary's sum is a plain double, 0 when the JSON leaves it out; an exponential histogram's is optional.
      setNumber(data, "sum", field(point, "sum") ?? (type === "summary" ? 0 : undefined));
      return data;
    }
  }
}

/** Sets an optional number field when the JSON has it (absent and `null` stay absent). */
function setNumber<K extends string>(target: Partial<Record<K, number>>, key: K, value: unknown): void {
  if (value !== undefined && value !== null) {
    target[key] = Number(value);
  }
}
