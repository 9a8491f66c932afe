"""The course system's UserService and PaymentService in Python: gRPC (grpcio) on loopback, traced
by opentelemetry-instrumentation-grpc's server interceptor, with the same behaviour as
examples/user-service.ts and examples/payment-service.ts. UserService.StreamUsers calls
PaymentService.GetBalance through a channel traced by the client interceptor.

Environment: GRPC_PORT (default 50053; 0 picks a free port), PAYMENT_SERVICE_URL (the
PaymentService that StreamUsers calls, default this process), plus the OpenTelemetry variables of
telemetry.py. The generated stubs (grpc_tools.protoc) must be on PYTHONPATH. Prints
"services listening on <url>" when ready; stops like lifecycle.py says, after flushing its spans.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from concurrent import futures

import grpc
from opentelemetry import trace
from opentelemetry.instrumentation.grpc import server_interceptor

import course
from channels import traced_channel
from lifecycle import stop_event
from payment.v1 import payment_pb2, payment_pb2_grpc
from telemetry import start_telemetry
from user.v1 import user_pb2, user_pb2_grpc

DEFAULT_PAGE_SIZE = 10
"""Page size of StreamUsers when the request leaves it 0."""

STOP_GRACE_SECONDS = 5.0
"""How long running calls may go on after a stop request."""


class UserService(user_pb2_grpc.UserServiceServicer):
    """user.v1.UserService. `payments` is called from inside StreamUsers, after the first user went
    out: that call must join the StreamUsers trace."""

    def __init__(self, payments: payment_pb2_grpc.PaymentServiceStub) -> None:
        self._payments = payments

    def FetchUser(self, request, context):
        user = course.find_user(request.user_id)
        if user is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"user {request.user_id} not found")
        return user_pb2.UserResponse(id=user.id, name=user.name, email=user.email)

    def StreamUsers(self, request, context) -> Iterator[user_pb2.UserResponse]:
        if request.page_size < 0:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"page size {request.page_size} is negative")
        page_size = min(request.page_size or DEFAULT_PAGE_SIZE, course.MAX_USER_ID)
        for user_id in range(1, page_size + 1):
            user = course.find_user(user_id)
            if user is not None:
                yield user_pb2.UserResponse(id=user.id, name=user.name, email=user.email)
            if user_id == 1:
                balance = self._payments.GetBalance(
                    payment_pb2.GetBalanceRequest(user_id=user_id), timeout=context.time_remaining()
                )
                trace.get_current_span().set_attribute("app.first_user.balance", balance.amount)

    def CreateUsers(self, request_iterator, context):
        count = 0
        for request in request_iterator:
            if request.email == "":
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"user {request.name!r} has no email")
            count += 1
        return user_pb2.CreateUsersResponse(count=count)

    def Chat(self, request_iterator, context) -> Iterator[user_pb2.ChatMessage]:
        for message in request_iterator:
            yield user_pb2.ChatMessage(
                user="user-service",
                message=f"hello {message.user}, you said: {message.message}",
                timestamp=int(time.time() * 1000),
            )


class PaymentService(payment_pb2_grpc.PaymentServiceServicer):
    """payment.v1.PaymentService."""

    def GetBalance(self, request, context):
        if request.user_id <= 0:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"user id {request.user_id} is not positive")
        amount, currency = course.balance_of(request.user_id)
        return payment_pb2.BalanceResponse(amount=amount, currency=currency)

    def ProcessPayment(self, request, context):
        if not request.amount > 0:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"amount {request.amount} is not positive")
        if request.amount > course.MANUAL_REVIEW_THRESHOLD:
            # Outlives the caller's timeout; stops as soon as the call ends (deadline, cancel), with
            # the reason as its status, as the TypeScript service throws its call's abort reason.
            ended = threading.Event()
            if not context.add_callback(ended.set):
                ended.set()  # the call ended before the handler ran (it waited for a worker)
            if ended.wait(course.MANUAL_REVIEW_SECONDS):
                remaining = context.time_remaining()
                if remaining is not None and remaining <= 0:
                    context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "deadline exceeded during the manual review")
                context.abort(grpc.StatusCode.CANCELLED, "call cancelled during the manual review")
        transaction_id = f"tx-{request.user_id}-{_base36(int(time.time() * 1000))}"
        return payment_pb2.PaymentResponse(success=True, transaction_id=transaction_id)


def _base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, rest = divmod(n, 36)
        out = digits[rest] + out
        if n == 0:
            return out


def main() -> None:
    stop = stop_event()
    provider = start_telemetry("services")
    workers = futures.ThreadPoolExecutor(max_workers=16)
    server = grpc.server(workers, interceptors=[server_interceptor()])
    port = server.add_insecure_port(f"127.0.0.1:{os.environ.get('GRPC_PORT') or '50053'}")
    self_url = f"http://127.0.0.1:{port}"
    channel = traced_channel(os.environ.get("PAYMENT_SERVICE_URL") or self_url)
    user_pb2_grpc.add_UserServiceServicer_to_server(UserService(payment_pb2_grpc.PaymentServiceStub(channel)), server)
    payment_pb2_grpc.add_PaymentServiceServicer_to_server(PaymentService(), server)
    server.start()
    print(f"services listening on {self_url}", flush=True)
    stop.wait()
    server.stop(STOP_GRACE_SECONDS).wait()
    # The server has stopped once its calls have; a handler may still be finishing, and its span
    # ends when it does: wait for the handlers before the last flush.
    workers.shutdown(wait=True)
    channel.close()
    provider.shutdown()


if __name__ == "__main__":
    main()
