package signaling

import (
	"sync"
	"time"

	"github.com/zishang520/socket.io/parsers/socket/v3/parser"
	"github.com/zishang520/socket.io/v3/pkg/types"
)

// duplicateConnectWindow is how soon after a CONNECT a second CONNECT for
// the same namespace, with no DISCONNECT between, counts as a duplicate.
const duplicateConnectWindow = 2 * time.Second

// dedupParser wraps the standard socket.io parser so that a client which
// sends CONNECT twice for one namespace in quick succession keeps its
// connection. The Go socket.io client (v3.0.6) does that when its engine
// opens while Connect is still running; the server library answers a
// CONNECT for a namespace already connected by closing the whole transport
// ("invalid state"). A deliberate reconnect of the namespace is preceded by
// a DISCONNECT, or comes later than the window, and passes unchanged.
type dedupParser struct {
	inner parser.Parser
}

func newDedupParser() parser.Parser { return dedupParser{inner: parser.NewParser()} }

func (p dedupParser) NewEncoder() parser.Encoder { return p.inner.NewEncoder() }

func (p dedupParser) NewDecoder() parser.Decoder {
	d := &dedupDecoder{
		EventEmitter: types.NewEventEmitter(),
		inner:        p.inner.NewDecoder(),
		connected:    make(map[string]time.Time),
	}
	_ = d.inner.On("decoded", d.decoded)
	return d
}

// dedupDecoder is one connection's decoder.
type dedupDecoder struct {
	types.EventEmitter
	inner parser.Decoder

	mu        sync.Mutex
	connected map[string]time.Time // namespace -> time of its last CONNECT
}

func (d *dedupDecoder) Add(data any) error { return d.inner.Add(data) }

func (d *dedupDecoder) Destroy() { d.inner.Destroy() }

func (d *dedupDecoder) decoded(args ...any) {
	if pkt, ok := firstPacket(args); ok && d.duplicate(pkt) {
		return
	}
	d.Emit("decoded", args...)
}

func (d *dedupDecoder) duplicate(pkt *parser.Packet) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch pkt.Type {
	case parser.CONNECT:
		now := time.Now()
		if last, ok := d.connected[pkt.Nsp]; ok && now.Sub(last) < duplicateConnectWindow {
			return true
		}
		d.connected[pkt.Nsp] = now
	case parser.DISCONNECT:
		delete(d.connected, pkt.Nsp)
	}
	return false
}

func firstPacket(args []any) (*parser.Packet, bool) {
	if len(args) == 0 {
		return nil, false
	}
	p, ok := args[0].(*parser.Packet)
	return p, ok && p != nil
}
