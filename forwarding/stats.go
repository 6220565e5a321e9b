package forwarding

import (
	"reflect"
	"sync/atomic"
)

// PublicationStats is a snapshot of a publication's counters.
type PublicationStats struct {
	PacketsIn uint64 // accepted upstream packets
	BytesIn   uint64 // their size on the wire

	DropsMalformed   uint64 // unparsable or oversized packets
	DropsDuplicate   uint64 // packets already in the history
	DropsStaleSource uint64 // late packets of a source already switched away from

	SourceSwitches uint64 // upstream discontinuities (new SSRC, SwitchSource)

	UpstreamLost      uint64 // sequence numbers found missing upstream
	UpstreamRecovered uint64 // missing packets that arrived later
	NacksSent         uint64 // sequence numbers NACKed to the publisher
	NackGiveUps       uint64 // missing packets no longer asked for

	KeyframesIn               uint64 // keyframe starts seen upstream
	KeyframeRequests          uint64 // requests made by subscribers and callers
	KeyframeRequestsSent      uint64 // requests actually sent to the publisher
	KeyframeRequestsSatisfied uint64 // pending requests dropped because a keyframe came first
	KeyframeCacheHits         uint64 // subscribers started from the keyframe cache
	KeyframeCacheMisses       uint64 // video subscribers that found no cached keyframe

	SinkDropsQueueFull uint64 // packets a sink lost because its queue was full
	SinkWriteErrors    uint64

	Subscribers int
	Sinks       int
}

type publicationCounters struct {
	packetsIn, bytesIn                                  atomic.Uint64
	dropsMalformed, dropsDuplicate, dropsStaleSource    atomic.Uint64
	sourceSwitches                                      atomic.Uint64
	upstreamLost, upstreamRecovered, nacksSent, giveUps atomic.Uint64
	keyframesIn, kfRequests, kfSent, kfSatisfied        atomic.Uint64
	cacheHits, cacheMisses                              atomic.Uint64
	sinkDrops, sinkErrors                               atomic.Uint64
}

// DownTrackStats is a snapshot of a down-track's counters.
type DownTrackStats struct {
	PacketsOut uint64 // packets written, retransmissions excluded
	BytesOut   uint64 // payload bytes written, retransmissions excluded

	DropsQueueFull  uint64 // the subscriber's queue was full: it is too slow
	DropsTooOld     uint64 // older than the down-track's start or its current source
	DropsWriteError uint64 // the writer returned an error

	NacksReceived         uint64 // sequence numbers the subscriber NACKed
	NacksDropped          uint64 // NACKed numbers dropped because too many were pending
	Retransmissions       uint64 // packets resent (RTX or plain)
	RetransmitMisses      uint64 // NACKed packets no longer in the history
	RetransmitsSuppressed uint64 // NACKs for a packet just resent or resent too often
	RetransmitBytes       uint64 // payload bytes resent
	RetransmitsOverBudget uint64 // NACKs not answered: the subscriber's retransmission budget was spent
	PausedDrops           uint64 // packets not sent while the video was paused or waiting for its keyframe

	PLIsReceived    uint64
	FIRsReceived    uint64
	SenderReports   uint64
	ReplayedPackets uint64 // packets sent from the keyframe cache at start
}

// Add adds o's counters to s, every field: a down-track's stats outlive it
// in a total (a track's ended down-tracks). Reflection keeps a new counter
// from being forgotten here; it runs once per ended down-track, not per
// packet.
func (s *DownTrackStats) Add(o DownTrackStats) {
	dst, src := reflect.ValueOf(s).Elem(), reflect.ValueOf(o)
	for i := range dst.NumField() {
		f := dst.Field(i)
		f.SetUint(f.Uint() + src.Field(i).Uint())
	}
}

type downTrackCounters struct {
	packetsOut, bytesOut                         atomic.Uint64
	dropsQueueFull, dropsTooOld, dropsWriteError atomic.Uint64
	nacksReceived, nacksDropped                  atomic.Uint64
	retransmissions, rtxMisses, rtxSuppressed    atomic.Uint64
	rtxBytes, rtxOverBudget, pausedDrops         atomic.Uint64
	plis, firs, senderReports, replayed          atomic.Uint64
}

func (c *downTrackCounters) snapshot() DownTrackStats {
	return DownTrackStats{
		PacketsOut:            c.packetsOut.Load(),
		BytesOut:              c.bytesOut.Load(),
		DropsQueueFull:        c.dropsQueueFull.Load(),
		DropsTooOld:           c.dropsTooOld.Load(),
		DropsWriteError:       c.dropsWriteError.Load(),
		NacksReceived:         c.nacksReceived.Load(),
		NacksDropped:          c.nacksDropped.Load(),
		Retransmissions:       c.retransmissions.Load(),
		RetransmitMisses:      c.rtxMisses.Load(),
		RetransmitsSuppressed: c.rtxSuppressed.Load(),
		RetransmitBytes:       c.rtxBytes.Load(),
		RetransmitsOverBudget: c.rtxOverBudget.Load(),
		PausedDrops:           c.pausedDrops.Load(),
		PLIsReceived:          c.plis.Load(),
		FIRsReceived:          c.firs.Load(),
		SenderReports:         c.senderReports.Load(),
		ReplayedPackets:       c.replayed.Load(),
	}
}

func (c *publicationCounters) snapshot() PublicationStats {
	return PublicationStats{
		PacketsIn:                 c.packetsIn.Load(),
		BytesIn:                   c.bytesIn.Load(),
		DropsMalformed:            c.dropsMalformed.Load(),
		DropsDuplicate:            c.dropsDuplicate.Load(),
		DropsStaleSource:          c.dropsStaleSource.Load(),
		SourceSwitches:            c.sourceSwitches.Load(),
		UpstreamLost:              c.upstreamLost.Load(),
		UpstreamRecovered:         c.upstreamRecovered.Load(),
		NacksSent:                 c.nacksSent.Load(),
		NackGiveUps:               c.giveUps.Load(),
		KeyframesIn:               c.keyframesIn.Load(),
		KeyframeRequests:          c.kfRequests.Load(),
		KeyframeRequestsSent:      c.kfSent.Load(),
		KeyframeRequestsSatisfied: c.kfSatisfied.Load(),
		KeyframeCacheHits:         c.cacheHits.Load(),
		KeyframeCacheMisses:       c.cacheMisses.Load(),
		SinkDropsQueueFull:        c.sinkDrops.Load(),
		SinkWriteErrors:           c.sinkErrors.Load(),
	}
}
