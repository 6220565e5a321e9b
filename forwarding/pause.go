package forwarding

import "time"

// A down-track's video can be paused for a subscriber whose link cannot
// take it, and given a budget for retransmissions. Both are set by the
// room's control loop and read by the down-track's writer: the pause
// takes effect at the next frame boundary, and a resumed video starts
// again at a keyframe, right after the last packet the subscriber got, so
// it sees one continuous stream (no sequence gap to NACK, timestamps
// advanced by the time that really passed).

// resumeKeyframeRetry is how long a resumed down-track waits for its
// keyframe before it asks again (the first request may have been lost,
// and the subscriber cannot ask: it does not know it is missing a frame).
const resumeKeyframeRetry = time.Second

// pauseState is the writer's side of a pause. Owned by the writer goroutine.
type pauseState struct {
	dropping  bool  // packets are not forwarded
	midFrame  bool  // the last packet forwarded did not end its frame
	askedAt   int64 // publication clock of the last keyframe request for a resume; -1: none yet
	rtxTokens float64
	rtxAt     int64 // publication clock of the last refill
	rtxInit   bool
}

// SetPaused pauses or resumes the down-track's video (audio is never
// paused: the call is ignored). It reports whether the state changed. A
// resumed video asks the publisher for a keyframe with its first packet
// dropped, and again each second until the keyframe comes.
func (d *DownTrack) SetPaused(paused bool) bool {
	if !d.pub.video || d.paused.Swap(paused) == paused {
		return false
	}
	wake(d.wake)
	return true
}

// Paused reports whether the down-track's video is paused.
func (d *DownTrack) Paused() bool { return d.paused.Load() }

// SetRetransmitBudget bounds the retransmissions to this subscriber to
// bytesPerSecond (a burst of a quarter second, at least one packet); 0
// lifts the bound.
func (d *DownTrack) SetRetransmitBudget(bytesPerSecond int64) {
	d.rtxBudget.Store(max(bytesPerSecond, 0))
}

// pass decides whether pk goes out, for the pause; writer only.
func (d *DownTrack) pass(pk *packet) bool {
	st := &d.pause
	if !d.pub.video {
		return true
	}
	if !st.dropping {
		if !d.paused.Load() || st.midFrame {
			st.midFrame = !pk.hdr.Marker
			return true
		}
		// Paused, at a frame boundary: stop here, and continue right after
		// this point when resumed.
		st.dropping, st.askedAt = true, -1
		d.munger.skip()
	}
	if d.paused.Load() {
		d.stats.pausedDrops.Add(1)
		return false
	}
	if !pk.keyframe {
		if now := d.pub.clock(); st.askedAt < 0 || time.Duration(now-st.askedAt) >= resumeKeyframeRetry {
			st.askedAt = now
			d.pub.RequestKeyframe()
		}
		d.stats.pausedDrops.Add(1)
		return false
	}
	st.dropping = false
	st.midFrame = !pk.hdr.Marker
	return true
}

// spendRetransmit reports whether a retransmission of size bytes fits the
// budget; writer only.
func (d *DownTrack) spendRetransmit(size int) bool {
	budget := d.rtxBudget.Load()
	if budget == 0 {
		return true
	}
	st := &d.pause
	now := d.pub.clock()
	// A quarter second's worth, but at least one full packet: a small
	// budget (a 300 kbit/s estimate's 10% is 3,750 bytes a second) would
	// otherwise never hold a 1,200-byte video packet, and nothing at all
	// would be retransmitted.
	burst := max(float64(budget)/4, maxPacketSize)
	if !st.rtxInit {
		st.rtxTokens, st.rtxInit = burst, true
	} else {
		st.rtxTokens = min(burst, st.rtxTokens+float64(budget)*time.Duration(now-st.rtxAt).Seconds())
	}
	st.rtxAt = now
	if st.rtxTokens < float64(size) {
		d.stats.rtxOverBudget.Add(1)
		return false
	}
	st.rtxTokens -= float64(size)
	return true
}
