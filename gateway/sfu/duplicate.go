package sfu

import (
	"github.com/pion/webrtc/v4"

	"github.com/rtcio-gateway/rtcio-gateway/rtcio"
)

// The rtc.io browser client, when a stream is emitted before its peer
// connection exists, sometimes adds a second sendonly transceiver for each
// track of the same MediaStream: the SDP then has two m-lines per kind with
// the same msid stream id, each with its own SSRCs and (in Chromium) its own
// msid track id, since the browser names each sender's track anew. Both
// copies carry the same media. A received track repeats another of its
// stream when the publisher, the MediaStream id and the kind match and
// either its track id is the same, or the publisher's SDP announces the
// stream as whole copies: more than one kind, every kind the same number
// (two or more) of times, as two full transceiver sets give. The gateway
// forwards and records the first copy of each kind to arrive and only reads
// and discards the others, so every subscriber gets one track per kind and
// a recording one track per kind. A stream that really has two tracks of
// one kind (audio and two videos; or a video-only stream with two videos)
// is forwarded whole; a stream with two audio and two video tracks of its
// own would be taken for two copies.

func newRelayed(key streamKey) *relayed {
	return &relayed{key: key, tracks: make(map[*webrtc.TrackRemote]*inbound), dups: make(map[*webrtc.TrackRemote]bool)}
}

// repeats reports whether t repeats a track the stream already receives
// (see above); kinds counts the stream's sending m-lines per kind.
func (rel *relayed) repeats(t *webrtc.TrackRemote, kinds map[string]int) bool {
	sameKind := false
	for have := range rel.tracks {
		if have.Kind() != t.Kind() {
			continue
		}
		if t.ID() != "" && have.ID() == t.ID() {
			return true
		}
		sameKind = true
	}
	return sameKind && wholeCopies(kinds)
}

// wholeCopies reports whether per-kind m-line counts describe one set of
// tracks sent several times: at least two kinds, all with the same count
// of two or more.
func wholeCopies(kinds map[string]int) bool {
	if len(kinds) < 2 {
		return false
	}
	n := 0
	for _, c := range kinds {
		if n == 0 {
			n = c
		}
		if c != n {
			return false
		}
	}
	return n >= 2
}

// dropDuplicate handles track when it repeats a track of its stream: the
// copy is counted, reported and drained (read through pion's interceptors,
// so the publisher keeps getting receiver reports and congestion feedback
// for it, but never forwarded or recorded). It reports whether it did.
func (r *Room) dropDuplicate(peerID string, rs *rtcio.RemoteStream, track *webrtc.TrackRemote) bool {
	key := streamKey{peerID, rs.MediaStreamID()}
	kinds := r.sock.Peer(peerID).RemoteKinds(key.msid)
	r.mu.Lock()
	rel := r.streams[key]
	dup := rel != nil && rel.repeats(track, kinds)
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
	n := key.notice(DuplicateTrackDropped, nil)
	n.Track = track.ID()
	r.notify(n)
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
