package signaling

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"

	"github.com/google/uuid"
)

// LocalConn is a participant attached in-process, without a network hop:
// the gateway's own peer in a room. It is what a remote client is to the
// server (it joins rooms, sends and receives the same events, and leaves
// with the same notices), but only code in this process can create one, so
// its role needs no credential that could leak to a browser.
//
// LocalConn satisfies rtcio.Signaling.
type LocalConn struct {
	srv  *Server
	conn *Conn

	mu     sync.Mutex
	subs   map[int]func(event string, args []any)
	nextID int
	closed bool

	// inbox keeps delivery ordered and off the sender's stack: the server
	// emits while handling another socket's event, and a subscriber that
	// answered synchronously would re-enter the server.
	inbox  chan localEvent
	cancel context.CancelFunc
	done   chan struct{}
}

type localEvent struct {
	event string
	args  []any
}

// localInbox bounds what a stalled local participant can hold; past it,
// events are dropped and logged, like a network client's full buffer.
const localInbox = 4096

// gatewayIDPrefix starts every in-process participant's socket id.
const gatewayIDPrefix = "gw-"

// IsGatewayID reports whether id is a gateway's own participant's (made
// by AttachLocal on any node of a cluster): "gw-" and a UUID, 39
// characters, which no network client's id is (engine.io ids are 20 or 24
// characters), so a client cannot pass for a gateway peer.
func IsGatewayID(id string) bool {
	return len(id) == len(gatewayIDPrefix)+36 && strings.HasPrefix(id, gatewayIDPrefix) && uuid.Validate(id[len(gatewayIDPrefix):]) == nil
}

// AttachLocal connects an in-process participant with the given role.
func (s *Server) AttachLocal(role Role) *LocalConn {
	id := gatewayIDPrefix + uuid.NewString()
	ctx, cancel := context.WithCancel(context.Background())
	l := &LocalConn{
		srv:    s,
		subs:   make(map[int]func(string, []any)),
		inbox:  make(chan localEvent, localInbox),
		cancel: cancel,
		done:   make(chan struct{}),
	}
	l.conn = &Conn{srv: s, id: id, role: role, local: l, log: s.log.With("socket", id, "role", role.String())}
	s.mu.Lock()
	s.conns[id] = l.conn
	s.mu.Unlock()
	s.connect(id, role)
	go l.deliver(ctx)
	l.conn.log.Debug("local participant attached")
	return l
}

// ID is the participant's socket id.
func (l *LocalConn) ID() string { return l.conn.id }

// Emit sends an event to the server as a client would. Refusals come back
// as gateway-error events, as for any client.
func (l *LocalConn) Emit(event string, args ...any) error {
	l.mu.Lock()
	closed := l.closed
	l.mu.Unlock()
	if closed {
		return fmt.Errorf("local participant %s: closed", l.conn.id)
	}
	payload, err := roundTrip(args)
	if err != nil {
		return fmt.Errorf("local participant %s: emit %q: %w", l.conn.id, event, err)
	}
	l.conn.onEvent(append([]any{event}, payload...))
	return nil
}

// InviteOffer makes this participant open a connection to source, as the
// server's init-offer does at a join: a cascaded room's client moved to
// this gateway peer after its edge died has no join to trigger one. What
// the participant then sends source still passes the server's checks.
func (l *LocalConn) InviteOffer(source string) {
	l.push(EventInitOffer, []any{map[string]any{"source": source}})
}

// Subscribe registers a handler for every event the server sends to this
// participant; handlers run one event at a time, in order.
func (l *LocalConn) Subscribe(h func(event string, args []any)) (unsubscribe func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	id := l.nextID
	l.nextID++
	l.subs[id] = h
	return func() {
		l.mu.Lock()
		delete(l.subs, id)
		l.mu.Unlock()
	}
}

// Close leaves every room (members see the usual notices) and stops
// delivery. It waits for a handler that is running to return, so it must
// not be called from a handler.
func (l *LocalConn) Close() {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.closed = true
	l.mu.Unlock()
	l.srv.onDisconnecting(l.conn, "local participant closed")
	l.srv.mu.Lock()
	delete(l.srv.conns, l.conn.id)
	l.srv.mu.Unlock()
	l.cancel()
	<-l.done
}

// push queues an event the server sends to this participant.
func (l *LocalConn) push(event string, args []any) {
	payload, err := roundTrip(args)
	if err != nil {
		l.conn.log.Error("event to local participant is not JSON", "event", event, "error", err)
		return
	}
	select {
	case l.inbox <- localEvent{event: event, args: payload}:
	default:
		l.conn.log.Warn("local participant inbox full, event dropped", "event", event)
	}
}

func (l *LocalConn) deliver(ctx context.Context) {
	defer close(l.done)
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-l.inbox:
			l.mu.Lock()
			hs := make([]func(string, []any), 0, len(l.subs))
			for _, h := range l.subs {
				hs = append(hs, h)
			}
			l.mu.Unlock()
			for _, h := range hs {
				h(ev.event, ev.args)
			}
		}
	}
}

// roundTrip gives args the shape a network client would see after JSON
// (objects as map[string]any, numbers as float64), so a local participant
// and a remote one handle identical values.
func roundTrip(args []any) ([]any, error) {
	b, err := json.Marshal(args)
	if err != nil {
		return nil, err
	}
	var out []any
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, err
	}
	return out, nil
}
