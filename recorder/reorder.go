package recorder

import (
	"time"

	"github.com/pion/rtp"
)

// inPacket is one RTP packet copied out of forwarding for the recording's
// goroutine.
type inPacket struct {
	track   *Track
	hdr     rtp.Header
	payload []byte
	arrival time.Time
	ext     uint64 // unwrapped sequence number, set by the reorder buffer
}

// reorderBuffer puts one track's packets back in sequence order. It waits
// for a missing packet at most maxDelay (measured from the arrival of the
// first packet queued behind the hole) and at most as long as its window of
// packets holds; then it declares the missing packets lost and moves on.
// Late packets (behind what was already released) are dropped.
type reorderBuffer struct {
	slots    []*inPacket
	mask     uint64
	maxDelay time.Duration

	started bool
	// holding delays the first release by maxDelay, so that packets
	// reordered before the first one to arrive are not dropped as late.
	holding   bool
	holdUntil time.Time
	next      uint64 // next sequence number to release
	highest   uint64 // highest sequence number seen
	count     int    // packets buffered

	late  uint64 // packets dropped because they came after their turn
	carry int    // lost packets to report with the next released packet
}

// emitFunc receives packets in order; lost is the number of packets
// declared missing just before p.
type emitFunc func(p *inPacket, lost int)

func newReorderBuffer(window int, maxDelay time.Duration) *reorderBuffer {
	n := 2
	for n < window {
		n <<= 1
	}
	return &reorderBuffer{slots: make([]*inPacket, n), mask: uint64(n - 1), maxDelay: maxDelay}
}

// push adds a packet and releases whatever is now in order.
func (b *reorderBuffer) push(p *inPacket, emit emitFunc) {
	seq := p.hdr.SequenceNumber
	if !b.started {
		// Start high so that packets reordered before the first one
		// still unwrap to positive numbers.
		b.started, b.next, b.highest = true, 1<<32+uint64(seq), 1<<32+uint64(seq)
		b.holding, b.holdUntil = true, p.arrival.Add(b.maxDelay)
	}
	ext := uint64(int64(b.highest) + int64(int16(seq-uint16(b.highest))))
	window := uint64(len(b.slots))
	if b.holding && !p.arrival.Before(b.holdUntil) {
		b.holding = false
	}
	switch {
	case b.holding && ext < b.next && b.highest-ext < window:
		b.next = ext // reordered before the first packet: still in time
	case ext < b.next && b.next-ext > window:
		// Far behind: the sender restarted its sequence. Release what is
		// buffered and start over from this packet.
		b.flush(emit)
		b.next, b.highest = ext, ext
	case ext < b.next:
		b.late++
		return
	}
	for ext-b.next >= window {
		b.holding = false
		if b.count == 0 {
			// A jump forward over more than the window: everything in
			// between is lost.
			b.carry += int(ext - b.next)
			b.next = ext
			break
		}
		// No room: the oldest hole has waited as long as the window
		// allows.
		b.skip(emit)
	}
	if ext > b.highest {
		b.highest = ext
	}
	slot := &b.slots[ext&b.mask]
	if *slot != nil {
		b.late++ // duplicate
		return
	}
	p.ext = ext
	*slot = p
	b.count++
	b.release(emit)
}

// release emits the packets that are in order.
func (b *reorderBuffer) release(emit emitFunc) {
	for b.count > 0 && !b.holding {
		slot := &b.slots[b.next&b.mask]
		p := *slot
		if p == nil {
			return
		}
		*slot = nil
		b.count--
		b.next++
		lost := b.carry
		b.carry = 0
		emit(p, lost)
	}
}

// skip declares the packets before the first buffered one lost, then
// releases what follows in order.
func (b *reorderBuffer) skip(emit emitFunc) {
	if b.count == 0 {
		return
	}
	lost := b.carry
	b.carry = 0
	for b.slots[b.next&b.mask] == nil {
		b.next++
		lost++
	}
	slot := &b.slots[b.next&b.mask]
	p := *slot
	*slot = nil
	b.count--
	b.next++
	emit(p, lost)
	b.release(emit)
}

// expire gives up on holes whose wait has exceeded maxDelay by now.
func (b *reorderBuffer) expire(now time.Time, emit emitFunc) {
	if b.holding && !now.Before(b.holdUntil) {
		b.holding = false
		b.release(emit)
	}
	for b.count > 0 {
		oldest := b.oldestWaiting()
		if oldest == nil || now.Sub(oldest.arrival) < b.maxDelay {
			return
		}
		b.skip(emit)
	}
}

// oldestWaiting returns the first buffered packet, the one waiting behind
// the hole at next.
func (b *reorderBuffer) oldestWaiting() *inPacket {
	for s := b.next; s <= b.highest; s++ {
		if p := b.slots[s&b.mask]; p != nil {
			return p
		}
	}
	return nil
}

// flush releases everything buffered, declaring holes lost.
func (b *reorderBuffer) flush(emit emitFunc) {
	b.holding = false
	for b.count > 0 {
		b.skip(emit)
	}
}
