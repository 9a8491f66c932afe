"""OpenTelemetry set-up of the polyglot system's Python processes, as any Python service sets it
up for opentelemetry-instrumentation-grpc: a tracer provider exporting OTLP over HTTP (protobuf)
in batches, with a resource from OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES (and the SDK's
telemetry.sdk.* attributes), the sampler of OTEL_TRACES_SAMPLER and the propagators of
OTEL_PROPAGATORS (default W3C trace context and baggage), all registered globally. The exporter
reads OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT."""

from __future__ import annotations

import os

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor


def start_telemetry(default_service_name: str) -> TracerProvider:
    """Registers the global tracer provider and returns it; call its shutdown() before exiting,
    which flushes the spans still queued."""
    # Resource.create lets explicit attributes win over the environment: pass the default name
    # only when the environment names no service.
    named = "OTEL_SERVICE_NAME" in os.environ or "service.name=" in os.environ.get("OTEL_RESOURCE_ATTRIBUTES", "")
    resource = Resource.create({} if named else {"service.name": default_service_name})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    return provider
