// Package lifecycle is how the polyglot system's Go processes learn that they should stop, the
// same rules as exitOnSignal of examples/telemetry.ts: SIGTERM or SIGINT, and with
// EXIT_ON_STDIN_CLOSE=1 the end of standard input, which the demo and the tests keep open as a pipe
// so that no child outlives them.
package lifecycle

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// StopContext returns a context that is cancelled on the first stop request.
func StopContext() (context.Context, context.CancelFunc) {
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	if os.Getenv("EXIT_ON_STDIN_CLOSE") == "1" {
		go func() {
			_, _ = io.Copy(io.Discard, os.Stdin)
			cancel()
		}()
	}
	return ctx, cancel
}
