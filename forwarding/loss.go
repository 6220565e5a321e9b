package forwarding

import "time"

// lossTracker remembers upstream sequence gaps of the current epoch so they
// can be NACKed to the publisher, a bounded number of times and only while a
// retransmission could still be useful. It is guarded by the publication's
// ingest lock.
type lossTracker struct {
	maxMissing int
	maxRetries int
	maxAge     time.Duration
	interval   time.Duration

	missing []missingPacket // ascending by ext
}

type missingPacket struct {
	ext       uint64
	firstSeen int64
	lastSent  int64
	retries   int
}

func newLossTracker(maxMissing, maxRetries int, maxAge, interval time.Duration) *lossTracker {
	return &lossTracker{
		maxMissing: maxMissing,
		maxRetries: maxRetries,
		maxAge:     maxAge,
		interval:   interval,
		missing:    make([]missingPacket, 0, maxMissing),
	}
}

// gap records that the packets in [from, to) did not arrive. It returns how
// many were recorded; a gap wider than the tracker is treated as a
// discontinuity and only its newest part is tracked.
func (l *lossTracker) gap(from, to uint64, now int64) int {
	if to-from > uint64(l.maxMissing) {
		from = to - uint64(l.maxMissing)
	}
	n := 0
	for ext := from; ext < to; ext++ {
		if len(l.missing) == l.maxMissing {
			// Oldest entries are the least likely to be recovered in time.
			copy(l.missing, l.missing[1:])
			l.missing = l.missing[:len(l.missing)-1]
		}
		l.missing = append(l.missing, missingPacket{ext: ext, firstSeen: now})
		n++
	}
	return n
}

// arrived removes ext from the missing set, reporting whether it was missing.
func (l *lossTracker) arrived(ext uint64) bool {
	for i := range l.missing {
		if l.missing[i].ext == ext {
			l.missing = append(l.missing[:i], l.missing[i+1:]...)
			return true
		}
		if l.missing[i].ext > ext {
			return false
		}
	}
	return false
}

func (l *lossTracker) reset() { l.missing = l.missing[:0] }

func (l *lossTracker) pending() bool { return len(l.missing) > 0 }

// due appends to dst the sequence numbers to NACK now, counts their retry, and
// drops entries that are too old or have been asked for too often. It returns
// dst and the number of entries given up.
func (l *lossTracker) due(dst []uint16, now int64) ([]uint16, int) {
	gaveUp := 0
	kept := l.missing[:0]
	for _, m := range l.missing {
		if m.retries >= l.maxRetries || time.Duration(now-m.firstSeen) > l.maxAge {
			gaveUp++
			continue
		}
		if m.retries == 0 || time.Duration(now-m.lastSent) >= l.interval {
			dst = append(dst, uint16(m.ext))
			m.retries++
			m.lastSent = now
		}
		kept = append(kept, m)
	}
	l.missing = kept
	return dst, gaveUp
}
