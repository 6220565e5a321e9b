package rtcio

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"sync"

	"github.com/pion/webrtc/v4"
)

// Event is what a listener receives.
//
// Raw holds each argument's JSON exactly as it arrived, so a relay can
// re-emit a peer's arguments unchanged. Args holds the same arguments
// decoded (numbers as json.Number), with every stream placeholder
// "[RTCIOStream] <id>" replaced by Stream. Lifecycle events fill PeerID,
// Stream and Track and carry no Raw.
type Event struct {
	Name   string
	PeerID string
	Args   []any
	Raw    []json.RawMessage
	Stream *RemoteStream
	Track  *webrtc.TrackRemote
}

// Handler handles one event. Handlers of one Socket run one at a time, in
// event order, on the Socket's dispatch goroutine; a handler may call any
// Socket method.
type Handler func(*Event)

// ListenerID identifies a registered handler for Off.
type ListenerID uint64

// Decode unmarshals argument i into v. A *RemoteStream field or value in v
// whose JSON is the stream placeholder receives e.Stream.
func (e *Event) Decode(i int, v any) error {
	if i < 0 || i >= len(e.Raw) {
		return fmt.Errorf("rtcio: event %q has %d args, no arg %d", e.Name, len(e.Raw), i)
	}
	if err := json.Unmarshal(e.Raw[i], v); err != nil {
		return fmt.Errorf("rtcio: decode arg %d of %q: %w", i, e.Name, err)
	}
	if e.Stream != nil {
		bindRemoteStream(reflect.ValueOf(v), e.Stream, 0)
	}
	return nil
}

// DecodeArgs decodes the first len(vs) arguments into vs, in order; a nil
// entry skips that argument.
func (e *Event) DecodeArgs(vs ...any) error {
	for i, v := range vs {
		if v == nil {
			continue
		}
		if err := e.Decode(i, v); err != nil {
			return err
		}
	}
	return nil
}

// ArgsWithStream returns the raw arguments decoded again with every stream
// placeholder replaced by s. Passing the result to Socket.Emit republishes a
// received stream event with another stream and the sender's exact args.
func (e *Event) ArgsWithStream(s *Stream) []any {
	out := make([]any, len(e.Raw))
	for i, r := range e.Raw {
		v, err := decodeJSON(r)
		if err != nil {
			out[i] = r
			continue
		}
		out[i] = replacePlaceholder(v, func(string) any { return s })
	}
	return out
}

// decodeJSON decodes with json.Number so re-encoding keeps numbers exact.
func decodeJSON(b []byte) (any, error) {
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

// decodeArgs turns raw args into Event.Args; rs, when set, replaces stream
// placeholders (adopting the placeholder's id, as the JavaScript client does).
func decodeArgs(raw []json.RawMessage, rs *RemoteStream) []any {
	out := make([]any, len(raw))
	for i, r := range raw {
		v, err := decodeJSON(r)
		if err != nil {
			out[i] = r
			continue
		}
		if rs != nil {
			v = replacePlaceholder(v, func(id string) any {
				rs.adoptID(id)
				return rs
			})
		}
		out[i] = v
	}
	return out
}

// replacePlaceholder walks decoded JSON replacing placeholder strings.
func replacePlaceholder(v any, with func(id string) any) any {
	switch t := v.(type) {
	case string:
		if id, ok := parsePlaceholder(t); ok {
			return with(id)
		}
	case []any:
		for i := range t {
			t[i] = replacePlaceholder(t[i], with)
		}
	case map[string]any:
		for k := range t {
			t[k] = replacePlaceholder(t[k], with)
		}
	}
	return v
}

// bindRemoteStream points every non-nil *RemoteStream reachable from v at rs.
func bindRemoteStream(v reflect.Value, rs *RemoteStream, depth int) {
	if depth > 32 || !v.IsValid() {
		return
	}
	rsType := reflect.TypeFor[*RemoteStream]()
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return
		}
		if v.Type() == rsType {
			return
		}
		if v.Elem().Type() == rsType && !v.Elem().IsNil() && v.Elem().CanSet() {
			v.Elem().Set(reflect.ValueOf(rs))
			return
		}
		bindRemoteStream(v.Elem(), rs, depth+1)
	case reflect.Interface:
		if !v.IsNil() {
			bindRemoteStream(v.Elem(), rs, depth+1)
		}
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			f := v.Field(i)
			if !f.CanSet() {
				continue
			}
			if f.Type() == rsType {
				if !f.IsNil() {
					f.Set(reflect.ValueOf(rs))
				}
				continue
			}
			bindRemoteStream(f, rs, depth+1)
		}
	case reflect.Slice, reflect.Array:
		for i := 0; i < v.Len(); i++ {
			e := v.Index(i)
			if e.Type() == rsType && e.CanSet() {
				if !e.IsNil() {
					e.Set(reflect.ValueOf(rs))
				}
				continue
			}
			bindRemoteStream(e, rs, depth+1)
		}
	}
}

// listener is one registered handler.
type listener struct {
	id   ListenerID
	h    Handler
	once bool
}

// listeners is a name -> handlers table guarded by its own mutex.
type listeners struct {
	mu sync.Mutex
	m  map[string][]listener
}

// register adds h for name under a fresh id of s: the body of every On and
// Once in this package.
func (l *listeners) register(s *Socket, name string, h Handler, once bool) ListenerID {
	id := s.nextID()
	l.add(name, id, h, once)
	return id
}

// off removes one handler, or every handler for name when id is 0: the body
// of every Off in this package.
func (l *listeners) off(name string, id ListenerID) {
	if id == 0 {
		l.removeAll(name)
		return
	}
	l.remove(name, id)
}

func (l *listeners) add(name string, id ListenerID, h Handler, once bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil {
		l.m = make(map[string][]listener)
	}
	l.m[name] = append(l.m[name], listener{id: id, h: h, once: once})
}

func (l *listeners) remove(name string, id ListenerID) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ls := l.m[name]
	for i, x := range ls {
		if x.id == id {
			l.m[name] = append(ls[:i:i], ls[i+1:]...)
			break
		}
	}
	if len(l.m[name]) == 0 {
		delete(l.m, name)
	}
}

func (l *listeners) removeAll(name string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.m, name)
}

// take returns the handlers for name, removing once-handlers as it goes.
func (l *listeners) take(name string) []Handler {
	l.mu.Lock()
	defer l.mu.Unlock()
	ls := l.m[name]
	if len(ls) == 0 {
		return nil
	}
	hs := make([]Handler, 0, len(ls))
	kept := ls[:0:0]
	for _, x := range ls {
		hs = append(hs, x.h)
		if !x.once {
			kept = append(kept, x)
		}
	}
	if len(kept) == 0 {
		delete(l.m, name)
	} else {
		l.m[name] = kept
	}
	return hs
}

func (l *listeners) has(name string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.m[name]) > 0
}

// dispatcher runs queued callbacks one at a time on its own goroutine, so
// user handlers never run under the Socket's locks or on pion's goroutines,
// and see events in the order they were queued.
type dispatcher struct {
	log    *slog.Logger
	mu     sync.Mutex
	q      []func()
	closed bool
	wake   chan struct{}
	done   chan struct{}
}

func newDispatcher(log *slog.Logger) *dispatcher {
	d := &dispatcher{log: log, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go d.run()
	return d
}

func (d *dispatcher) post(fn func()) {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return
	}
	d.q = append(d.q, fn)
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// close stops accepting work, runs what is queued, and waits for the loop.
func (d *dispatcher) close() {
	d.mu.Lock()
	d.closed = true
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
	<-d.done
}

func (d *dispatcher) run() {
	defer close(d.done)
	for {
		d.mu.Lock()
		q := d.q
		d.q = nil
		closed := d.closed
		d.mu.Unlock()
		for _, fn := range q {
			d.safe(fn)
		}
		if len(q) > 0 {
			continue
		}
		if closed {
			return
		}
		<-d.wake
	}
}

func (d *dispatcher) safe(fn func()) {
	defer func() {
		if r := recover(); r != nil {
			d.log.Error("rtcio: event handler panicked", "panic", r)
		}
	}()
	fn()
}
