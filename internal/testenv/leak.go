package testenv

import (
	"testing"

	"go.uber.org/goleak"
)

// LeakOptions are the goleak options every package's tests use.
//   - The Go socket.io client starts a network monitor from its package
//     init that lives as long as the process; IgnoreCurrent (taken before
//     any test runs) covers it and nothing a test starts.
//   - The socket.io libraries arm one-shot timers (connect and ack
//     timeouts, seconds long) as goroutines that outlive a closed client
//     until they fire; they end by themselves, so they are not leaks.
func LeakOptions() []goleak.Option {
	return []goleak.Option{
		goleak.IgnoreCurrent(),
		goleak.IgnoreTopFunction("github.com/zishang520/socket.io/v3/pkg/utils.SetTimeout.func1"),
	}
}

// VerifyTestMain runs the package's tests and fails the run if any
// goroutine started by them is still running at the end.
func VerifyTestMain(m *testing.M) {
	goleak.VerifyTestMain(m, LeakOptions()...)
}
