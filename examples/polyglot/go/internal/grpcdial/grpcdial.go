// Package grpcdial opens the gRPC client connections of the polyglot system's Go processes.
package grpcdial

import (
	"fmt"
	"net/url"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/stats"
)

// Target turns a base URL of the course system (http://127.0.0.1:50053, as the TypeScript
// processes take it) into a gRPC dial target (127.0.0.1:50053).
func Target(baseURL string) (string, error) {
	u, err := url.Parse(baseURL)
	if err != nil || u.Host == "" || u.Scheme != "http" {
		return "", fmt.Errorf("not an http url: %q", baseURL)
	}
	if u.Port() == "" {
		return "", fmt.Errorf("url has no port: %q", baseURL)
	}
	return u.Host, nil
}

// Traced connects to the service at baseURL over h2c, every call traced by
// otelgrpc.NewClientHandler.
func Traced(baseURL string) (*grpc.ClientConn, error) {
	return dial(baseURL, otelgrpc.NewClientHandler())
}

// Plain connects to the service at baseURL over h2c without tracing: the control calls of the
// tests, which show what grpc-go does by itself.
func Plain(baseURL string) (*grpc.ClientConn, error) {
	return dial(baseURL, nil)
}

func dial(baseURL string, handler stats.Handler) (*grpc.ClientConn, error) {
	target, err := Target(baseURL)
	if err != nil {
		return nil, err
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	if handler != nil {
		opts = append(opts, grpc.WithStatsHandler(handler))
	}
	return grpc.NewClient(target, opts...)
}
