"""The gRPC channels of the polyglot system's Python processes."""

from __future__ import annotations

from urllib.parse import urlsplit

import grpc
from opentelemetry.instrumentation.grpc import client_interceptor
from opentelemetry.instrumentation.grpc.grpcext import intercept_channel


def target(base_url: str) -> str:
    """The gRPC target (127.0.0.1:50053) of a base URL of the course system
    (http://127.0.0.1:50053, as the TypeScript processes take it).

    Raises ValueError when the URL is not http with a host and a port."""
    parts = urlsplit(base_url)
    if parts.scheme != "http" or not parts.hostname or parts.port is None:
        raise ValueError(f"not an http url with a port: {base_url!r}")
    return parts.netloc


def traced_channel(base_url: str) -> grpc.Channel:
    """An insecure channel to the service at base_url whose calls are traced by the client
    interceptor of opentelemetry-instrumentation-grpc (its own grpcext.intercept_channel, which
    GrpcInstrumentorClient applies to every channel when it patches grpcio)."""
    return intercept_channel(grpc.insecure_channel(target(base_url)), client_interceptor())


def plain_channel(base_url: str) -> grpc.Channel:
    """An insecure channel without tracing: the control calls of the tests, which show what grpcio
    does by itself."""
    return grpc.insecure_channel(target(base_url))
