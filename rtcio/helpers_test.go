package rtcio

import (
	"context"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"go.uber.org/goleak"

	"github.com/rtcio-gateway/rtcio-gateway/internal/testenv"
)

func TestMain(m *testing.M) { testenv.VerifyTestMain(m) }

// leakCheck fails t if a goroutine started during the test outlives it. It
// is registered first, so it runs after every other cleanup (Socket.Close,
// servers, browser).
func leakCheck(t *testing.T) {
	opts := testenv.LeakOptions()
	t.Cleanup(func() { goleak.VerifyNone(t, opts...) })
}

const waitFor = 20 * time.Second

// timeout is the deadline of one wait in these tests.
func timeout() <-chan time.Time { return time.After(waitFor) }

func testLogger(t testing.TB) *slog.Logger {
	lvl := slog.LevelWarn
	if os.Getenv("RTCIO_DEBUG") != "" {
		lvl = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(&tlog{t: t}, &slog.HandlerOptions{Level: lvl}))
}

// tlog sends logs to the test log and drops lines after the test ended.
type tlog struct {
	t    testing.TB
	mu   sync.Mutex
	done bool
}

func (w *tlog) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(string(b))
	}
	return len(b), nil
}

func testOptions(t testing.TB, tune ...func(*webrtc.SettingEngine)) Options {
	api, err := LoopbackAPI(tune...)
	if err != nil {
		t.Fatal(err)
	}
	l := &tlog{t: t}
	t.Cleanup(func() { l.mu.Lock(); l.done = true; l.mu.Unlock() })
	lvl := slog.LevelWarn
	if os.Getenv("RTCIO_DEBUG") != "" {
		lvl = slog.LevelDebug
	}
	return Options{API: api, Logger: slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: lvl}))}
}

func dial(t testing.TB, url string, opts Options) *Socket {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	s, err := Dial(ctx, url, opts)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func join(t testing.TB, s *Socket, room string) {
	t.Helper()
	if err := s.Server().Emit("join-room", map[string]any{"roomId": room, "name": s.ID()}); err != nil {
		t.Fatalf("join-room: %v", err)
	}
}

// mailbox collects events of one name for waiting with a deadline.
type mailbox struct {
	ch chan *Event
}

func collect(s interface {
	On(string, Handler) ListenerID
}, name string) *mailbox {
	m := &mailbox{ch: make(chan *Event, 256)}
	s.On(name, func(e *Event) {
		select {
		case m.ch <- e:
		default:
		}
	})
	return m
}

func (m *mailbox) next(t testing.TB, what string) *Event {
	t.Helper()
	select {
	case e := <-m.ch:
		return e
	case <-time.After(waitFor):
		t.Fatalf("timed out waiting for %s", what)
		return nil
	}
}

// nextMatch waits for an event satisfying ok, discarding others.
func (m *mailbox) nextMatch(t testing.TB, what string, ok func(*Event) bool) *Event {
	t.Helper()
	deadline := time.After(waitFor)
	for {
		select {
		case e := <-m.ch:
			if ok(e) {
				return e
			}
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
			return nil
		}
	}
}

// none asserts no event arrives within d (used only after a positive
// barrier proved the path works, so silence is meaningful).
func (m *mailbox) none(t testing.TB, what string, d time.Duration) {
	t.Helper()
	select {
	case e := <-m.ch:
		t.Fatalf("unexpected %s: %+v", what, e)
	case <-time.After(d):
	}
}

// startGateway runs our gateway as a process with mesh rooms (rtc.io-server
// behaviour); in process it would be an import cycle (the gateway uses
// rtcio).
func startGateway(t testing.TB) string {
	return testenv.StartGatewayProcess(t, "--topology", "mesh").URL
}
