// Command services serves the course system's UserService and PaymentService in Go: gRPC over
// h2c on loopback, traced by otelgrpc.NewServerHandler. UserService.StreamUsers calls
// PaymentService.GetBalance through a client traced by otelgrpc.NewClientHandler.
//
// Environment: GRPC_PORT (default 50052; 0 picks a free port), PAYMENT_SERVICE_URL (the
// PaymentService that StreamUsers calls, default this process), plus the OpenTelemetry variables
// of internal/telemetry. Prints "services listening on <url>" when ready; stops on SIGTERM,
// SIGINT or, with EXIT_ON_STDIN_CLOSE=1, the end of standard input, after flushing its spans.
package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"google.golang.org/grpc"

	paymentv1 "connectotel.example/polyglot/gen/payment/v1"
	userv1 "connectotel.example/polyglot/gen/user/v1"
	"connectotel.example/polyglot/internal/grpcdial"
	"connectotel.example/polyglot/internal/lifecycle"
	"connectotel.example/polyglot/internal/services"
	"connectotel.example/polyglot/internal/telemetry"
)

// stopTimeout bounds the graceful stop and the span flush, each.
const stopTimeout = 5 * time.Second

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "services: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	ctx, stop := lifecycle.StopContext()
	defer stop()
	shutdown, err := telemetry.Start(context.Background(), "services")
	if err != nil {
		return err
	}
	port := os.Getenv("GRPC_PORT")
	if port == "" {
		port = "50052"
	}
	listener, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", port))
	if err != nil {
		return err
	}
	self := fmt.Sprintf("http://%s", listener.Addr())
	paymentURL := os.Getenv("PAYMENT_SERVICE_URL")
	if paymentURL == "" {
		paymentURL = self
	}
	conn, err := grpcdial.Traced(paymentURL)
	if err != nil {
		return fmt.Errorf("PAYMENT_SERVICE_URL: %w", err)
	}
	defer conn.Close()

	server := grpc.NewServer(grpc.StatsHandler(otelgrpc.NewServerHandler()))
	userv1.RegisterUserServiceServer(server, &services.UserServer{Payments: paymentv1.NewPaymentServiceClient(conn)})
	paymentv1.RegisterPaymentServiceServer(server, services.PaymentServer{})
	served := make(chan error, 1)
	go func() { served <- server.Serve(listener) }()
	fmt.Printf("services listening on %s\n", self)

	select {
	case err = <-served:
	case <-ctx.Done():
		stopGracefully(server)
	}
	flushCtx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	if flushErr := shutdown(flushCtx); flushErr != nil {
		fmt.Fprintf(os.Stderr, "services: telemetry shutdown: %v\n", flushErr)
	}
	return err
}

// stopGracefully lets running calls finish for at most stopTimeout, then closes them.
func stopGracefully(server *grpc.Server) {
	done := make(chan struct{})
	go func() {
		server.GracefulStop()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(stopTimeout):
		server.Stop()
	}
}
