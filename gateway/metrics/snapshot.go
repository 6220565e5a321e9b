package metrics

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Snapshot is what sources report on a scrape. Gauges are current values;
// counters are totals since the source began. Every source adds its share
// (s.PacketsForwarded += ...), so one snapshot sums all of them.
type Snapshot struct {
	// Gauges.
	Rooms            int64
	Sockets          int64
	PeerConnections  int64
	Publications     int64
	DownTracks       int64
	RecordingsActive int64
	// Bandwidth adaptation: subscribers whose estimate is below what they
	// are sent, subscribers' videos paused, publisher videos under a cap.
	SubscribersCongested int64
	VideosPaused         int64
	PublishersCapped     int64

	// Counters.
	PacketsReceived      uint64 // RTP from publishers
	BytesReceived        uint64
	PacketsForwarded     uint64 // RTP to subscribers, retransmissions excluded
	BytesForwarded       uint64
	NACKsReceived        uint64 // sequence numbers subscribers asked again
	NACKsSent            uint64 // sequence numbers asked again of publishers
	Retransmissions      uint64 // packets resent to subscribers
	PLIsReceived         uint64 // keyframe requests from subscribers (PLI and FIR)
	KeyframeRequestsSent uint64 // keyframe requests sent to publishers
	KeyframeCacheHits    uint64 // subscribers started from the keyframe cache
	KeyframeCacheMisses  uint64
	RecordingBytes       uint64 // bytes recorders wrote to disk
	RecordingFailures    uint64 // recordings that could not start or stopped on an error
	// DuplicateTracks counts received tracks that repeated a track their
	// publisher already sends in the same stream, and were not forwarded.
	DuplicateTracks uint64
	// ChannelsNotRelayed counts client connections that sent data on a
	// custom channel the gateway does not relay.
	ChannelsNotRelayed uint64
	// DescriptionsRefused counts session descriptions the signaling
	// server refused (each left a client unable to negotiate); they are
	// in Refused too.
	DescriptionsRefused uint64
	// Bandwidth adaptation and the active speaker: REMB caps sent to
	// publishers, subscriber videos paused and resumed, NACKs left
	// unanswered over a congested subscriber's retransmission budget,
	// active speaker changes.
	REMBSent, VideoPauses, VideoResumes, RetransmitsOverBudget, SpeakerChanges uint64

	// Cluster (redis.url set), this node's view: whether Redis answered
	// its last heartbeat, the longest inbox delivery lag since the last
	// scrape, and what crossed nodes.
	ClusterRedisUp          int64
	ClusterInboxLagMaxMicro int64
	ClusterEnvelopesSent    uint64 // events written to other nodes' inboxes
	ClusterEnvelopesRecv    uint64 // events read from this node's inbox
	ClusterDuplicates       uint64 // envelopes read twice and dropped
	ClusterSequenceGaps     uint64 // envelopes missing between two read
	ClusterEnvelopesDropped uint64 // outbox full, or no node for a socket
	ClusterWriteRetries     uint64 // inbox writes retried (Redis away)
	ClusterReapedSockets    uint64 // sockets of dead nodes taken out of rooms here
	// Cascaded SFU rooms (cluster.max_room_peers_per_node): edges this
	// node placed, clients an origin took past the threshold, clients of
	// dead edges moved; SFULinks are this node's gateway peers' links to
	// other gateway peers, and SFULinkBytes what they carried.
	ClusterEdgesPlaced      uint64
	ClusterEdgeOverLimit    uint64
	ClusterEdgeClientsMoved uint64
	SFULinks                int64
	SFULinkBytesSent        uint64
	SFULinkBytesReceived    uint64

	// Dropped counts packets dropped, by reason ("queue_full", "malformed",
	// ...); Refused counts signaling messages refused, by reason
	// ("rate_limited", "payload_too_large", ...). Use AddDropped and
	// AddRefused, which allocate the maps when needed.
	Dropped map[string]uint64
	Refused map[string]uint64
}

// AddDropped adds n packets dropped for reason.
func (s *Snapshot) AddDropped(reason string, n uint64) { s.Dropped = addReason(s.Dropped, reason, n) }

// AddRefused adds n signaling messages refused for reason.
func (s *Snapshot) AddRefused(reason string, n uint64) { s.Refused = addReason(s.Refused, reason, n) }

func addReason(m map[string]uint64, reason string, n uint64) map[string]uint64 {
	if n == 0 {
		return m
	}
	if m == nil {
		m = make(map[string]uint64)
	}
	m[reason] += n
	return m
}

// addCounters adds the counters (not the gauges) of o to s: what a removed
// source leaves behind, so that totals never go down.
func (s *Snapshot) addCounters(o *Snapshot) {
	for _, f := range families {
		if f.counter != nil {
			*f.counter(s) += *f.counter(o)
		}
	}
	for r, n := range o.Dropped {
		s.AddDropped(r, n)
	}
	for r, n := range o.Refused {
		s.AddRefused(r, n)
	}
}

// Counters is the direct way to feed the metrics: plain atomics, incremented
// where things happen and read only on a scrape, so a hot path pays one
// atomic add and never a Prometheus call. Their values are added to what the
// sources report.
type Counters struct {
	Rooms, Sockets, PeerConnections, Publications, DownTracks, RecordingsActive atomic.Int64

	PacketsReceived, BytesReceived, PacketsForwarded, BytesForwarded atomic.Uint64
	NACKsReceived, NACKsSent, Retransmissions                        atomic.Uint64
	PLIsReceived, KeyframeRequestsSent                               atomic.Uint64
	KeyframeCacheHits, KeyframeCacheMisses, RecordingBytes           atomic.Uint64
	RecordingFailures                                                atomic.Uint64
	DuplicateTracks, ChannelsNotRelayed                              atomic.Uint64
	REMBSent, VideoPauses, VideoResumes, SpeakerChanges              atomic.Uint64
}

func (c *Counters) addTo(s *Snapshot) {
	s.Rooms += c.Rooms.Load()
	s.Sockets += c.Sockets.Load()
	s.PeerConnections += c.PeerConnections.Load()
	s.Publications += c.Publications.Load()
	s.DownTracks += c.DownTracks.Load()
	s.RecordingsActive += c.RecordingsActive.Load()
	s.PacketsReceived += c.PacketsReceived.Load()
	s.BytesReceived += c.BytesReceived.Load()
	s.PacketsForwarded += c.PacketsForwarded.Load()
	s.BytesForwarded += c.BytesForwarded.Load()
	s.NACKsReceived += c.NACKsReceived.Load()
	s.NACKsSent += c.NACKsSent.Load()
	s.Retransmissions += c.Retransmissions.Load()
	s.PLIsReceived += c.PLIsReceived.Load()
	s.KeyframeRequestsSent += c.KeyframeRequestsSent.Load()
	s.KeyframeCacheHits += c.KeyframeCacheHits.Load()
	s.KeyframeCacheMisses += c.KeyframeCacheMisses.Load()
	s.RecordingBytes += c.RecordingBytes.Load()
	s.RecordingFailures += c.RecordingFailures.Load()
	s.DuplicateTracks += c.DuplicateTracks.Load()
	s.ChannelsNotRelayed += c.ChannelsNotRelayed.Load()
	s.REMBSent += c.REMBSent.Load()
	s.VideoPauses += c.VideoPauses.Load()
	s.VideoResumes += c.VideoResumes.Load()
	s.SpeakerChanges += c.SpeakerChanges.Load()
}

// family is one unlabelled metric read from a Snapshot: exactly one of gauge
// and counter is set.
type family struct {
	name, help string
	gauge      func(*Snapshot) *int64
	counter    func(*Snapshot) *uint64
}

// families lists the unlabelled families. It is a read-only table, built
// once at init and never written.
var families = []family{
	{name: "rooms", help: "Rooms with at least one member.", gauge: func(s *Snapshot) *int64 { return &s.Rooms }},
	{name: "sockets", help: "Connected signaling sockets.", gauge: func(s *Snapshot) *int64 { return &s.Sockets }},
	{name: "peer_connections", help: "WebRTC peer connections held by gateway peers.", gauge: func(s *Snapshot) *int64 { return &s.PeerConnections }},
	{name: "publications", help: "Tracks received from publishers and being forwarded.", gauge: func(s *Snapshot) *int64 { return &s.Publications }},
	{name: "down_tracks", help: "Tracks being forwarded to subscribers.", gauge: func(s *Snapshot) *int64 { return &s.DownTracks }},
	{name: "recordings_active", help: "Recordings being written.", gauge: func(s *Snapshot) *int64 { return &s.RecordingsActive }},
	{name: "received_packets_total", help: "RTP packets received from publishers.", counter: func(s *Snapshot) *uint64 { return &s.PacketsReceived }},
	{name: "received_bytes_total", help: "RTP bytes received from publishers.", counter: func(s *Snapshot) *uint64 { return &s.BytesReceived }},
	{name: "forwarded_packets_total", help: "RTP packets forwarded to subscribers, retransmissions excluded.", counter: func(s *Snapshot) *uint64 { return &s.PacketsForwarded }},
	{name: "forwarded_bytes_total", help: "RTP payload bytes forwarded to subscribers, retransmissions excluded.", counter: func(s *Snapshot) *uint64 { return &s.BytesForwarded }},
	{name: "nacks_received_total", help: "Sequence numbers subscribers NACKed.", counter: func(s *Snapshot) *uint64 { return &s.NACKsReceived }},
	{name: "nacks_sent_total", help: "Sequence numbers NACKed to publishers.", counter: func(s *Snapshot) *uint64 { return &s.NACKsSent }},
	{name: "retransmitted_packets_total", help: "Packets retransmitted to subscribers after a NACK.", counter: func(s *Snapshot) *uint64 { return &s.Retransmissions }},
	{name: "plis_received_total", help: "Keyframe requests (PLI, FIR) received from subscribers.", counter: func(s *Snapshot) *uint64 { return &s.PLIsReceived }},
	{name: "keyframe_requests_sent_total", help: "Keyframe requests (PLI) sent to publishers.", counter: func(s *Snapshot) *uint64 { return &s.KeyframeRequestsSent }},
	{name: "keyframe_cache_hits_total", help: "Subscribers started at once from the cached keyframe.", counter: func(s *Snapshot) *uint64 { return &s.KeyframeCacheHits }},
	{name: "keyframe_cache_misses_total", help: "Video subscribers that found no cached keyframe.", counter: func(s *Snapshot) *uint64 { return &s.KeyframeCacheMisses }},
	{name: "recording_bytes_written_total", help: "Bytes recorders wrote to disk.", counter: func(s *Snapshot) *uint64 { return &s.RecordingBytes }},
	{name: "recording_failures_total", help: "Recordings that could not start or stopped on an error.", counter: func(s *Snapshot) *uint64 { return &s.RecordingFailures }},
	{name: "duplicate_tracks_dropped_total", help: "Received tracks that repeated a track of the same publisher stream (same MediaStream, kind and track id) and were neither forwarded nor recorded.", counter: func(s *Snapshot) *uint64 { return &s.DuplicateTracks }},
	{name: "channels_not_relayed_total", help: "Client connections that sent data on a custom channel the gateway does not relay (not in media.relay_channels); the data is lost.", counter: func(s *Snapshot) *uint64 { return &s.ChannelsNotRelayed }},
	{name: "subscribers_congested", help: "SFU subscribers whose bandwidth estimate is clearly below what they are sent.", gauge: func(s *Snapshot) *int64 { return &s.SubscribersCongested }},
	{name: "videos_paused", help: "Subscribers' videos paused because their link cannot take them.", gauge: func(s *Snapshot) *int64 { return &s.VideosPaused }},
	{name: "publishers_capped", help: "Publisher videos under a REMB cap below adapt.max_bps.", gauge: func(s *Snapshot) *int64 { return &s.PublishersCapped }},
	{name: "remb_sent_total", help: "REMB caps sent to publishers (one per capped publisher video per decision).", counter: func(s *Snapshot) *uint64 { return &s.REMBSent }},
	{name: "video_pauses_total", help: "Subscribers' videos paused for bandwidth.", counter: func(s *Snapshot) *uint64 { return &s.VideoPauses }},
	{name: "video_resumes_total", help: "Subscribers' paused videos resumed.", counter: func(s *Snapshot) *uint64 { return &s.VideoResumes }},
	{name: "retransmissions_over_budget_total", help: "NACKed packets not resent because a congested subscriber's retransmission budget was spent.", counter: func(s *Snapshot) *uint64 { return &s.RetransmitsOverBudget }},
	{name: "active_speaker_changes_total", help: "Changes of a room's active speaker.", counter: func(s *Snapshot) *uint64 { return &s.SpeakerChanges }},
	{name: "cluster_redis_up", help: "1 while Redis answered this node's last heartbeat (cluster only).", gauge: func(s *Snapshot) *int64 { return &s.ClusterRedisUp }},
	{name: "cluster_inbox_lag_max_microseconds", help: "Longest time an event took from another node to this node's inbox reader since the last scrape.", gauge: func(s *Snapshot) *int64 { return &s.ClusterInboxLagMaxMicro }},
	{name: "cluster_envelopes_sent_total", help: "Events written to other nodes' inboxes.", counter: func(s *Snapshot) *uint64 { return &s.ClusterEnvelopesSent }},
	{name: "cluster_envelopes_received_total", help: "Events read from this node's inbox and delivered.", counter: func(s *Snapshot) *uint64 { return &s.ClusterEnvelopesRecv }},
	{name: "cluster_envelope_duplicates_total", help: "Envelopes read twice (a write retried after its answer was lost) and dropped.", counter: func(s *Snapshot) *uint64 { return &s.ClusterDuplicates }},
	{name: "cluster_sequence_gaps_total", help: "Envelopes from another node that never arrived (lost with a Redis that restarted empty, or trimmed).", counter: func(s *Snapshot) *uint64 { return &s.ClusterSequenceGaps }},
	{name: "cluster_envelopes_dropped_total", help: "Events for other nodes dropped: the outbox to that node was full, or no node held the socket.", counter: func(s *Snapshot) *uint64 { return &s.ClusterEnvelopesDropped }},
	{name: "cluster_write_retries_total", help: "Inbox writes retried because Redis did not take them.", counter: func(s *Snapshot) *uint64 { return &s.ClusterWriteRetries }},
	{name: "cluster_reaped_sockets_total", help: "Sockets of dead nodes this node took out of their rooms.", counter: func(s *Snapshot) *uint64 { return &s.ClusterReapedSockets }},
	{name: "cluster_edges_placed_total", help: "Edges of cascaded SFU rooms this node placed (on any node).", counter: func(s *Snapshot) *uint64 { return &s.ClusterEdgesPlaced }},
	{name: "cluster_edge_over_limit_total", help: "Clients an origin took past cluster.max_room_peers_per_node because every node was full.", counter: func(s *Snapshot) *uint64 { return &s.ClusterEdgeOverLimit }},
	{name: "cluster_edge_clients_moved_total", help: "Clients of dead edges this node moved to live gateway peers.", counter: func(s *Snapshot) *uint64 { return &s.ClusterEdgeClientsMoved }},
	{name: "sfu_links", help: "Peer connections between this node's gateway peers and other gateway peers of cascaded rooms.", gauge: func(s *Snapshot) *int64 { return &s.SFULinks }},
	{name: "sfu_link_sent_bytes_total", help: "Bytes this node's gateway peers sent over links to other gateway peers (connections open now).", counter: func(s *Snapshot) *uint64 { return &s.SFULinkBytesSent }},
	{name: "sfu_link_received_bytes_total", help: "Bytes this node's gateway peers received over links from other gateway peers (connections open now).", counter: func(s *Snapshot) *uint64 { return &s.SFULinkBytesReceived }},
	{name: "signaling_descriptions_refused_total", help: "Session descriptions (offers, answers) refused by the signaling server; each breaks a client's peer connection.", counter: func(s *Snapshot) *uint64 { return &s.DescriptionsRefused }},
}

// collector reports a Snapshot built on each scrape.
type collector struct {
	m       *Metrics
	descs   []*prometheus.Desc // parallel to families
	dropped *prometheus.Desc
	refused *prometheus.Desc
}

func newCollector(m *Metrics, ns string) *collector {
	c := &collector{m: m}
	for _, f := range families {
		c.descs = append(c.descs, prometheus.NewDesc(prometheus.BuildFQName(ns, "", f.name), f.help, nil, nil))
	}
	c.dropped = prometheus.NewDesc(prometheus.BuildFQName(ns, "", "dropped_packets_total"),
		"RTP packets dropped, by reason.", []string{"reason"}, nil)
	c.refused = prometheus.NewDesc(prometheus.BuildFQName(ns, "", "signaling_refused_total"),
		"Signaling messages refused, by reason.", []string{"reason"}, nil)
	return c
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
	ch <- c.dropped
	ch <- c.refused
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	s := c.m.snapshot()
	for i, f := range families {
		if f.gauge != nil {
			ch <- prometheus.MustNewConstMetric(c.descs[i], prometheus.GaugeValue, float64(*f.gauge(&s)))
		} else {
			ch <- prometheus.MustNewConstMetric(c.descs[i], prometheus.CounterValue, float64(*f.counter(&s)))
		}
	}
	// Reasons are cleaned to [a-z0-9_] before they get here, so the label
	// values are always valid and MustNewConstMetric cannot panic.
	for r, n := range boundReasons(s.Dropped) {
		ch <- prometheus.MustNewConstMetric(c.dropped, prometheus.CounterValue, float64(n), r)
	}
	for r, n := range boundReasons(s.Refused) {
		ch <- prometheus.MustNewConstMetric(c.refused, prometheus.CounterValue, float64(n), r)
	}
}
