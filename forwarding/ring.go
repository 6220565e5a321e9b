package forwarding

import "sync/atomic"

// ring is a bounded single-producer single-consumer queue of packets. The
// producer is the publication's ingest path (serialised by the publication),
// the consumer is one down-track's or sink's writer goroutine. Neither side
// ever waits for the other: a full ring rejects the packet.
type ring struct {
	slots []*packet
	mask  uint64
	head  atomic.Uint64 // next slot to read; written by the consumer only
	tail  atomic.Uint64 // next slot to write; written by the producer only
	// notify tells the consumer "there may be work"; it must not block.
	notify func()
}

func newRing(size int, notify func()) *ring {
	n := ceilPow2(size)
	return &ring{slots: make([]*packet, n), mask: uint64(n - 1), notify: notify}
}

// push enqueues p and wakes the consumer. It reports false, leaving p
// untouched, when the ring is full.
func (r *ring) push(p *packet) bool {
	t := r.tail.Load()
	if t-r.head.Load() > r.mask {
		return false
	}
	r.slots[t&r.mask] = p
	r.tail.Store(t + 1)
	r.notify()
	return true
}

// pop dequeues the oldest packet, or returns nil when the ring is empty.
func (r *ring) pop() *packet {
	h := r.head.Load()
	if h == r.tail.Load() {
		return nil
	}
	p := r.slots[h&r.mask]
	r.slots[h&r.mask] = nil
	r.head.Store(h + 1)
	return p
}

// drain releases every queued packet. Only the consumer may call it, once the
// producer can no longer push.
func (r *ring) drain() {
	for p := r.pop(); p != nil; p = r.pop() {
		p.release()
	}
}
