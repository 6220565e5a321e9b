package signaling

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/zishang520/socket.io/parsers/engine/v3/packet"
	"github.com/zishang520/socket.io/servers/socket/v3"
)

// outQueue watches what waits to be written to one socket. The server
// library queues every packet for a socket without a bound until the
// transport can take it, so a client that sends but never reads (its TCP
// window full, or a long-poll that never polls) would make the process hold
// everything ever addressed to it: each refusal it provokes queues a
// gateway-error reply. The queue length is the packets created minus the
// packets handed to the transport, both of which the library reports as
// events on the Engine.IO socket.
type outQueue struct {
	max   int64
	stall time.Duration

	queued    atomic.Int64
	lastFlush atomic.Int64 // unix nanoseconds
	closing   sync.Once
}

func newOutQueue(max int, stall time.Duration) *outQueue {
	q := &outQueue{max: int64(max), stall: stall}
	q.lastFlush.Store(time.Now().UnixNano())
	return q
}

// watch hooks the queue to sock's Engine.IO socket; overflow runs (once,
// on its own goroutine) when the queue overflows or stays half full for
// longer than the stall bound.
func (q *outQueue) watch(sock *socket.Socket, overflow func(why string)) {
	eng := sock.Conn()
	if eng == nil || q.max <= 0 {
		return
	}
	_ = eng.On("packetCreate", func(...any) {
		n := q.queued.Add(1)
		if why := q.verdict(n, time.Now()); why != "" {
			q.closing.Do(func() { go overflow(why) })
		}
	})
	_ = eng.On("flush", func(args ...any) {
		if len(args) == 0 {
			return
		}
		if wbuf, ok := args[0].([]*packet.Packet); ok {
			q.queued.Add(-int64(len(wbuf)))
			q.lastFlush.Store(time.Now().UnixNano())
		}
	})
}

// verdict says why a socket with n queued packets must go, or "".
func (q *outQueue) verdict(n int64, now time.Time) string {
	switch {
	case n > q.max:
		return "outbound queue overflow"
	case n >= q.max/2 && q.stall > 0 && now.Sub(time.Unix(0, q.lastFlush.Load())) > q.stall:
		return "outbound queue stalled"
	}
	return ""
}

// check applies the stall rule on the socket's own activity too: a client
// that floods but reads nothing must go even when its refusals are no
// longer queued.
func (q *outQueue) check(overflow func(why string)) {
	if q == nil || q.max <= 0 {
		return
	}
	if why := q.verdict(q.queued.Load(), time.Now()); why != "" {
		q.closing.Do(func() { go overflow(why) })
	}
}

// roomForReply reports whether an optional reply (a gateway-error) may be
// queued: only while the queue is under half its bound, so the other half
// stays for the events room mates send.
func (q *outQueue) roomForReply() bool {
	return q == nil || q.max <= 0 || q.queued.Load() < q.max/2
}
