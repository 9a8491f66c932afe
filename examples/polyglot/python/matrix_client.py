"""The Python client of the polyglot test matrix: calls the course system's services of every
target of a plan with clients traced by opentelemetry-instrumentation-grpc, each call inside a
root span of its own, and prints one JSON line per call. The Go and TypeScript clients
(go/cmd/matrix-client, ../matrix-client.ts) take the same plan and print the same lines: the
contract is examples/polyglot/matrix-plan.ts.

Environment: MATRIX_PLAN (the plan as JSON), plus the OpenTelemetry variables of telemetry.py.
Exit code 0 when every call ran (whatever its status), 1 when the plan is invalid.
"""

from __future__ import annotations

import functools
import json
import os
import queue
import sys
from collections.abc import Callable, Iterator

import grpc
from opentelemetry import trace

from channels import plain_channel, traced_channel
from payment.v1 import payment_pb2, payment_pb2_grpc
from telemetry import start_telemetry
from user.v1 import user_pb2, user_pb2_grpc

CALL_TIMEOUT_SECONDS = 10.0
"""Timeout of every call but the deadline call: a hang guard."""

CHAT_MESSAGES = ["hello", "how are my payments?", "bye"]

SLOW_PAYMENT = payment_pb2.PaymentRequest(user_id=42, amount=20_000)
"""The request of the deadline call: a manual review that outlasts the timeout."""


def payments_of(channel: Callable[[str], grpc.Channel], target: dict) -> payment_pb2_grpc.PaymentServiceStub:
    """The PaymentService of a target through one kind of channel."""
    return payment_pb2_grpc.PaymentServiceStub(channel(target["paymentUrl"]))


def run_call(call: str, target: dict, deadline_s: float, channel: Callable[[str], grpc.Channel]) -> int:
    """Makes one call of the plan; returns the number of response messages. Raises grpc.RpcError."""
    if call == "deadline":
        payments_of(channel, target).ProcessPayment(SLOW_PAYMENT, timeout=deadline_s)
        return 1
    if call == "unavailable":
        request = payment_pb2.PaymentRequest(user_id=42, amount=10)
        payments_of(channel, target).ProcessPayment(request, timeout=CALL_TIMEOUT_SECONDS)
        return 1
    users = user_pb2_grpc.UserServiceStub(channel(target["userUrl"]))
    if call == "unary":
        users.FetchUser(user_pb2.FetchUserRequest(user_id=42), timeout=CALL_TIMEOUT_SECONDS)
        return 1
    if call == "not_found":
        users.FetchUser(user_pb2.FetchUserRequest(user_id=999_999), timeout=CALL_TIMEOUT_SECONDS)
        return 1
    if call == "server_streaming":
        stream = users.StreamUsers(user_pb2.StreamUsersRequest(page_size=3), timeout=CALL_TIMEOUT_SECONDS)
        return sum(1 for _ in stream)
    if call == "client_streaming":
        requests = (user_pb2.CreateUserRequest(name=f"user-{i}", email=f"user-{i}@example.com") for i in (1, 2, 3))
        users.CreateUsers(requests, timeout=CALL_TIMEOUT_SECONDS)
        return 1
    if call == "bidi_streaming":
        return chat(users)
    raise ValueError(f"unknown call {call!r}")


def chat(users: user_pb2_grpc.UserServiceStub) -> int:
    """Sends the chat messages one at a time, each after the reply to the one before."""
    outgoing: queue.Queue[user_pb2.ChatMessage | None] = queue.Queue()

    def requests() -> Iterator[user_pb2.ChatMessage]:
        while (message := outgoing.get()) is not None:
            yield message

    replies = users.Chat(requests(), timeout=CALL_TIMEOUT_SECONDS)
    received = 0
    for text in CHAT_MESSAGES:
        outgoing.put(user_pb2.ChatMessage(user="python", message=text, timestamp=received + 1))
        next(replies)
        received += 1
    outgoing.put(None)
    return received + sum(1 for _ in replies)


def code_of(call: Callable[[], int]) -> tuple[str, int]:
    """Runs a call; returns its canonical status name and the messages it received."""
    try:
        return "OK", call()
    except grpc.RpcError as err:
        return err.code().name, 0


def main() -> int:
    try:
        plan = json.loads(os.environ["MATRIX_PLAN"])
        client, targets = plan["client"], plan["targets"]
        deadline_s = plan["deadlineMs"] / 1000
        control_tries, control_burst = plan["controlTries"], plan["controlBurst"]
    except (KeyError, TypeError, ValueError) as err:
        print(f"matrix client: invalid MATRIX_PLAN: {err}", file=sys.stderr)
        return 1
    provider = start_telemetry(f"client-{client}")
    # One channel per service and kind, as an application keeps them.
    traced, plain = functools.cache(traced_channel), functools.cache(plain_channel)
    tracer = trace.get_tracer("connect-otel.polyglot.matrix")
    for target in targets:
        for call in target["calls"]:
            attributes = {"matrix.client": client, "matrix.server": target["server"], "matrix.call": call}
            paired = None
            if call == "deadline":
                # The control call that runs beside the traced one, under the same conditions.
                paired = payments_of(plain, target).ProcessPayment.future(SLOW_PAYMENT, timeout=deadline_s)
            with tracer.start_as_current_span(f"matrix {call}", attributes=attributes) as span:
                code, messages = code_of(lambda: run_call(call, target, deadline_s, traced))
            line = {
                "client": client,
                "server": target["server"],
                "call": call,
                "code": code,
                "messages": messages,
                "traceId": format(span.get_span_context().trace_id, "032x"),
                "spanId": format(span.get_span_context().span_id, "016x"),
                "controls": [],
            }
            if paired is not None:
                # Untraced control calls: does grpcio answer the same without tracing?
                line["controls"].append(paired.code().name)
                for _ in range(control_tries if code != "DEADLINE_EXCEEDED" else 0):
                    if code in line["controls"]:
                        break
                    payments = payments_of(plain, target)
                    burst = [payments.ProcessPayment.future(SLOW_PAYMENT, timeout=deadline_s) for _ in range(control_burst)]
                    line["controls"].extend(future.code().name for future in burst)
            print(json.dumps(line), flush=True)
    provider.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
