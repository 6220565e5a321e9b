package recorder

import "time"

// timeline is the single clock of a recording. Every track's RTP timestamps
// are mapped onto it through an anchor (one RTP timestamp and its time), so
// frame times follow the RTP clock exactly: losses leave gaps, never drift.
//
// The anchors live in one time domain, chosen when the first file starts:
//   - the publisher's NTP clock when a track has a sender report: a track
//     with its own report is anchored exactly where the publisher says its
//     RTP timestamps lie, which is what keeps audio and video in sync even
//     when they started at different times;
//   - otherwise the recorder's own clock, by arrival time. Tracks without a
//     report in an NTP domain use arrival time shifted by the offset between
//     the two clocks measured on a report.
type timeline struct {
	fixed     bool
	useSR     bool
	offset    int64 // domain time = local time + offset, in nanoseconds
	originSet bool
	origin    int64 // domain time of the recording's time zero
}

// ntpToNs converts a 64-bit NTP timestamp to nanoseconds since 1900.
func ntpToNs(ntp uint64) int64 {
	sec := int64(ntp >> 32)
	frac := int64((ntp & 0xffffffff) * uint64(time.Second) >> 32)
	return sec*int64(time.Second) + frac
}

// ticksToNs converts RTP ticks at clock Hz to nanoseconds without
// overflowing for long recordings.
func ticksToNs(ticks, clock int64) int64 {
	return ticks/clock*int64(time.Second) + ticks%clock*int64(time.Second)/clock
}

// sr returns the track's sender report if it is for its current source.
func (st *trackState) sr() *senderReport {
	if r := st.t.sr.Load(); r != nil && st.haveSSRC && r.ssrc == st.ssrc {
		return r
	}
	return nil
}

// fix chooses the time domain from the tracks about to start the first file.
func (tl *timeline) fix(rec *Recording, states []*trackState) {
	if tl.fixed {
		return
	}
	tl.fixed = true
	for _, st := range states {
		if r := st.sr(); r != nil {
			tl.useSR = true
			tl.offset = ntpToNs(r.ntp) - rec.localNs(r.arrival)
			return
		}
	}
}

// anchor ties a track's RTP clock to the domain, at frame f, unless it is
// already anchored for f's source.
func (tl *timeline) anchor(rec *Recording, st *trackState, f *frame) {
	if st.anchored && st.anchorEpoch == f.epoch {
		return
	}
	at := rec.localNs(f.arrival) + tl.offset
	if r := st.sr(); tl.useSR && r != nil {
		// A report far from the frame predates a jump of the sender's
		// timestamps: arrival time is the better guess then.
		if d := int64(int32(uint32(f.ts) - r.rtp)); d < 60*st.clock && d > -60*st.clock {
			at = ntpToNs(r.ntp) + ticksToNs(d, st.clock)
		}
	}
	if st.haveLastMs && tl.originSet {
		// A new source continues the track; never go back in time.
		if floor := tl.origin + (st.lastMs+st.frameDurationMs())*int64(time.Millisecond); at < floor {
			at = floor
		}
	}
	st.anchored, st.anchorEpoch, st.anchorTS, st.anchorAt = true, f.epoch, f.ts, at
}

// domainNs is the time of frame f in the domain (the track is anchored).
func (st *trackState) domainNs(f *frame) int64 {
	return st.anchorAt + ticksToNs(f.ts-st.anchorTS, st.clock)
}

// place anchors the track if needed and sets f.ms.
func (tl *timeline) place(rec *Recording, st *trackState, f *frame) {
	tl.anchor(rec, st, f)
	if !tl.originSet {
		tl.originSet, tl.origin = true, st.domainNs(f)
	}
	f.ms = (st.domainNs(f) - tl.origin) / int64(time.Millisecond)
	st.lastMs, st.haveLastMs = f.ms, true
}

// frameDurationMs estimates the duration of the track's frames.
func (st *trackState) frameDurationMs() int64 {
	if st.durTicks > 0 && st.clock > 0 {
		if d := st.durTicks * 1000 / st.clock; d > 0 {
			return d
		}
	}
	if st.kind.Video() {
		return 33
	}
	return 20
}
