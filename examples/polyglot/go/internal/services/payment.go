package services

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	paymentv1 "connectotel.example/polyglot/gen/payment/v1"
	"connectotel.example/polyglot/internal/course"
)

// PaymentServer is payment.v1.PaymentService.
type PaymentServer struct {
	paymentv1.UnimplementedPaymentServiceServer
}

// GetBalance returns the balance of a user; a user id that is not positive is INVALID_ARGUMENT.
func (PaymentServer) GetBalance(_ context.Context, req *paymentv1.GetBalanceRequest) (*paymentv1.BalanceResponse, error) {
	if req.GetUserId() <= 0 {
		return nil, status.Errorf(codes.InvalidArgument, "user id %d is not positive", req.GetUserId())
	}
	amount, currency := course.BalanceOf(req.GetUserId())
	return &paymentv1.BalanceResponse{Amount: amount, Currency: currency}, nil
}

// ProcessPayment charges a user. A payment above course.ManualReviewThreshold waits for a manual
// review that outlasts the caller's timeout, and stops with the call's end: DEADLINE_EXCEEDED or
// CANCELLED, as the context says.
func (PaymentServer) ProcessPayment(ctx context.Context, req *paymentv1.PaymentRequest) (*paymentv1.PaymentResponse, error) {
	if !(req.GetAmount() > 0) {
		return nil, status.Errorf(codes.InvalidArgument, "amount %v is not positive", req.GetAmount())
	}
	if req.GetAmount() > course.ManualReviewThreshold {
		select {
		case <-time.After(course.ManualReviewDuration):
		case <-ctx.Done():
			return nil, status.FromContextError(ctx.Err()).Err()
		}
	}
	id := fmt.Sprintf("tx-%d-%s", req.GetUserId(), strconv.FormatInt(time.Now().UnixMilli(), 36))
	return &paymentv1.PaymentResponse{Success: true, TransactionId: id}, nil
}
