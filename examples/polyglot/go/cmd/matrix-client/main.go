// Command matrix-client is the Go client of the polyglot test matrix: it calls the course
// system's services of every target of a plan with clients traced by otelgrpc.NewClientHandler,
// each call inside a root span of its own, and prints one JSON line per call. The Python and
// TypeScript clients take the same plan and print the same lines: the contract is
// examples/polyglot/matrix-plan.ts.
//
// Environment: MATRIX_PLAN (the plan as JSON), plus the OpenTelemetry variables of
// internal/telemetry. Exit code 0 when every call ran (whatever its status), 1 otherwise.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	paymentv1 "connectotel.example/polyglot/gen/payment/v1"
	userv1 "connectotel.example/polyglot/gen/user/v1"
	"connectotel.example/polyglot/internal/grpcdial"
	"connectotel.example/polyglot/internal/telemetry"
)

// callTimeout is the timeout of every call but the deadline call: a hang guard.
const callTimeout = 10 * time.Second

var chatMessages = []string{"hello", "how are my payments?", "bye"}

type target struct {
	Server     string   `json:"server"`
	UserURL    string   `json:"userUrl"`
	PaymentURL string   `json:"paymentUrl"`
	Calls      []string `json:"calls"`
}

type plan struct {
	Client       string   `json:"client"`
	DeadlineMs   int      `json:"deadlineMs"`
	ControlTries int      `json:"controlTries"`
	ControlBurst int      `json:"controlBurst"`
	Targets      []target `json:"targets"`
}

type result struct {
	Client   string   `json:"client"`
	Server   string   `json:"server"`
	Call     string   `json:"call"`
	Code     string   `json:"code"`
	Messages int      `json:"messages"`
	TraceID  string   `json:"traceId"`
	SpanID   string   `json:"spanId"`
	Controls []string `json:"controls"`
}

// conns keeps one connection per base URL and kind (traced or plain), as an application does.
type conns struct {
	dial func(string) (*grpc.ClientConn, error)
	open map[string]*grpc.ClientConn
}

func (c *conns) get(url string) (*grpc.ClientConn, error) {
	if conn, ok := c.open[url]; ok {
		return conn, nil
	}
	conn, err := c.dial(url)
	if err != nil {
		return nil, err
	}
	c.open[url] = conn
	return conn, nil
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "matrix client: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	var p plan
	if err := json.Unmarshal([]byte(os.Getenv("MATRIX_PLAN")), &p); err != nil {
		return fmt.Errorf("invalid MATRIX_PLAN: %w", err)
	}
	shutdown, err := telemetry.Start(context.Background(), "client-"+p.Client)
	if err != nil {
		return err
	}
	traced := &conns{dial: grpcdial.Traced, open: map[string]*grpc.ClientConn{}}
	plain := &conns{dial: grpcdial.Plain, open: map[string]*grpc.ClientConn{}}
	tracer := otel.Tracer("connect-otel.polyglot.matrix")
	deadline := time.Duration(p.DeadlineMs) * time.Millisecond
	out := json.NewEncoder(os.Stdout)
	for _, t := range p.Targets {
		for _, call := range t.Calls {
			var paired chan string
			if call == "deadline" {
				// The control call that runs beside the traced one, under the same conditions.
				paired = make(chan string, 1)
				if _, err := plain.get(t.PaymentURL); err != nil {
					return err
				}
				go func() {
					_, err := runCall(context.Background(), call, t, deadline, plain)
					paired <- codeName(err)
				}()
			}
			ctx, span := tracer.Start(context.Background(), "matrix "+call)
			span.SetAttributes(
				attribute.String("matrix.client", p.Client),
				attribute.String("matrix.server", t.Server),
				attribute.String("matrix.call", call),
			)
			messages, callErr := runCall(ctx, call, t, deadline, traced)
			span.End()
			r := result{
				Client: p.Client, Server: t.Server, Call: call, Code: codeName(callErr), Messages: messages,
				TraceID: span.SpanContext().TraceID().String(), SpanID: span.SpanContext().SpanID().String(),
				Controls: []string{},
			}
			if paired != nil {
				// Untraced control calls: does grpc-go answer the same without tracing?
				r.Controls = append(r.Controls, <-paired)
				for i := 0; r.Code != "DEADLINE_EXCEEDED" && i < p.ControlTries && !slices.Contains(r.Controls, r.Code); i++ {
					r.Controls = append(r.Controls, controlBurst(call, t, deadline, plain, p.ControlBurst)...)
				}
			}
			if err := out.Encode(r); err != nil {
				return err
			}
		}
	}
	flushCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return shutdown(flushCtx)
}

// controlBurst makes n calls at once with the plain connections and returns their codes.
func controlBurst(call string, t target, deadline time.Duration, plain *conns, n int) []string {
	// Connect first: conns is not safe for concurrent use.
	if _, err := plain.get(t.PaymentURL); err != nil {
		return []string{codeName(err)}
	}
	codes := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			_, err := runCall(context.Background(), call, t, deadline, plain)
			codes[i] = codeName(err)
		})
	}
	wg.Wait()
	return codes
}

// runCall makes one call of the plan and returns the number of response messages.
func runCall(ctx context.Context, call string, t target, deadline time.Duration, c *conns) (int, error) {
	if call == "deadline" || call == "unavailable" {
		conn, err := c.get(t.PaymentURL)
		if err != nil {
			return 0, err
		}
		timeout, amount := callTimeout, 10.0
		if call == "deadline" {
			timeout, amount = deadline, 20_000
		}
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		_, err = paymentv1.NewPaymentServiceClient(conn).ProcessPayment(ctx, &paymentv1.PaymentRequest{UserId: 42, Amount: amount})
		return answered(err), err
	}
	conn, err := c.get(t.UserURL)
	if err != nil {
		return 0, err
	}
	users := userv1.NewUserServiceClient(conn)
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	switch call {
	case "unary", "not_found":
		id := int32(42)
		if call == "not_found" {
			id = 999_999
		}
		_, err := users.FetchUser(ctx, &userv1.FetchUserRequest{UserId: id})
		return answered(err), err
	case "server_streaming":
		stream, err := users.StreamUsers(ctx, &userv1.StreamUsersRequest{PageSize: 3})
		if err != nil {
			return 0, err
		}
		received := 0
		for {
			if _, err := stream.Recv(); errors.Is(err, io.EOF) {
				return received, nil
			} else if err != nil {
				return received, err
			}
			received++
		}
	case "client_streaming":
		stream, err := users.CreateUsers(ctx)
		if err != nil {
			return 0, err
		}
		for i := 1; i <= 3; i++ {
			req := &userv1.CreateUserRequest{Name: fmt.Sprintf("user-%d", i), Email: fmt.Sprintf("user-%d@example.com", i)}
			if err := stream.Send(req); err != nil {
				break // the server ended the call: CloseAndRecv returns its status
			}
		}
		_, err = stream.CloseAndRecv()
		return answered(err), err
	case "bidi_streaming":
		stream, err := users.Chat(ctx)
		if err != nil {
			return 0, err
		}
		received := 0
		for i, text := range chatMessages {
			if err := stream.Send(&userv1.ChatMessage{User: "go", Message: text, Timestamp: int64(i + 1)}); err != nil {
				return received, err
			}
			if _, err := stream.Recv(); err != nil {
				return received, err
			}
			received++
		}
		if err := stream.CloseSend(); err != nil {
			return received, err
		}
		for {
			if _, err := stream.Recv(); errors.Is(err, io.EOF) {
				return received, nil
			} else if err != nil {
				return received, err
			}
			received++
		}
	default:
		return 0, fmt.Errorf("unknown call %q", call)
	}
}

// answered is the number of response messages of a unary answer: 1, or 0 for an error.
func answered(err error) int {
	if err != nil {
		return 0
	}
	return 1
}

// codeNames are the canonical gRPC status names (grpc/doc/statuscodes.md), by code.
var codeNames = [...]string{
	"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
	"PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
	"UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
}

// codeName is the canonical status name of a call's error: OK for nil.
func codeName(err error) string {
	code := status.Code(err)
	if int(code) < len(codeNames) {
		return codeNames[code]
	}
	return fmt.Sprintf("CODE_%d", code)
}
