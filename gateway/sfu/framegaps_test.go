package sfu_test

import (
	"fmt"
	"testing"
	"time"
)

// frameGaps counts freezes in a received video track the way Chromium's
// receive statistics do, so a Go subscriber's picture can be judged like a
// browser's: a frame is complete at the packet carrying the marker bit (or,
// should the marker be lost, when the next RTP timestamp starts), timed by
// arrival; a freeze is a gap between complete frames longer than
// max(3 x the mean frame interval, the mean + 150 ms). The mean is over the
// last frameGapWindow intervals that were not freezes, as Chromium's
// average leaves freezes out.
type frameGaps struct {
	started   bool
	lastTS    uint32
	done      bool // the frame of lastTS has completed
	lastFrame time.Time
	intervals [frameGapWindow]time.Duration
	n, next   int
	sum       time.Duration
	frames    int
	freezes   int
	// lastFrameTS is the RTP timestamp of the last complete frame; each
	// freeze keeps its arrival gap and the gap of the RTP timestamps
	// (capture time): a freeze whose capture gap is as long as its arrival
	// gap was made at the source (the publisher sent no frames), one with
	// frames captured at the usual interval was delayed on the way.
	lastFrameTS uint32
	gapLog      []freezeGap
	// atSource counts the freezes made at the source: frames captured at
	// least half the arrival gap apart.
	atSource int
}

// freezeGap is one freeze: how long no frame arrived, and how far apart
// in capture time the frames on either side were.
type freezeGap struct {
	at            time.Time
	arrival, capt time.Duration
}

func (g freezeGap) String() string {
	return fmt.Sprintf("%s: %v (captured %v apart)", g.at.Format("15:04:05.000"), g.arrival.Round(time.Millisecond), g.capt.Round(time.Millisecond))
}

// frameGapWindow is how many intervals the mean is taken over (about one
// second of video at 30 fps).
const frameGapWindow = 30

// packet records one RTP packet of the track: its timestamp, marker bit
// and arrival time.
func (f *frameGaps) packet(ts uint32, marker bool, at time.Time) {
	if f.started && ts != f.lastTS && !f.done {
		f.frame(f.lastTS, at) // the previous frame's marker was lost
	}
	if !f.started || ts != f.lastTS {
		f.started, f.lastTS, f.done = true, ts, false
	}
	if marker && !f.done {
		f.done = true
		f.frame(ts, at)
	}
}

// frame records a complete frame (RTP timestamp ts, 90 kHz video clock)
// at arrival time at.
func (f *frameGaps) frame(ts uint32, at time.Time) {
	f.frames++
	prevTS := f.lastFrameTS
	f.lastFrameTS = ts
	if f.frames == 1 {
		f.lastFrame = at
		return
	}
	gap := at.Sub(f.lastFrame)
	f.lastFrame = at
	if f.n >= frameGapWindow/3 { // judge only once the mean means something
		mean := f.sum / time.Duration(f.n)
		if gap > max(3*mean, mean+150*time.Millisecond) {
			f.freezes++
			capt := time.Duration(int32(ts-prevTS)) * time.Second / 90000
			if 2*capt >= gap {
				f.atSource++
			}
			if len(f.gapLog) < 64 {
				f.gapLog = append(f.gapLog, freezeGap{at: at, arrival: gap, capt: capt})
			}
			return
		}
	}
	if f.n == frameGapWindow {
		f.sum -= f.intervals[f.next]
	} else {
		f.n++
	}
	f.intervals[f.next] = gap
	f.sum += gap
	f.next = (f.next + 1) % frameGapWindow
}

func TestFrameGapsCountsFreezes(t *testing.T) {
	var f frameGaps
	at := time.Unix(0, 0)
	ts := uint32(0)
	send := func(gap time.Duration, packets int, marker bool) {
		at = at.Add(gap)
		ts += 3000
		for i := range packets {
			f.packet(ts, marker && i == packets-1, at)
		}
	}
	for range 60 {
		send(33*time.Millisecond, 3, true)
	}
	if f.frames != 60 || f.freezes != 0 {
		t.Fatalf("steady 30 fps: %d frames, %d freezes", f.frames, f.freezes)
	}
	send(150*time.Millisecond, 2, true) // < mean + 150 ms: a late frame, not a freeze
	send(400*time.Millisecond, 2, true) // > max(3 x 33, 33 + 150) ms
	if f.freezes != 1 {
		t.Fatalf("after a 400 ms gap: %d freezes, want 1", f.freezes)
	}
	// Frames whose marker was lost still complete when the next timestamp
	// starts; the one-second hole among them is a second freeze.
	for range 10 {
		send(33*time.Millisecond, 2, false)
	}
	send(time.Second, 2, false)
	send(33*time.Millisecond, 2, true)
	if f.frames != 74 || f.freezes != 2 {
		t.Fatalf("markers lost: %d frames, %d freezes; want 74 and 2", f.frames, f.freezes)
	}
	// The first freeze's frames were captured one frame apart (3000 ticks
	// at 90 kHz) but arrived 400 ms apart: delayed on the way.
	if len(f.gapLog) != 2 || f.gapLog[0].arrival != 400*time.Millisecond || f.gapLog[0].capt != time.Second/30 {
		t.Fatalf("freeze log %v; want 2 entries, the first 400 ms apart, captured 33.3 ms apart", f.gapLog)
	}
	if f.atSource != 0 {
		t.Fatalf("%d freezes counted as made at the source; both were delayed on the way", f.atSource)
	}
	// The publisher itself sends nothing for 600 ms: frames captured as
	// far apart as they arrive, a freeze made at the source.
	at = at.Add(600 * time.Millisecond)
	ts += 54000
	send(0, 2, true)
	if f.freezes != 3 || f.atSource != 1 {
		t.Fatalf("a gap at the source: %d freezes, %d at the source; want 3 and 1", f.freezes, f.atSource)
	}
}
