package forwarding

import "time"

// munger rewrites one down-track's sequence numbers and timestamps so that the
// subscriber sees a single continuous stream whatever happens upstream. Within
// a source epoch the mapping is a constant offset; at an epoch change (new
// SSRC, replaced source) the next packet continues right after the last one
// sent, and its timestamp advances by the wall time that really passed. It is
// owned by the down-track's writer goroutine.
type munger struct {
	clockRate uint32

	started   bool
	epoch     uint32
	seqOffset uint64 // out ext = upstream ext + seqOffset (mod 2^64)
	tsOffset  uint32 // out ts = upstream ts + tsOffset (mod 2^32)
	startExt  uint64 // first upstream ext of this epoch we forwarded

	// gap is set while a paused down-track drops packets: the next packet
	// continues right after the last one sent, as at an epoch change.
	gap bool

	highestOut     uint64 // highest outgoing extended sequence number
	highestTS      uint32 // its outgoing timestamp
	highestArrival int64  // its upstream arrival time
}

// mungeResult is the rewritten position of one packet.
type mungeResult struct {
	ext uint64 // outgoing extended sequence number
	ts  uint32 // outgoing timestamp
}

// newMunger presets the first outgoing sequence number and timestamp; the
// caller picks random ones (RFC 3550 section 5.1).
func newMunger(clockRate uint32, firstSeq uint16, firstTS uint32) *munger {
	return &munger{
		clockRate:  clockRate,
		highestOut: 1<<32 + uint64(firstSeq) - 1,
		highestTS:  firstTS,
	}
}

// rewrite maps an upstream packet to its outgoing position. It reports false
// for packets that must not be sent: older than the start of this down-track
// or of the current epoch, or from an epoch already left behind.
func (m *munger) rewrite(p *packet) (mungeResult, bool) {
	switch {
	case !m.started:
		// The first packet keeps the preset first sequence number and
		// timestamp.
		m.started = true
		m.epoch = p.epoch
		m.startExt = p.ext
		m.seqOffset = m.highestOut + 1 - p.ext
		m.tsOffset = m.highestTS - p.hdr.Timestamp
	case p.epoch != m.epoch || m.gap:
		if int32(p.epoch-m.epoch) < 0 {
			return mungeResult{}, false
		}
		// Continue right after the last packet sent, with the real gap.
		m.gap = false
		m.epoch = p.epoch
		m.startExt = p.ext
		m.seqOffset = m.highestOut + 1 - p.ext
		ticks := durationToTicks(time.Duration(p.arrival-m.highestArrival), m.clockRate)
		if ticks == 0 {
			ticks = 1 // never repeat a timestamp for a different frame
		}
		m.tsOffset = m.highestTS + ticks - p.hdr.Timestamp
	case p.ext < m.startExt:
		return mungeResult{}, false
	}
	r := mungeResult{ext: p.ext + m.seqOffset, ts: p.hdr.Timestamp + m.tsOffset}
	if r.ext > m.highestOut {
		m.highestOut = r.ext
		m.highestTS = r.ts
		m.highestArrival = p.arrival
	}
	return r, true
}

// skip marks that packets are about to be left out (a paused video): the
// packet after them continues the outgoing sequence without a gap.
func (m *munger) skip() {
	if m.started {
		m.gap = true
	}
}

// durationToTicks converts a wall-clock duration to RTP clock ticks without
// overflowing for long gaps. Negative durations count as zero.
func durationToTicks(d time.Duration, clockRate uint32) uint32 {
	if d <= 0 {
		return 0
	}
	sec := uint64(d / time.Second)
	rem := uint64(d % time.Second)
	return uint32(sec*uint64(clockRate) + rem*uint64(clockRate)/uint64(time.Second))
}

// sentEntry remembers where one outgoing packet came from, so a subscriber's
// NACK for an outgoing sequence number can be answered from the publication's
// history.
type sentEntry struct {
	outExt   uint64
	upExt    uint64
	epoch    uint32
	ts       uint32
	lastRtx  int64 // publication clock of the last retransmission, 0 if none
	rtxCount uint8
	valid    bool
}

// sequencer maps recent outgoing sequence numbers back to upstream ones. It is
// owned by the down-track's writer goroutine.
type sequencer struct {
	entries []sentEntry
	mask    uint64
}

func newSequencer(size int) *sequencer {
	n := ceilPow2(size)
	return &sequencer{entries: make([]sentEntry, n), mask: uint64(n - 1)}
}

func (s *sequencer) record(outExt, upExt uint64, epoch, ts uint32) {
	e := &s.entries[outExt&s.mask]
	*e = sentEntry{outExt: outExt, upExt: upExt, epoch: epoch, ts: ts, valid: true}
}

// lookup finds the entry for a 16-bit outgoing sequence number, interpreted as
// the most recent one at or before highest.
func (s *sequencer) lookup(seq uint16, highest uint64) *sentEntry {
	back := uint64(uint16(highest) - seq)
	if back > highest || back > s.mask {
		return nil
	}
	ext := highest - back
	e := &s.entries[ext&s.mask]
	if !e.valid || e.outExt != ext {
		return nil
	}
	return e
}
