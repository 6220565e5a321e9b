// Package gatewaytest runs a gateway in the test's own process, on a free
// loopback port. It lives apart from testenv because it imports the
// gateway (and through it rtcio): packages below the gateway start it as a
// process instead (testenv.StartGatewayProcess).
package gatewaytest

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rtcio-gateway/rtcio-gateway/config"
	"github.com/rtcio-gateway/rtcio-gateway/gateway"
)

// Gateway is a gateway server running for one test on a loopback port.
type Gateway struct {
	// URL is the server's base URL, e.g. "http://127.0.0.1:40123".
	URL    string
	Server *gateway.Server
}

// TestConfig is config.Default tuned for tests of rtc.io-server behaviour:
// mesh rooms (what the reference server does), a free loopback port, media
// on loopback only, a short shutdown bound.
func TestConfig() config.Config {
	cfg := config.Default()
	cfg.Listen = "127.0.0.1:0"
	cfg.Rooms.DefaultTopology = "mesh"
	cfg.Media.AllowedIPs = []string{"127.0.0.0/8"}
	// Tests serve their own pages at "/".
	cfg.Demo.Enabled = false
	cfg.Shutdown.Timeout = 5 * time.Second
	return cfg
}

// SFUConfig is TestConfig with SFU rooms, the gateway's default.
func SFUConfig() config.Config {
	cfg := TestConfig()
	cfg.Rooms.DefaultTopology = "sfu"
	return cfg
}

// StartGateway starts a gateway with cfg on a free loopback port and stops
// it when the test ends. cfg.Listen is ignored.
func StartGateway(t testing.TB, cfg config.Config, opts ...gateway.Option) *Gateway {
	t.Helper()
	return StartGatewayAt(t, "127.0.0.1", cfg, opts...)
}

// StartGatewayAt is StartGateway on a free port of the local address ip
// (for example the test's end of a testenv.Shaped link).
func StartGatewayAt(t testing.TB, ip string, cfg config.Config, opts ...gateway.Option) *Gateway {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	return StartGatewayOn(t, ln, cfg, opts...)
}

// StartGatewayOn is StartGateway on a listener the test made (for example
// one whose sockets have small buffers).
func StartGatewayOn(t testing.TB, ln net.Listener, cfg config.Config, opts ...gateway.Option) *Gateway {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(newTestWriter(t), &slog.HandlerOptions{Level: slog.LevelInfo}))
	srv, err := gateway.New(cfg, logger, opts...)
	if err != nil {
		_ = ln.Close()
		t.Fatalf("gateway.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("gateway stopped with error: %v", err)
			}
		case <-time.After(cfg.Shutdown.Timeout + 5*time.Second):
			t.Errorf("gateway did not stop within its shutdown timeout")
		}
	})
	return &Gateway{URL: "http://" + ln.Addr().String(), Server: srv}
}

// testWriter sends log output to the test's log, so it shows only for
// failing tests (or -v). Lines written after the test ended (a library's
// late goroutine) are dropped: testing panics on a late Log.
type testWriter struct {
	t    testing.TB
	mu   sync.Mutex
	done bool
}

func newTestWriter(t testing.TB) *testWriter {
	w := &testWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	return w
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}
