package gateway

import (
	"time"

	"github.com/rtcio-gateway/rtcio-gateway/forwarding"
	"github.com/rtcio-gateway/rtcio-gateway/gateway/metrics"
	"github.com/rtcio-gateway/rtcio-gateway/gateway/sfu"
)

// mediaMetrics feeds the SFU rooms' forwarding counters into the metrics
// registry, read at scrape time.
type mediaMetrics struct{ m *metrics.Metrics }

func (o mediaMetrics) TrackForwarded(read func() sfu.TrackStats) (done func()) {
	return o.m.AddSource(func(s *metrics.Snapshot) {
		st := read()
		metrics.AddPublicationStats(s, st.Publication)
		for _, d := range st.Live {
			metrics.AddDownTrackStats(s, d)
		}
		addEndedDownTracks(s, st.Ended)
	})
}

func (o mediaMetrics) FirstKeyframe(d time.Duration) { o.m.ObserveFirstKeyframe(d) }

func (o mediaMetrics) DuplicateTrack() { o.m.Direct.DuplicateTracks.Add(1) }

func (o mediaMetrics) ChannelRefused() { o.m.Direct.ChannelsNotRelayed.Add(1) }

// mediaMetrics is also the rooms' sfu.AdaptObserver.
func (o mediaMetrics) Estimate(bps uint64) { o.m.ObserveEstimate(bps) }
func (o mediaMetrics) REMBSent(bps uint64) { o.m.ObserveREMB(bps) }
func (o mediaMetrics) VideoPaused()        { o.m.Direct.VideoPauses.Add(1) }
func (o mediaMetrics) VideoResumed()       { o.m.Direct.VideoResumes.Add(1) }
func (o mediaMetrics) SpeakerChanged()     { o.m.Direct.SpeakerChanges.Add(1) }

// addEndedDownTracks adds the counters of down-tracks that are gone, which
// count in the totals but not in the down-track gauge.
func addEndedDownTracks(s *metrics.Snapshot, ended forwarding.DownTrackStats) {
	live := s.DownTracks
	metrics.AddDownTrackStats(s, ended)
	s.DownTracks = live
}

// stateSource reports the gauges that describe the server as a whole.
func (s *Server) stateSource(snap *metrics.Snapshot) {
	if s.cluster != nil {
		// Per node: the rooms this node's sockets are in (listing the
		// cluster's rooms from Redis on every scrape would cost a round
		// trip per room).
		s.cluster.observe(snap)
	} else {
		snap.Rooms += int64(len(s.signaling.Rooms()))
	}
	snap.Sockets += int64(s.signaling.Connections())
	for _, st := range s.sfu.Stats() {
		snap.PeerConnections += int64(st.Peers)
		snap.SubscribersCongested += int64(st.Congested)
		snap.VideosPaused += int64(st.PausedVideos)
		snap.PublishersCapped += int64(st.CappedPublishers)
		snap.SFULinks += int64(len(st.Links))
		for _, l := range st.Links {
			snap.SFULinkBytesSent += l.BytesSent
			snap.SFULinkBytesReceived += l.BytesReceived
		}
	}
	for reason, n := range s.signaling.Refusals() {
		snap.AddRefused(string(reason), n)
	}
	snap.DescriptionsRefused += s.signaling.DescriptionRefusals()
}
