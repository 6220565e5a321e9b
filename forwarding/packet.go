package forwarding

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/pion/rtp"
)

// maxPacketSize is the largest RTP packet a publication accepts. WebRTC keeps
// packets below the path MTU, so 1500 bytes leaves room for any UDP payload
// pion hands us with its default receive MTU.
const maxPacketSize = 1500

// Errors returned by the ingest path.
var (
	ErrClosed         = errors.New("forwarding: closed")
	ErrPacketTooLarge = errors.New("forwarding: RTP packet too large")
	ErrMalformed      = errors.New("forwarding: malformed RTP packet")
)

// packet is one upstream RTP packet in a pooled, reference-counted buffer.
// Once published (refs set to 1) its fields are immutable until the last
// reference is released and it goes back to the pool; every consumer (history,
// keyframe cache, each down-track and sink queue) holds one reference.
type packet struct {
	refs atomic.Int32
	pool *sync.Pool

	hdr     rtp.Header
	payload []byte // payload without padding, inside buf
	size    int    // bytes on the wire

	ext      uint64 // extended sequence number within the epoch
	epoch    uint32 // source generation, bumped on every discontinuity
	arrival  int64  // nanoseconds on the publication's monotonic clock
	keyframe bool

	buf [maxPacketSize]byte
}

// newPacketPool returns a pool of packets. Each publication has its own, so
// packets never cross publications and there is no package-level state.
func newPacketPool() *sync.Pool {
	p := &sync.Pool{}
	p.New = func() any { return &packet{pool: p} }
	return p
}

func getPacket(pool *sync.Pool) *packet {
	pk, ok := pool.Get().(*packet)
	if !ok {
		pk = &packet{pool: pool}
	}
	return pk
}

// publish makes the packet visible to other goroutines with one reference
// owned by the caller. Fields must not change after this.
func (p *packet) publish() { p.refs.Store(1) }

func (p *packet) retain(n int32) { p.refs.Add(n) }

// tryRetain takes a reference only if the packet is still live. A packet seen
// through a racy pointer (the history) may already be back in the pool, where
// refs is 0; the CAS refuses those.
func (p *packet) tryRetain() bool {
	for {
		r := p.refs.Load()
		if r <= 0 {
			return false
		}
		if p.refs.CompareAndSwap(r, r+1) {
			return true
		}
	}
}

func (p *packet) release() {
	if p.refs.Add(-1) == 0 {
		p.pool.Put(p)
	}
}

// parse fills hdr and payload from the first n bytes of buf. It reuses the
// header's CSRC and extension slices, so a recycled packet parses without
// allocating.
func (p *packet) parse(n int) error {
	b := p.buf[:n]
	hl, err := p.hdr.Unmarshal(b)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if p.hdr.Version != 2 {
		return fmt.Errorf("%w: version %d", ErrMalformed, p.hdr.Version)
	}
	end := n
	p.hdr.PaddingSize = 0
	if p.hdr.Padding {
		if end <= hl {
			return fmt.Errorf("%w: padding flag without padding", ErrMalformed)
		}
		pad := int(b[end-1])
		if pad == 0 || end-pad < hl {
			return fmt.Errorf("%w: padding length %d", ErrMalformed, pad)
		}
		p.hdr.PaddingSize = b[end-1]
		end -= pad
	}
	p.payload = b[hl:end]
	p.size = n
	return nil
}

// history keeps the most recent upstream packets of a publication, indexed by
// extended sequence number, to answer subscriber NACKs. Only the ingest path
// (serialised by the publication) stores; down-tracks look up concurrently
// without a lock, relying on packet reference counts.
type history struct {
	slots []atomic.Pointer[packet]
	mask  uint64
}

func newHistory(size int) *history {
	n := ceilPow2(size)
	return &history{slots: make([]atomic.Pointer[packet], n), mask: uint64(n - 1)}
}

// put stores p (taking a reference) and releases the packet it evicts.
func (h *history) put(p *packet) {
	p.retain(1)
	if old := h.slots[p.ext&h.mask].Swap(p); old != nil {
		old.release()
	}
}

// peek returns the packet in ext's slot without taking a reference. Only the
// ingest path may call it, since only it could evict that packet.
func (h *history) peek(ext uint64) *packet { return h.slots[ext&h.mask].Load() }

// get returns the packet with the given epoch and extended sequence number,
// with a reference the caller must release, or nil when it is gone.
func (h *history) get(epoch uint32, ext uint64) *packet {
	p := h.slots[ext&h.mask].Load()
	if p == nil || !p.tryRetain() {
		return nil
	}
	// Between Load and tryRetain the packet may have been recycled into a
	// different packet; its fields are stable now that we hold a reference,
	// so checking them is race-free.
	if p.epoch != epoch || p.ext != ext {
		p.release()
		return nil
	}
	return p
}

// clear releases every stored packet.
func (h *history) clear() {
	for i := range h.slots {
		if old := h.slots[i].Swap(nil); old != nil {
			old.release()
		}
	}
}

func ceilPow2(n int) int {
	if n < 2 {
		return 2
	}
	p := 1
	for p < n {
		p <<= 1
	}
	return p
}
