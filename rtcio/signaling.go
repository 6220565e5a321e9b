package rtcio

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zishang520/socket.io/clients/engine/v3/transports"
	sio "github.com/zishang520/socket.io/clients/socket/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"
)

// Signaling is the socket.io hop a Socket needs: its own id, emitting an
// event to the server, and receiving every server event. Subscribe must also
// deliver the pseudo-event "connect" on every successful (re)connect, which is
// how the Socket learns about reconnects. Dial provides one over socket.io;
// the gateway can attach a Socket to its own server without a network hop.
type Signaling interface {
	ID() string
	Emit(event string, args ...any) error
	Subscribe(handler func(event string, args []any)) (unsubscribe func())
}

// subscribers is a small fan-out list shared by Signaling implementations.
type subscribers struct {
	mu   sync.Mutex
	next int
	m    map[int]func(string, []any)
}

func (s *subscribers) add(h func(string, []any)) func() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = make(map[int]func(string, []any))
	}
	id := s.next
	s.next++
	s.m[id] = h
	return func() {
		s.mu.Lock()
		delete(s.m, id)
		s.mu.Unlock()
	}
}

func (s *subscribers) emit(ev string, args []any) {
	s.mu.Lock()
	hs := make([]func(string, []any), 0, len(s.m))
	for _, h := range s.m {
		hs = append(hs, h)
	}
	s.mu.Unlock()
	for _, h := range hs {
		h(ev, args)
	}
}

// sioSignaling implements Signaling over the zishang520 socket.io client.
type sioSignaling struct {
	c       *sio.Socket
	subs    subscribers
	changed chan struct{} // connect or disconnect happened (cap 1)
	// opened carries the generation of an attempt whose manager opened;
	// attempt counts the attempts. Both are the supervisor's (see start).
	opened  chan uint64
	attempt uint64
	stop    context.CancelFunc
	done    chan struct{} // supervise returned
	// gaveUp: the server refused the handshake or disconnected us; as in
	// socket.io, no reconnection follows.
	gaveUp atomic.Bool
}

func (s *sioSignaling) ID() string { return s.c.Id() }

func (s *sioSignaling) Emit(event string, args ...any) error {
	if err := s.c.Emit(event, args...); err != nil {
		return fmt.Errorf("rtcio: socket.io emit %q: %w", event, err)
	}
	return nil
}

func (s *sioSignaling) Subscribe(h func(string, []any)) func() { return s.subs.add(h) }

func (s *sioSignaling) close() {
	s.stop()
	<-s.done
	s.c.Disconnect()
}

func (s *sioSignaling) poke() {
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

// connectAttempt bounds one connect attempt of the socket.io client;
// reconnectDelay is the pause before the first attempt after a disconnect.
const (
	connectAttempt = 2 * time.Second
	reconnectDelay = 200 * time.Millisecond
)

// The Go socket.io client (v3.0.6) has three races in connecting, so its own
// timeout and reconnection are not used:
//   - Manager.Open starts the engine before it listens for the engine's
//     "open", so an attempt now and then never completes; only a new
//     attempt helps;
//   - Manager.Open arms the attempt's timeout before it registers the
//     timer's cancellation, so when "open" comes in between, the timer
//     survives the connect and, one timeout later, closes the healthy
//     connection (the server sees "transport close", the client comes back
//     under a new id, out of its rooms); seen in about one test run in ten
//     under -race;
//   - Socket.Connect on a closed manager sends CONNECT twice when the engine
//     opens fast (from the manager's "open" event and from its own
//     ready-state check), and a socket.io server then makes two server
//     sockets for the one client.
//
// So the client's timeout is set beyond reach and its reconnection is off;
// start opens the manager first and the socket is connected only once it is
// open (one CONNECT), and supervise starts a fresh attempt (Disconnect,
// which resets the manager, then start) whenever the client has had no
// connection for connectAttempt, or reconnectDelay after a disconnect,
// unless the server gave up on us.

// start opens the manager; the supervisor connects the socket once it is
// open. The connect is not made in Open's callback: that runs on the
// engine's goroutine, and when an attempt is slow the supervisor may have
// started the next one, whose Manager.Open then builds its engine socket
// from the same options as the callback's Connect (a data race inside the
// client, seen under -race on a loaded machine). So every Open, Connect and
// Disconnect happens on the supervisor's goroutine, and the open of a
// superseded attempt is ignored.
func (s *sioSignaling) start() {
	s.attempt++
	gen := s.attempt
	s.c.Io().Open(func(err error) {
		if err != nil {
			return
		}
		for {
			select {
			case s.opened <- gen:
				return
			default: // an older attempt's open is waiting: replace it
				select {
				case <-s.opened:
				default:
				}
			}
		}
	})
}

// supervise makes every attempt, the first one included, on its own
// goroutine: Manager.Open is not safe to run twice at once, and a first
// attempt slower than connectAttempt (a loaded machine) would otherwise
// overlap the supervisor's retry.
func (s *sioSignaling) supervise(ctx context.Context) {
	defer close(s.done)
	s.start()
	t := time.NewTimer(connectAttempt)
	defer t.Stop()
	for {
		next := connectAttempt
		select {
		case <-ctx.Done():
			return
		case gen := <-s.opened:
			if gen == s.attempt && !s.c.Connected() {
				s.c.Connect()
			}
		case <-s.changed:
			if !s.c.Connected() {
				next = reconnectDelay
			}
		case <-t.C:
			if !s.c.Connected() && !s.gaveUp.Load() {
				s.c.Disconnect()
				s.start()
			}
		}
		t.Reset(next)
	}
}

// DialSignaling connects a socket.io client to url (http:// or https://, the
// default namespace and path) and waits for the first connect. It keeps
// reconnecting afterwards; close it with the returned function.
func DialSignaling(ctx context.Context, url string, auth map[string]any) (Signaling, func(), error) {
	o := sio.DefaultOptions()
	o.SetForceNew(true)
	o.SetMultiplex(false)
	// Attempts and reconnection are supervise's (see there).
	o.SetReconnection(false)
	o.SetTimeout(time.Duration(math.MaxInt64))
	o.SetAutoConnect(false)
	// WebSocket only: every socket.io server offers it, and the client's
	// polling start can stall for good after a missed open (4 in 300
	// connects under -race here), while a missed WebSocket open always
	// recovered on retry. The default would also probe WebTransport (QUIC),
	// which rtc.io servers do not offer and whose dial goroutines can outlive
	// the socket.
	o.SetTransports(types.NewSet[transports.TransportCtor](transports.WebSocket))
	if auth != nil {
		o.SetAuth(auth)
	}
	c, err := sio.Connect(url, o)
	if err != nil {
		return nil, nil, fmt.Errorf("rtcio: socket.io client for %s: %w", url, err)
	}
	s := &sioSignaling{c: c, changed: make(chan struct{}, 1), opened: make(chan uint64, 1), done: make(chan struct{})}
	first := make(chan error, 1)
	report := func(err error) {
		select {
		case first <- err:
		default:
		}
	}
	_ = c.On("connect", func(...any) {
		s.poke()
		report(nil)
		s.subs.emit("connect", nil)
	})
	_ = c.On("disconnect", func(args ...any) {
		if reason, _ := firstArg(args).(string); reason == "io server disconnect" {
			s.gaveUp.Store(true)
		}
		s.poke()
		s.subs.emit("disconnect", args)
	})
	_ = c.On("connect_error", func(args ...any) {
		if !c.Active() {
			// The server refused the handshake (middleware error): no
			// reconnection will follow, so the dial has failed.
			s.gaveUp.Store(true)
			report(fmt.Errorf("rtcio: connect to %s refused: %v", url, args))
		}
	})
	c.OnAny(func(args ...any) {
		if len(args) == 0 {
			return
		}
		name, ok := args[0].(string)
		if !ok {
			return
		}
		s.subs.emit(name, args[1:])
	})
	superCtx, stop := context.WithCancel(context.Background())
	s.stop = stop
	go s.supervise(superCtx)
	select {
	case err := <-first:
		if err != nil {
			s.close()
			return nil, nil, err
		}
	case <-ctx.Done():
		s.close()
		return nil, nil, fmt.Errorf("rtcio: connect to %s: %w", url, ctx.Err())
	}
	return s, s.close, nil
}

func firstArg(args []any) any {
	if len(args) == 0 {
		return nil
	}
	return args[0]
}

// Dial connects to an rtc.io signaling server and returns a Socket on it.
// Close the Socket to disconnect.
func Dial(ctx context.Context, url string, opts Options) (*Socket, error) {
	sig, closeSig, err := DialSignaling(ctx, url, opts.Auth)
	if err != nil {
		return nil, err
	}
	s, err := New(sig, opts)
	if err != nil {
		closeSig()
		return nil, err
	}
	s.closeSig = closeSig
	return s, nil
}

var errClosed = errors.New("rtcio: socket closed")
