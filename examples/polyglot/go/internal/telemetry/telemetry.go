// Package telemetry starts the OpenTelemetry SDK of the polyglot system's Go processes, as any Go
// service sets it up for otelgrpc and otelhttp: a tracer provider exporting OTLP over HTTP
// (protobuf) in batches, a resource with service.name and the SDK's telemetry.sdk.* attributes,
// and the W3C trace-context and baggage propagators, all registered globally.
//
// The standard environment variables configure it: OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (default http://localhost:4318), OTEL_SERVICE_NAME,
// OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG, and
// OTEL_SEMCONV_STABILITY_OPT_IN, which otelgrpc reads itself (rpc/dup: old and new attributes).
package telemetry

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// Start registers the global tracer provider and propagator. defaultServiceName is the
// service.name unless OTEL_SERVICE_NAME or OTEL_RESOURCE_ATTRIBUTES set one.
//
// The returned function flushes the spans still queued and stops the provider; call it before
// the process exits. Start fails only when the exporter or resource configuration is invalid.
func Start(ctx context.Context, defaultServiceName string) (shutdown func(context.Context) error, err error) {
	exporter, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("otlp exporter: %w", err)
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", defaultServiceName)),
		resource.WithTelemetrySDK(),
		// Later options win: the environment overrides the default name.
		resource.WithFromEnv(),
	)
	if err != nil {
		return nil, fmt.Errorf("resource: %w", err)
	}
	provider := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exporter), sdktrace.WithResource(res))
	otel.SetTracerProvider(provider)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	return provider.Shutdown, nil
}
