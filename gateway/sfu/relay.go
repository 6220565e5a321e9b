package sfu

import (
	"encoding/json"
	"slices"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/rtcio-gateway/rtcio-gateway/gateway/signaling"
	"github.com/rtcio-gateway/rtcio-gateway/rtcio"
)

// relayed is one publisher's stream as the room re-publishes it.
type relayed struct {
	key    streamKey
	tracks map[*webrtc.TrackRemote]*inbound
	// dups are tracks that repeat one of tracks (see duplicateOf): read
	// and discarded, never forwarded or recorded.
	dups map[*webrtc.TrackRemote]bool
	// out is nil until the publisher's metadata arrived: without events
	// the gateway could not answer its subscribers' {mid} requests.
	out *rtcio.Stream
	// orphans are the tracks of a departed publisher, kept (with their
	// publications and subscribers) until orphanedAt+AdoptGrace in case
	// the publisher comes back.
	orphans    []*inbound
	orphanedAt time.Time
	// pendingNew are tracks of an adopting connection that the old one
	// did not have, to add once the lock is released.
	pendingNew []*inbound
	// untracked is set when the application untracked the stream: clients
	// that connect later do not get it, connected ones keep it.
	untracked bool
	events    []string
	// identity is who published the stream (see mayContinue).
	identity signaling.Identity
}

// onRemoteTrack feeds a newly received track into the forwarding plane and,
// when its stream is already relayed, adds it to the relayed stream (the
// subscribers' rtc.io then fires track-added).
func (r *Room) onRemoteTrack(peerID string, rs *rtcio.RemoteStream, track *webrtc.TrackRemote, receiver *webrtc.RTPReceiver) {
	if r.dropDuplicate(peerID, rs, track) {
		return
	}
	in, err := r.startInbound(r.ctx, streamKey{peerID, rs.MediaStreamID()}, track, receiver)
	if err != nil {
		r.log.Error("sfu: cannot forward track", "publisher", peerID, "track", track.ID(), "err", err)
		return
	}
	key := streamKey{peerID, rs.MediaStreamID()}
	r.mu.Lock()
	rel := r.streams[key]
	if rel == nil {
		rel = newRelayed(key)
		r.streams[key] = rel
	}
	rel.tracks[track] = in
	out := rel.out
	adopted := out != nil && r.adoptTrack(rel, in)
	rec := r.recordingFor(rel)
	r.mu.Unlock()
	if rec != nil && !adopted {
		r.attachRecording(rec, in)
	}
	r.log.Info("sfu: receiving track", "publisher", peerID, "stream", key.msid, "kind", track.Kind().String(), "track", track.ID(), "ssrc", uint32(track.SSRC()), "codec", track.Codec().MimeType, "adopted", adopted)
	if out != nil && !adopted {
		r.addTrack(out, in)
	}
}

func (r *Room) addTrack(out *rtcio.Stream, in *inbound) {
	if err := out.AddTrack(in.fwd); err != nil {
		r.log.Error("sfu: relay track", "err", err)
	}
}

// onStreamEvents relays a stream once its publisher's metadata arrived: a
// relay stream with the publisher's ids and events, sent to every other
// client.
func (r *Room) onStreamEvents(peerID string, rs *rtcio.RemoteStream, events map[string][]json.RawMessage) {
	key := streamKey{peerID, rs.MediaStreamID()}
	r.mu.Lock()
	rel := r.streams[key]
	if rel == nil || rel.out != nil {
		r.mu.Unlock()
		return
	}
	orphan, claimed := r.orphanFor(rs.ID(), key.msid, peerID)
	if orphan != nil {
		r.adoptLocked(orphan, rel)
		r.mu.Unlock()
		r.continueAdopted(peerID, orphan, events)
		return
	}
	if claimed {
		r.mu.Unlock()
		r.refuseClaim(peerID, rs)
		return
	}
	rel.identity, _ = r.identityOf(peerID)
	out := rtcio.NewRelayStream(rs.ID(), rs.MediaStreamID())
	rel.out = out
	rel.events = eventNames(events)
	ins := make([]*inbound, 0, len(rel.tracks))
	for _, in := range rel.tracks {
		ins = append(ins, in)
	}
	r.mu.Unlock()
	for _, in := range ins {
		r.addTrack(out, in)
	}
	if !r.cfg.ReceiveOnly && !r.publish(key, out, events) {
		return
	}
	r.mu.Lock()
	recordIt := r.recordAll
	r.mu.Unlock()
	if recordIt {
		r.recordLater(rel)
	}
}

// publish relays a stream whose metadata arrived to every client but its
// publisher, under the publisher's event names and arguments.
func (r *Room) publish(key streamKey, out *rtcio.Stream, events map[string][]json.RawMessage) bool {
	if err := r.sock.Relay(out, events); err != nil {
		r.log.Error("sfu: relay stream", "err", err)
		return false
	}
	var to []string
	for _, id := range r.sock.Peers() {
		if id != key.publisher {
			to = append(to, id)
		}
	}
	r.sock.SendStream(out, to...)
	n := key.notice(StreamPublished, out)
	n.Events = eventNames(events)
	r.notify(n)
	r.log.Info("sfu: relaying stream", "publisher", key.publisher, "stream", out.ID(), "msid", key.msid, "events", n.Events, "subscribers", len(to))
	return true
}

// onRemoteTrackEnded removes an ended track from its relayed stream (the
// subscribers see track-removed) and retires the stream when it has no
// track left: untracked, so no later client gets it, and removed from the
// clients that have it.
func (r *Room) onRemoteTrackEnded(peerID string, rs *rtcio.RemoteStream, track *webrtc.TrackRemote, streamEnded bool) {
	key := streamKey{peerID, rs.MediaStreamID()}
	r.mu.Lock()
	rel := r.streams[key]
	if rel != nil && rel.dups[track] {
		// A repeated copy ending changes nothing for the stream.
		delete(rel.dups, track)
		r.mu.Unlock()
		return
	}
	var in *inbound
	if rel != nil {
		in = rel.tracks[track]
		delete(rel.tracks, track)
	}
	if in != nil && rel.out != nil && (r.departing[peerID] || !slices.Contains(r.sock.Peers(), peerID)) {
		// The publisher's connection is gone (not a track it stopped):
		// keep the track's publication and subscribers for a while, the
		// publisher may be reconnecting.
		rel.orphans = append(rel.orphans, in)
		if len(rel.tracks) == 0 {
			rel.orphanedAt = time.Now()
			if r.departing[peerID] {
				// Closed because its socket left and its media went
				// silent: the wait for a reconnect began with the silence.
				rel.orphanedAt = time.Unix(0, in.lastPacket.Load())
			}
		}
		r.mu.Unlock()
		return
	}
	retire := rel != nil && (streamEnded || len(rel.tracks) == 0)
	if retire {
		delete(r.streams, key)
	}
	r.mu.Unlock()
	if in == nil {
		return
	}
	if rel.out != nil {
		rel.out.RemoveTrack(in.fwd)
	}
	r.forgetSpeaker(key, in)
	in.close()
	if retire && rel.out != nil {
		r.sock.UntrackStream(rel.out)
		r.sock.RemoveStream(rel.out)
		r.notify(key.notice(StreamUnpublished, rel.out))
		r.log.Info("sfu: stream ended", "publisher", peerID, "stream", rel.out.ID())
	}
}
