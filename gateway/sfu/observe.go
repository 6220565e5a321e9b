package sfu

import (
	"sync"
	"time"

	"github.com/rtcio-gateway/rtcio-gateway/forwarding"
)

// Observer sees the media plane for metrics. The room calls it as tracks
// start and end; it reads counters only when asked, so nothing is counted
// twice on the packet path.
type Observer interface {
	// TrackForwarded registers a forwarded track whose counters read
	// returns; done unregisters it once the track ended (an observer keeps
	// its final counts, so totals never go backwards).
	TrackForwarded(read func() TrackStats) (done func())
	// FirstKeyframe reports how long a new subscription took from its
	// binding to its first keyframe (audio: first packet).
	FirstKeyframe(d time.Duration)
	// DuplicateTrack reports a received track dropped as a repeat of a
	// track its publisher already sends in the same stream.
	DuplicateTrack()
	// ChannelRefused reports a client connection that sent data on a
	// custom channel the room does not relay.
	ChannelRefused()
}

// TrackStats are one forwarded track's counters: its publication's, its
// live down-tracks', and the sum of its down-tracks that already ended.
type TrackStats struct {
	Publication forwarding.PublicationStats
	Live        []forwarding.DownTrackStats
	Ended       forwarding.DownTrackStats
}

// trackStats keeps the counters of a forward track's ended down-tracks.
type trackStats struct {
	mu    sync.Mutex
	ended forwarding.DownTrackStats
	done  func()
	once  sync.Once
}

func (ts *trackStats) retire(d forwarding.DownTrackStats) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.ended.Add(d)
}

func (ts *trackStats) endedStats() forwarding.DownTrackStats {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.ended
}

// finish unregisters the track from the observer, once.
func (ts *trackStats) finish() {
	ts.once.Do(func() {
		if ts.done != nil {
			ts.done()
		}
	})
}

// observe registers f with the observer, if there is one.
func (f *forwardTrack) observe(o Observer) {
	if o == nil {
		return
	}
	f.stats.done = o.TrackForwarded(func() TrackStats {
		st := TrackStats{Publication: f.pub.Stats(), Ended: f.stats.endedStats()}
		for _, d := range f.downTracks() {
			st.Live = append(st.Live, d.Stats())
		}
		return st
	})
}
