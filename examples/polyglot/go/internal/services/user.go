// Package services implements the course system's UserService and PaymentService in Go, with the
// same behaviour as examples/user-service.ts and examples/payment-service.ts.
package services

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	paymentv1 "connectotel.example/polyglot/gen/payment/v1"
	userv1 "connectotel.example/polyglot/gen/user/v1"
	"connectotel.example/polyglot/internal/course"
)

// defaultPageSize is the page size of StreamUsers when the request leaves it 0.
const defaultPageSize = 10

// UserServer is user.v1.UserService. Payments is called from inside StreamUsers, after the first
// user went out, with the stream's context: that call must join the StreamUsers trace.
type UserServer struct {
	userv1.UnimplementedUserServiceServer
	Payments paymentv1.PaymentServiceClient
}

// FetchUser returns one user, or NOT_FOUND.
func (s *UserServer) FetchUser(_ context.Context, req *userv1.FetchUserRequest) (*userv1.UserResponse, error) {
	user, ok := course.FindUser(req.GetUserId())
	if !ok {
		return nil, status.Errorf(codes.NotFound, "user %d not found", req.GetUserId())
	}
	return &userv1.UserResponse{Id: user.ID, Name: user.Name, Email: user.Email}, nil
}

// StreamUsers streams users 1..page_size (at most course.MaxUserID) and looks up the first
// user's balance in between, recording it on the server span as app.first_user.balance.
func (s *UserServer) StreamUsers(req *userv1.StreamUsersRequest, stream userv1.UserService_StreamUsersServer) error {
	if req.GetPageSize() < 0 {
		return status.Errorf(codes.InvalidArgument, "page size %d is negative", req.GetPageSize())
	}
	pageSize := req.GetPageSize()
	if pageSize == 0 {
		pageSize = defaultPageSize
	}
	pageSize = min(pageSize, course.MaxUserID)
	ctx := stream.Context()
	for id := int32(1); id <= pageSize; id++ {
		if user, ok := course.FindUser(id); ok {
			if err := stream.Send(&userv1.UserResponse{Id: user.ID, Name: user.Name, Email: user.Email}); err != nil {
				return err
			}
		}
		if id == 1 {
			balance, err := s.Payments.GetBalance(ctx, &paymentv1.GetBalanceRequest{UserId: id})
			if err != nil {
				return err
			}
			trace.SpanFromContext(ctx).SetAttributes(attribute.Float64("app.first_user.balance", balance.GetAmount()))
		}
	}
	return nil
}

// CreateUsers counts the users of the request stream; a user without email is INVALID_ARGUMENT.
func (s *UserServer) CreateUsers(stream userv1.UserService_CreateUsersServer) error {
	var count int32
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return stream.SendAndClose(&userv1.CreateUsersResponse{Count: count})
		}
		if err != nil {
			return err
		}
		if req.GetEmail() == "" {
			return status.Errorf(codes.InvalidArgument, "user %q has no email", req.GetName())
		}
		count++
	}
}

// Chat answers every message with one of its own.
func (s *UserServer) Chat(stream userv1.UserService_ChatServer) error {
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		reply := &userv1.ChatMessage{
			User:      "user-service",
			Message:   fmt.Sprintf("hello %s, you said: %s", msg.GetUser(), msg.GetMessage()),
			Timestamp: time.Now().UnixMilli(),
		}
		if err := stream.Send(reply); err != nil {
			return err
		}
	}
}
