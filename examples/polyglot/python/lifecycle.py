"""How the polyglot system's Python processes learn that they should stop, the same rules as
exitOnSignal of examples/telemetry.ts: SIGTERM or SIGINT, and with EXIT_ON_STDIN_CLOSE=1 the end
of standard input, which the demo and the tests keep open as a pipe so that no child outlives
them."""

from __future__ import annotations

import os
import signal
import threading


def stop_event() -> threading.Event:
    """An event that is set on the first stop request. Call from the main thread."""
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    if os.environ.get("EXIT_ON_STDIN_CLOSE") == "1":

        def wait_for_end_of_input() -> None:
            # The file descriptor, not sys.stdin: a daemon thread blocked in a buffered read holds
            # its lock, which the interpreter's shutdown then cannot take.
            while os.read(0, 4096):
                pass
            stop.set()

        threading.Thread(target=wait_for_end_of_input, daemon=True).start()
    return stop
