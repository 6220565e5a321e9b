package testenv

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// commandTimeout bounds a driver command issued by a method without its own
// context (Connect, Emit, ...), so a wedged driver fails the test instead of
// hanging it until go test's global timeout.
const commandTimeout = 30 * time.Second

// Lifecycle event names, reported alongside server events. socket.io
// reserves them, so no server event can carry these names.
const (
	EventConnect      = "connect"
	EventConnectError = "connect_error"
	EventDisconnect   = "disconnect"
)

// Event is one thing a JavaScript client saw, in arrival order.
type Event struct {
	Client string
	// Name is the server event's name, or EventConnect, EventConnectError
	// or EventDisconnect for lifecycle events.
	Name string
	// Args are the event's arguments as decoded JSON (numbers are float64;
	// binary attachments are {"$binary": base64}, see DecodeBinary). For
	// lifecycle events: connect [id], connect_error [message, data],
	// disconnect [reason, description].
	Args []any
	// ID is the socket id, for EventConnect.
	ID string
	// Message and Data describe an EventConnectError.
	Message string
	Data    any
	// Reason is socket.io's disconnect reason ("io server disconnect",
	// "transport close", ...), for EventDisconnect.
	Reason string
}

// IsLifecycle reports whether e is connect, connect_error or disconnect.
func (e Event) IsLifecycle() bool {
	switch e.Name {
	case EventConnect, EventConnectError, EventDisconnect:
		return true
	}
	return false
}

// ConnectError is a connection the server refused (a middleware's next(err)
// or a failed handshake): Message and Data are the client's err.message and
// err.data.
type ConnectError struct {
	Client  string
	Message string
	Data    any
}

func (e *ConnectError) Error() string {
	if e.Data != nil {
		return fmt.Sprintf("client %s: connect_error: %s (data %v)", e.Client, e.Message, e.Data)
	}
	return fmt.Sprintf("client %s: connect_error: %s", e.Client, e.Message)
}

// Binary marshals as {"$binary": base64}, which the driver turns into a
// real binary attachment when emitting.
type Binary []byte

// MarshalJSON implements json.Marshaler.
func (b Binary) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]string{"$binary": base64.StdEncoding.EncodeToString(b)})
}

// DecodeBinary returns the bytes of a received binary attachment, or false
// if v is not one.
func DecodeBinary(v any) ([]byte, bool) {
	m, ok := v.(map[string]any)
	if !ok || len(m) != 1 {
		return nil, false
	}
	s, ok := m["$binary"].(string)
	if !ok {
		return nil, false
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, false
	}
	return b, true
}

// NodeClients drives socket.io-client 4.8 instances in one Node process
// (test/node/sio-driver.mjs). Clients are named by the caller. Everything a
// client receives lands in its mailbox: Next and WaitEvent take events out,
// Events shows the whole history.
type NodeClients struct {
	proc *jsonlProc
	logf Logf

	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every new event
	logs    map[string]*clientLog
}

type clientLog struct {
	events []Event
	taken  []bool
	ids    []string
}

// StartNodeClients starts the driver for t; it is stopped at cleanup. The
// test is skipped (failed under CI) when Node or test/node is missing.
func StartNodeClients(t testing.TB) *NodeClients {
	t.Helper()
	SkipIfNoNode(t)
	n, err := NewNodeClients(context.Background(), t.Logf)
	if err != nil {
		t.Fatalf("start node clients: %v", err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Errorf("stop node clients: %v", err)
		}
	})
	return n
}

// NewNodeClients starts the driver; it runs until Close or until ctx ends.
func NewNodeClients(ctx context.Context, logf Logf) (*NodeClients, error) {
	n := &NodeClients{
		logf:    logf,
		changed: make(chan struct{}),
		logs:    make(map[string]*clientLog),
	}
	proc, err := startJSONL(ctx, logf, "sio-driver", "sio-driver.mjs", n.handleLine)
	if err != nil {
		return nil, err
	}
	n.proc = proc
	return n, nil
}

// Close disconnects every client, stops the driver and waits for it.
func (n *NodeClients) Close() error {
	return n.proc.close()
}

type wireEvent struct {
	Client      string          `json:"client"`
	Type        string          `json:"type"`
	Event       string          `json:"event"`
	Args        []any           `json:"args"`
	ID          string          `json:"id"`
	Message     string          `json:"message"`
	Data        any             `json:"data"`
	Reason      string          `json:"reason"`
	Description json.RawMessage `json:"description"`
}

func (n *NodeClients) handleLine(line []byte) {
	var w wireEvent
	if err := json.Unmarshal(line, &w); err != nil || w.Client == "" {
		n.logf.printf("sio-driver: unexpected line: %s", line)
		return
	}
	ev := Event{Client: w.Client}
	switch w.Type {
	case "event":
		ev.Name, ev.Args = w.Event, w.Args
		if ev.Args == nil {
			ev.Args = []any{}
		}
	case EventConnect:
		ev.Name, ev.ID, ev.Args = EventConnect, w.ID, []any{w.ID}
	case EventConnectError:
		ev.Name, ev.Message, ev.Data = EventConnectError, w.Message, w.Data
		ev.Args = []any{w.Message, w.Data}
	case EventDisconnect:
		var desc any
		if len(w.Description) > 0 {
			_ = json.Unmarshal(w.Description, &desc)
		}
		ev.Name, ev.Reason, ev.Args = EventDisconnect, w.Reason, []any{w.Reason, desc}
	default:
		n.logf.printf("sio-driver: unknown report type %q: %s", w.Type, line)
		return
	}
	n.mu.Lock()
	l := n.log(ev.Client)
	l.events = append(l.events, ev)
	l.taken = append(l.taken, false)
	if ev.Name == EventConnect {
		l.ids = append(l.ids, ev.ID)
	}
	close(n.changed)
	n.changed = make(chan struct{})
	n.mu.Unlock()
}

// log returns the client's log, creating it; n.mu must be held.
func (n *NodeClients) log(client string) *clientLog {
	l, ok := n.logs[client]
	if !ok {
		l = &clientLog{}
		n.logs[client] = l
	}
	return l
}

func (n *NodeClients) command(cmd map[string]any) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	return n.proc.call(ctx, cmd)
}

// Connect opens a socket.io connection for client (a name of the caller's
// choosing) and returns its socket id once connected. opts are io()
// options (auth, transports, query, reconnection, timeout...); reconnection
// is off unless opts turn it on. A refused connection is a *ConnectError.
func (n *NodeClients) Connect(client, url string, opts map[string]any) (string, error) {
	if opts == nil {
		opts = map[string]any{}
	}
	line, err := n.command(map[string]any{"cmd": "connect", "client": client, "url": url, "opts": opts})
	if err != nil {
		var de *DriverError
		if errors.As(err, &de) {
			var body struct {
				Data any `json:"data"`
			}
			_ = json.Unmarshal(line, &body)
			return "", &ConnectError{Client: client, Message: de.Message, Data: body.Data}
		}
		return "", fmt.Errorf("connect %s to %s: %w", client, url, err)
	}
	var body struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(line, &body); err != nil || body.ID == "" {
		return "", fmt.Errorf("connect %s: reply without id: %s", client, line)
	}
	return body.ID, nil
}

// Emit sends event with args from client; it returns once the client
// accepted the packet (socket.io buffers it while disconnected).
func (n *NodeClients) Emit(client, event string, args ...any) error {
	if args == nil {
		args = []any{}
	}
	if _, err := n.command(map[string]any{"cmd": "emit", "client": client, "event": event, "args": args}); err != nil {
		return fmt.Errorf("emit %s from %s: %w", event, client, err)
	}
	return nil
}

// EmitWithAck sends event with an acknowledgement callback and returns the
// arguments the server acknowledged with. The ack must arrive before ctx
// ends (at most commandTimeout without a deadline).
func (n *NodeClients) EmitWithAck(ctx context.Context, client, event string, args ...any) ([]any, error) {
	if args == nil {
		args = []any{}
	}
	wait := commandTimeout
	if dl, ok := ctx.Deadline(); ok {
		wait = time.Until(dl)
	}
	if wait <= 0 {
		return nil, fmt.Errorf("emit %s from %s: %w", event, client, context.DeadlineExceeded)
	}
	line, err := n.proc.call(ctx, map[string]any{
		"cmd": "emit", "client": client, "event": event, "args": args, "ack": wait.Milliseconds(),
	})
	if err != nil {
		return nil, fmt.Errorf("emit %s from %s: %w", event, client, err)
	}
	var body struct {
		Ack []any `json:"ack"`
	}
	if err := json.Unmarshal(line, &body); err != nil {
		return nil, fmt.Errorf("emit %s from %s: bad ack reply: %w", event, client, err)
	}
	return body.Ack, nil
}

// Disconnect closes client cleanly: the server gets a socket.io DISCONNECT
// ("client namespace disconnect"). It returns after the client's own
// disconnect event. The name can be connected again afterwards.
func (n *NodeClients) Disconnect(client string) error {
	if _, err := n.command(map[string]any{"cmd": "disconnect", "client": client}); err != nil {
		return fmt.Errorf("disconnect %s: %w", client, err)
	}
	return nil
}

// Drop cuts every TCP connection of client at once, with no DISCONNECT
// packet and no reconnection: the server notices only through the
// transport closing (or a ping timeout). It returns after the client's own
// disconnect event. The name can be connected again afterwards.
func (n *NodeClients) Drop(client string) error {
	if _, err := n.command(map[string]any{"cmd": "drop", "client": client}); err != nil {
		return fmt.Errorf("drop %s: %w", client, err)
	}
	return nil
}

// CutTransport is Drop without giving up: a client whose opts enabled
// reconnection will reconnect by itself (as a new socket id) afterwards.
func (n *NodeClients) CutTransport(client string) error {
	if _, err := n.command(map[string]any{"cmd": "drop", "client": client, "reconnect": true}); err != nil {
		return fmt.Errorf("cut transport of %s: %w", client, err)
	}
	return nil
}

// ID returns the socket id of client's latest connection, or "".
func (n *NodeClients) ID(client string) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	l := n.log(client)
	if len(l.ids) == 0 {
		return ""
	}
	return l.ids[len(l.ids)-1]
}

// Events returns everything client received so far, in order, whether or
// not Next or WaitEvent took it already.
func (n *NodeClients) Events(client string) []Event {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]Event(nil), n.log(client).events...)
}

// EventNames is Events reduced to names, for asserting exact sequences.
func (n *NodeClients) EventNames(client string) []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	evs := n.log(client).events
	names := make([]string, len(evs))
	for i, e := range evs {
		names[i] = e.Name
	}
	return names
}

// Next takes the oldest event of client that was not taken yet, waiting
// for one until ctx ends.
func (n *NodeClients) Next(ctx context.Context, client string) (Event, error) {
	return n.take(ctx, client, func(Event) bool { return true }, "any event")
}

// WaitEvent takes the oldest not-yet-taken event of client named event for
// which match (nil matches all) returns true, waiting until ctx ends. Events
// it passes over stay in the mailbox for later calls. event may be a
// lifecycle name (EventConnect, EventDisconnect, EventConnectError).
func (n *NodeClients) WaitEvent(ctx context.Context, client, event string, match func(args []any) bool) ([]any, error) {
	ev, err := n.take(ctx, client, func(e Event) bool {
		return e.Name == event && (match == nil || match(e.Args))
	}, fmt.Sprintf("event %q", event))
	if err != nil {
		return nil, err
	}
	return ev.Args, nil
}

// Take is WaitEvent for callers that want the whole Event.
func (n *NodeClients) Take(ctx context.Context, client string, match func(Event) bool) (Event, error) {
	return n.take(ctx, client, match, "a matching event")
}

func (n *NodeClients) take(ctx context.Context, client string, match func(Event) bool, what string) (Event, error) {
	for {
		n.mu.Lock()
		changed := n.changed
		n.mu.Unlock()
		// Looking after reading changed means no event can slip between
		// the look and the wait.
		if e, ok := n.takeNow(client, match); ok {
			return e, nil
		}
		select {
		case <-changed:
		case <-n.proc.done:
			// The last events may have arrived just before the exit.
			if e, ok := n.takeNow(client, match); ok {
				return e, nil
			}
			return Event{}, fmt.Errorf("client %s waiting for %s: %w", client, what, n.proc.exitError())
		case <-ctx.Done():
			return Event{}, fmt.Errorf("client %s waiting for %s (received so far: %s): %w",
				client, what, strings.Join(n.EventNames(client), ", "), ctx.Err())
		}
	}
}

func (n *NodeClients) takeNow(client string, match func(Event) bool) (Event, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	l := n.log(client)
	for i, e := range l.events {
		if !l.taken[i] && match(e) {
			l.taken[i] = true
			return e, true
		}
	}
	return Event{}, false
}
