// Command gateway is the course system's API gateway in Go: a net/http server traced by
// otelhttp, calling UserService and PaymentService over gRPC with clients traced by
// otelgrpc.NewClientHandler. Routes: internal/gateway.
//
// Environment: GATEWAY_PORT (default 8080; 0 picks a free port), USER_SERVICE_URL (default
// http://127.0.0.1:50052), PAYMENT_SERVICE_URL (default http://127.0.0.1:50053), plus the
// OpenTelemetry variables of internal/telemetry. Prints "gateway listening on <url>" when ready;
// stops like cmd/services.
package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"google.golang.org/grpc"

	paymentv1 "connectotel.example/polyglot/gen/payment/v1"
	userv1 "connectotel.example/polyglot/gen/user/v1"
	"connectotel.example/polyglot/internal/gateway"
	"connectotel.example/polyglot/internal/grpcdial"
	"connectotel.example/polyglot/internal/lifecycle"
	"connectotel.example/polyglot/internal/telemetry"
)

// stopTimeout bounds the graceful stop and the span flush, each.
const stopTimeout = 5 * time.Second

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "gateway: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	ctx, stop := lifecycle.StopContext()
	defer stop()
	shutdown, err := telemetry.Start(context.Background(), "gateway")
	if err != nil {
		return err
	}
	users, err := dial("USER_SERVICE_URL", "http://127.0.0.1:50052")
	if err != nil {
		return err
	}
	defer users.Close()
	payments, err := dial("PAYMENT_SERVICE_URL", "http://127.0.0.1:50053")
	if err != nil {
		return err
	}
	defer payments.Close()
	mux := gateway.NewMux(gateway.Options{
		Users:          userv1.NewUserServiceClient(users),
		Payments:       paymentv1.NewPaymentServiceClient(payments),
		PaymentTimeout: 300 * time.Millisecond,
		Timeout:        5 * time.Second,
	})

	port := os.Getenv("GATEWAY_PORT")
	if port == "" {
		port = "8080"
	}
	listener, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", port))
	if err != nil {
		return err
	}
	server := &http.Server{Handler: otelhttp.NewHandler(mux, "gateway"), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- server.Serve(listener) }()
	fmt.Printf("gateway listening on http://%s\n", listener.Addr())

	select {
	case err = <-served:
	case <-ctx.Done():
		stopCtx, cancel := context.WithTimeout(context.Background(), stopTimeout)
		defer cancel()
		if stopErr := server.Shutdown(stopCtx); stopErr != nil {
			_ = server.Close()
		}
		err = <-served
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	flushCtx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	if flushErr := shutdown(flushCtx); flushErr != nil {
		fmt.Fprintf(os.Stderr, "gateway: telemetry shutdown: %v\n", flushErr)
	}
	return err
}

// dial connects to the base URL in the variable env, or fallback, with a traced client.
func dial(env, fallback string) (*grpc.ClientConn, error) {
	url := os.Getenv(env)
	if url == "" {
		url = fallback
	}
	conn, err := grpcdial.Traced(url)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", env, err)
	}
	return conn, nil
}
