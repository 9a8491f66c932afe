// Package gateway holds the routes of the course system's API gateway in Go, the same REST API as
// examples/gateway-routes.ts: JSON over HTTP in, gRPC calls to UserService and PaymentService out.
//
//	GET  /api/user/{id}          FetchUser, then GetBalance
//	GET  /api/users?page_size=   StreamUsers
//	POST /api/users              CreateUsers with {"users":[{name,email}]}
//	POST /api/chat               Chat with {"user":..,"messages":[..]}, one reply awaited per message
//	POST /api/pay/{id}           ProcessPayment with {"amount":..} and a client timeout
//
// Errors answer {"error":{"code":"not_found","message":"..."}} with the HTTP status of the Connect
// protocol's mapping (NOT_FOUND 404, DEADLINE_EXCEEDED 504, ...; UNAVAILABLE 502, as the upstream
// is what is unavailable).
package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	paymentv1 "connectotel.example/polyglot/gen/payment/v1"
	userv1 "connectotel.example/polyglot/gen/user/v1"
)

// maxBodyBytes is the largest accepted request body.
const maxBodyBytes = 1 << 20

// Options are the gateway's upstream clients and timeouts.
type Options struct {
	Users    userv1.UserServiceClient
	Payments paymentv1.PaymentServiceClient
	// PaymentTimeout is the client timeout of ProcessPayment (the course system's 300 ms).
	PaymentTimeout time.Duration
	// Timeout is the client timeout of every other call.
	Timeout time.Duration
}

// httpError is a request the gateway rejects before calling upstream, answered with status.
type httpError struct {
	status  int
	message string
}

func (e *httpError) Error() string { return e.message }

type handlerFunc func(r *http.Request) (status int, body any, err error)

// NewMux returns the routes on an http.ServeMux, whose patterns otelhttp reads as http.route.
func NewMux(o Options) *http.ServeMux {
	mux := http.NewServeMux()
	handle := func(pattern string, h handlerFunc) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			status, body, err := h(r)
			if err != nil {
				status, body = errorReply(err)
			}
			writeJSON(w, status, body)
		})
	}
	handle("GET /api/user/{id}", func(r *http.Request) (int, any, error) {
		id, err := parseID(r.PathValue("id"))
		if err != nil {
			return 0, nil, err
		}
		ctx, cancel := context.WithTimeout(r.Context(), o.Timeout)
		defer cancel()
		user, err := o.Users.FetchUser(ctx, &userv1.FetchUserRequest{UserId: id})
		if err != nil {
			return 0, nil, err
		}
		balance, err := o.Payments.GetBalance(ctx, &paymentv1.GetBalanceRequest{UserId: id})
		if err != nil {
			return 0, nil, err
		}
		return http.StatusOK, map[string]any{
			"id": user.GetId(), "name": user.GetName(), "email": user.GetEmail(),
			"balance": map[string]any{"amount": balance.GetAmount(), "currency": balance.GetCurrency()},
		}, nil
	})
	handle("GET /api/users", func(r *http.Request) (int, any, error) {
		pageSize, err := parseNonNegative(r.URL.Query().Get("page_size"), "page_size")
		if err != nil {
			return 0, nil, err
		}
		ctx, cancel := context.WithTimeout(r.Context(), o.Timeout)
		defer cancel()
		stream, err := o.Users.StreamUsers(ctx, &userv1.StreamUsersRequest{PageSize: pageSize})
		if err != nil {
			return 0, nil, err
		}
		users := []map[string]any{}
		for {
			user, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return 0, nil, err
			}
			users = append(users, map[string]any{"id": user.GetId(), "name": user.GetName(), "email": user.GetEmail()})
		}
		return http.StatusOK, map[string]any{"count": len(users), "users": users}, nil
	})
	handle("POST /api/users", func(r *http.Request) (int, any, error) {
		var body struct {
			Users []struct {
				Name  *string `json:"name"`
				Email *string `json:"email"`
			} `json:"users"`
		}
		if err := readJSON(r, &body); err != nil {
			return 0, nil, err
		}
		ctx, cancel := context.WithTimeout(r.Context(), o.Timeout)
		defer cancel()
		stream, err := o.Users.CreateUsers(ctx)
		if err != nil {
			return 0, nil, err
		}
		for i, u := range body.Users {
			if u.Name == nil || u.Email == nil {
				return 0, nil, &httpError{http.StatusBadRequest, fmt.Sprintf("users[%d] needs a name and an email", i)}
			}
			if err := stream.Send(&userv1.CreateUserRequest{Name: *u.Name, Email: *u.Email}); err != nil {
				break // the server ended the call: CloseAndRecv returns its status
			}
		}
		res, err := stream.CloseAndRecv()
		if err != nil {
			return 0, nil, err
		}
		return http.StatusCreated, map[string]any{"created": res.GetCount()}, nil
	})
	handle("POST /api/chat", func(r *http.Request) (int, any, error) {
		var body struct {
			User     string   `json:"user"`
			Messages []string `json:"messages"`
		}
		if err := readJSON(r, &body); err != nil {
			return 0, nil, err
		}
		ctx, cancel := context.WithTimeout(r.Context(), o.Timeout)
		defer cancel()
		stream, err := o.Users.Chat(ctx)
		if err != nil {
			return 0, nil, err
		}
		replies := []string{}
		for _, m := range body.Messages {
			if err := stream.Send(&userv1.ChatMessage{User: body.User, Message: m, Timestamp: time.Now().UnixMilli()}); err != nil {
				return 0, nil, err
			}
			reply, err := stream.Recv()
			if err != nil {
				return 0, nil, err
			}
			replies = append(replies, reply.GetMessage())
		}
		if err := stream.CloseSend(); err != nil {
			return 0, nil, err
		}
		if _, err := stream.Recv(); !errors.Is(err, io.EOF) {
			return 0, nil, fmt.Errorf("chat did not end after the last reply: %w", err)
		}
		return http.StatusOK, map[string]any{"replies": replies}, nil
	})
	handle("POST /api/pay/{id}", func(r *http.Request) (int, any, error) {
		id, err := parseID(r.PathValue("id"))
		if err != nil {
			return 0, nil, err
		}
		var body struct {
			Amount *float64 `json:"amount"`
		}
		if err := readJSON(r, &body); err != nil {
			return 0, nil, err
		}
		if body.Amount == nil {
			return 0, nil, &httpError{http.StatusBadRequest, "amount is not a number"}
		}
		ctx, cancel := context.WithTimeout(r.Context(), o.PaymentTimeout)
		defer cancel()
		res, err := o.Payments.ProcessPayment(ctx, &paymentv1.PaymentRequest{UserId: id, Amount: *body.Amount})
		if err != nil {
			return 0, nil, err
		}
		return http.StatusOK, map[string]any{"success": res.GetSuccess(), "transactionId": res.GetTransactionId()}, nil
	})
	return mux
}

// connectCodes are the Connect protocol's code strings and HTTP statuses
// (connectrpc.com/docs/protocol#error-codes), by gRPC code.
var connectCodes = map[codes.Code]struct {
	name   string
	status int
}{
	codes.Canceled:           {"canceled", 499},
	codes.Unknown:            {"unknown", 500},
	codes.InvalidArgument:    {"invalid_argument", 400},
	codes.DeadlineExceeded:   {"deadline_exceeded", 504},
	codes.NotFound:           {"not_found", 404},
	codes.AlreadyExists:      {"already_exists", 409},
	codes.PermissionDenied:   {"permission_denied", 403},
	codes.ResourceExhausted:  {"resource_exhausted", 429},
	codes.FailedPrecondition: {"failed_precondition", 400},
	codes.Aborted:            {"aborted", 409},
	codes.OutOfRange:         {"out_of_range", 400},
	codes.Unimplemented:      {"unimplemented", 501},
	codes.Internal:           {"internal", 500},
	codes.Unavailable:        {"unavailable", 502}, // the upstream is what is unavailable
	codes.DataLoss:           {"data_loss", 500},
	codes.Unauthenticated:    {"unauthenticated", 401},
}

func errorReply(err error) (int, any) {
	var he *httpError
	if errors.As(err, &he) {
		return he.status, map[string]any{"error": map[string]any{"code": "invalid_request", "message": he.message}}
	}
	s := status.Convert(err)
	c, ok := connectCodes[s.Code()]
	if !ok {
		c = connectCodes[codes.Unknown]
	}
	return c.status, map[string]any{"error": map[string]any{"code": c.name, "message": s.Message()}}
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	data, err := json.Marshal(body)
	if err != nil {
		status, data = http.StatusInternalServerError, []byte(`{"error":{"code":"internal","message":"response not encodable"}}`)
	}
	w.Header().Set("content-type", "application/json")
	w.Header().Set("content-length", strconv.Itoa(len(data)))
	w.WriteHeader(status)
	_, _ = w.Write(data)
}

func readJSON(r *http.Request, into any) error {
	data, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxBodyBytes))
	if err != nil {
		return &httpError{http.StatusRequestEntityTooLarge, fmt.Sprintf("request body larger than %d bytes", maxBodyBytes)}
	}
	if err := json.Unmarshal(data, into); err != nil {
		return &httpError{http.StatusBadRequest, "request body is not json of the expected shape"}
	}
	return nil
}

func parseID(raw string) (int32, error) {
	id, err := strconv.ParseInt(raw, 10, 32)
	if err != nil || id < 1 {
		return 0, &httpError{http.StatusBadRequest, fmt.Sprintf("user id %q is not a positive 32-bit integer", raw)}
	}
	return int32(id), nil
}

func parseNonNegative(raw, name string) (int32, error) {
	if raw == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(raw, 10, 32)
	if err != nil || n < 0 {
		return 0, &httpError{http.StatusBadRequest, fmt.Sprintf("%s %q is not a non-negative 32-bit integer", name, raw)}
	}
	return int32(n), nil
}
