package signaling_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	sioclient "github.com/zishang520/socket.io/clients/socket/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"
)

// received is one event a test client got from the server.
type received struct {
	Event string
	Args  []any
}

// obj returns the first argument as an object (nil when it is not one).
func (r received) obj() map[string]any {
	if len(r.Args) == 0 {
		return nil
	}
	m, _ := r.Args[0].(map[string]any)
	return m
}

// sigClient is a socket.io client driven by a scenario. The Go and the
// JavaScript socket.io clients both implement it, so the same scenarios run
// against both.
type sigClient interface {
	ID() string
	Emit(event string, args ...any)
	// Disconnect leaves cleanly (a socket.io DISCONNECT packet).
	Disconnect()
	// Drop loses the transport abruptly.
	Drop()
	// Wait returns the first event not yet consumed by Wait that is named
	// event and satisfies match, failing the test at the deadline.
	Wait(event string, match func(map[string]any) bool) received
	// Events is every event received so far, in order.
	Events() []received
}

// eventLog is an ordered, waitable log of received events.
type eventLog struct {
	mu       sync.Mutex
	events   []received
	consumed map[int]bool
	changed  chan struct{}
}

func newEventLog() *eventLog {
	return &eventLog{consumed: make(map[int]bool), changed: make(chan struct{})}
}

func (l *eventLog) add(ev received) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, ev)
	close(l.changed)
	l.changed = make(chan struct{})
}

func (l *eventLog) all() []received {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]received(nil), l.events...)
}

func (l *eventLog) wait(t testing.TB, who, event string, match func(map[string]any) bool) received {
	t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for {
		l.mu.Lock()
		for i, ev := range l.events {
			if l.consumed[i] || ev.Event != event {
				continue
			}
			if match == nil || match(ev.obj()) {
				l.consumed[i] = true
				l.mu.Unlock()
				return ev
			}
		}
		changed := l.changed
		l.mu.Unlock()
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("%s: no %q event within 10s; got %v", who, event, l.all())
			return received{}
		}
	}
}

// goClient is the Go socket.io client.
type goClient struct {
	t    testing.TB
	name string
	sock *sioclient.Socket
	log  *eventLog

	mu sync.Mutex
	id string
}

type dialOptions struct {
	auth map[string]any
}

// dialGo connects a Go socket.io client and waits for the connection.
func dialGo(t testing.TB, url, name string, opt dialOptions) *goClient {
	t.Helper()
	c, err := tryDialGo(t, url, name, opt)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return c
}

// attemptTimeout is the Go client's connect attempt timeout (see tryDialGo).
const attemptTimeout = 15 * time.Second

func tryDialGo(t testing.TB, url, name string, opt dialOptions) (*goClient, error) {
	opts := sioclient.DefaultOptions()
	opts.SetForceNew(true)
	opts.SetReconnection(true)
	opts.SetReconnectionDelay(50)
	// The Go client (v3.0.6) starts its engine.io transport before it
	// listens for the transport's "open", so now and then a connect is
	// missed and only its attempt timeout (with reconnection) retries it.
	// The same race can leave that timer armed after a good connect, so
	// that it closes the connection one timeout later. The timeout is set
	// longer than any test here runs after connecting; a missed connect
	// then costs its length (rtcio supervises attempts itself instead).
	opts.SetTimeout(attemptTimeout)
	// Handlers must be in place before the connection starts, or a fast
	// connect is missed.
	opts.SetAutoConnect(false)
	// WebSocket: over it a missed open always recovered here, while the
	// polling start could also stall for good (4 in 300 under -race).
	// Browsers' polling is covered by the Node and Chromium tests.
	opts.SetTransports(types.NewSet(sioclient.WebSocket))
	if opt.auth != nil {
		opts.SetAuth(opt.auth)
	}
	c := &goClient{t: t, name: name, log: newEventLog()}
	connected := make(chan string, 1)
	failed := make(chan error, 1)
	sock, err := sioclient.Connect(url, opts)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	c.sock = sock
	sock.On("connect", func(...any) {
		c.mu.Lock()
		c.id = sock.Id()
		c.mu.Unlock()
		select {
		case connected <- sock.Id():
		default:
		}
	})
	sock.On("connect_error", func(args ...any) {
		// A refusal by the server is final. A timeout is the client's
		// own open race (see dialGo): its reconnection retries.
		if err, ok := firstArg(args).(error); ok && err.Error() == "timeout" {
			t.Logf("%s: connect attempt timed out, retrying", name)
			return
		}
		select {
		case failed <- fmt.Errorf("connect_error: %v", args):
		default:
		}
	})
	sock.On("disconnect", func(args ...any) { t.Logf("%s: disconnected: %v", name, args) })
	sock.OnAny(func(args ...any) {
		if len(args) == 0 {
			return
		}
		ev, _ := args[0].(string)
		c.log.add(received{Event: ev, Args: args[1:]})
	})
	t.Cleanup(func() { sock.Disconnect() })
	sock.Connect()
	select {
	case <-connected:
		// Connected: from now on a lost connection stays lost, as the
		// scenarios expect.
		sock.Io().SetReconnection(false)
		return c, nil
	case err := <-failed:
		return nil, err
	case <-time.After(2*attemptTimeout + 5*time.Second):
		return nil, fmt.Errorf("not connected within %v", 2*attemptTimeout+5*time.Second)
	}
}

func firstArg(args []any) any {
	if len(args) == 0 {
		return nil
	}
	return args[0]
}

// ID is the id of the client's latest connection: after a retried
// connect it may differ from the first one reported.
func (c *goClient) ID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.id
}

func (c *goClient) Emit(event string, args ...any) {
	if err := c.sock.Emit(event, args...); err != nil {
		c.t.Errorf("%s: emit %s: %v", c.name, event, err)
	}
}

func (c *goClient) Disconnect() { c.sock.Disconnect() }

// Drop closes the engine.io connection under the socket: the server sees a
// transport close and no socket.io DISCONNECT packet.
func (c *goClient) Drop() { c.sock.Io().Engine().Close() }

func (c *goClient) Wait(event string, match func(map[string]any) bool) received {
	c.t.Helper()
	return c.log.wait(c.t, c.name, event, match)
}

func (c *goClient) Events() []received { return c.log.all() }

// waitCtx is the deadline every scenario step gets.
func waitCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}
