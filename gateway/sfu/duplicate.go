package sfu

import (
	"github.com/pion/webrtc/v4"

	"github.com/rtcio-gateway/rtcio-gateway/rtcio"
)

// The rtc.io browser client, when a stream is emitted before its peer
// connection exists, sometimes adds a second sendonly transceiver for each
// track of the same MediaStream: the SDP then has two m-lines per kind with
// the same msid (stream id and track id), each with its own SSRCs. Both
// copies carry the same media. The gateway forwards and records the first
// copy to arrive and only reads and discards the other, so every subscriber
// gets one track per kind and a recording one track per kind. A stream
// that really has two tracks of one kind (two cameras) has two track ids
// and is not touched.

func newRelayed(key streamKey) *relayed {
	return &relayed{key: key, tracks: make(map[*webrtc.TrackRemote]*inbound), dups: make(map[*webrtc.TrackRemote]bool)}
}

// repeats reports whether t repeats a track the stream already receives:
// same kind and same (non-empty) track id within the same publisher's
// MediaStream.
func (rel *relayed) repeats(t *webrtc.TrackRemote) bool {
	if t.ID() == "" {
		return false
	}
	for have := range rel.tracks {
		if have.Kind() == t.Kind() && have.ID() == t.ID() {
			return true
		}
	}
	return false
}

// dropDuplicate handles track when it repeats a track of its stream: the
// copy is counted, reported and drained (read through pion's interceptors,
// so the publisher keeps getting receiver reports and congestion feedback
// for it, but never forwarded or recorded). It reports whether it did.
func (r *Room) dropDuplicate(peerID string, rs *rtcio.RemoteStream, track *webrtc.TrackRemote) bool {
	key := streamKey{peerID, rs.MediaStreamID()}
	r.mu.Lock()
	rel := r.streams[key]
	dup := rel != nil && rel.repeats(track)
	if dup {
		rel.dups[track] = true
	}
	r.mu.Unlock()
	if !dup {
		return false
	}
	if r.cfg.Observer != nil {
		r.cfg.Observer.DuplicateTrack()
	}
	r.log.Info("sfu: dropping a repeated copy of a track the publisher already sends", "publisher", peerID, "stream", key.msid, "kind", track.Kind().String(), "track", track.ID(), "ssrc", uint32(track.SSRC()))
	r.notify(Notice{Kind: DuplicateTrackDropped, Publisher: peerID, MediaStream: key.msid, Track: track.ID()})
	r.loops.Add(1)
	go func() {
		defer r.loops.Done()
		buf := make([]byte, 1500)
		for {
			if _, _, err := track.Read(buf); err != nil {
				return
			}
		}
	}()
	return true
}
