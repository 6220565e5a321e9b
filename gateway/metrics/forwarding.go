package metrics

import "github.com/rtcio-gateway/rtcio-gateway/forwarding"

// AddPublicationStats adds one forwarding publication to s: a Source for a
// room can call it for each of its publications.
func AddPublicationStats(s *Snapshot, st forwarding.PublicationStats) {
	s.Publications++
	s.PacketsReceived += st.PacketsIn
	s.BytesReceived += st.BytesIn
	s.NACKsSent += st.NacksSent
	s.KeyframeRequestsSent += st.KeyframeRequestsSent
	s.KeyframeCacheHits += st.KeyframeCacheHits
	s.KeyframeCacheMisses += st.KeyframeCacheMisses
	s.AddDropped("malformed", st.DropsMalformed)
	s.AddDropped("duplicate", st.DropsDuplicate)
	s.AddDropped("stale_source", st.DropsStaleSource)
	s.AddDropped("sink_queue_full", st.SinkDropsQueueFull)
	s.AddDropped("sink_write_error", st.SinkWriteErrors)
}

// AddDownTrackStats adds one forwarding down-track to s.
func AddDownTrackStats(s *Snapshot, st forwarding.DownTrackStats) {
	s.DownTracks++
	s.PacketsForwarded += st.PacketsOut
	s.BytesForwarded += st.BytesOut
	s.NACKsReceived += st.NacksReceived
	s.Retransmissions += st.Retransmissions
	s.RetransmitsOverBudget += st.RetransmitsOverBudget
	s.PLIsReceived += st.PLIsReceived + st.FIRsReceived
	s.AddDropped("queue_full", st.DropsQueueFull)
	s.AddDropped("too_old", st.DropsTooOld)
	s.AddDropped("write_error", st.DropsWriteError)
}
