package sfu

import (
	"encoding/json"
	"time"

	"github.com/rtcio-gateway/rtcio-gateway/gateway/signaling"
	"github.com/rtcio-gateway/rtcio-gateway/rtcio"
)

// A publisher that reconnects (a new socket and peer connection) and
// publishes the same stream again should not look, to its subscribers, like
// a stream that ended and another that began: they would see track-removed,
// a new stream event and new tracks, with a black tile in between. The room
// keeps a departed publisher's streams for AdoptGrace and, when a stream
// with the same RTCIOStream id and MediaStream id arrives, feeds the new
// tracks into the old publications: subscribers keep their tracks, and the
// forwarding plane rewrites the new SSRC, sequence numbers and timestamps
// so that each down-track stays continuous.

// orphanFor finds a departed publisher's stream waiting for adoption. r.mu
// must be held.
//
// A publisher may also reconnect before the gateway noticed that its old
// connection is gone (make before break): a stream with the same ids from
// another connection supersedes the old one, whose tracks become orphans
// at once and whose late packets are ignored.
//
// Any room mate learns a stream's ids (every subscriber receives them), so
// the ids alone prove nothing: the new connection must also be the same
// client (mayContinue). A claim that fails is refused and the claimant's
// stream is not relayed at all (claimed): relayed under ids another
// publisher's stream already has, the subscribers' rtc.io would merge its
// tracks into that stream.
func (r *Room) orphanFor(id, msid, publisher string) (orphan *relayed, claimed bool) {
	who, _ := r.identityOf(publisher)
	for _, rel := range r.streams {
		if rel.out == nil || rel.key.publisher == publisher || (rel.out.ID() != id && rel.key.msid != msid) {
			continue
		}
		if rel.out.ID() != id || rel.key.msid != msid || !(r.mayContinue(rel, who) || r.movedOverLink(rel, publisher)) {
			return nil, true
		}
		if len(rel.tracks) > 0 {
			for track, in := range rel.tracks {
				in.superseded.Store(true)
				rel.orphans = append(rel.orphans, in)
				delete(rel.tracks, track)
			}
			rel.orphanedAt = time.Now()
		}
		if len(rel.orphans) > 0 {
			return rel, false
		}
	}
	return nil, false
}

// identityOf is who a connected client is; ok is false when it is not
// connected (or the room cannot tell).
func (r *Room) identityOf(socketID string) (signaling.Identity, bool) {
	if r.cfg.Identity == nil {
		return signaling.Identity{}, false
	}
	return r.cfg.Identity(socketID)
}

// mayContinue is the publisher-identity rule: a new connection may continue
// rel only as the same client. With authentication that is the same token
// subject, and the old connection may still be up (a reconnect that beat
// the old connection's timeout). Without it the only identity is the
// address, which room mates behind one address share, so the old
// publisher's socket must also be gone: a live publisher's stream is never
// taken over, whoever asks.
func (r *Room) mayContinue(rel *relayed, who signaling.Identity) bool {
	if who.Key == "" || rel.identity != who {
		return false
	}
	if who.Authenticated {
		return true
	}
	_, stillConnected := r.identityOf(rel.key.publisher)
	return !stillConnected
}

// adoptLocked moves fresh's tracks into orphan: each new track of a kind
// the orphan had feeds the orphan's publication; new kinds are added as
// new tracks by continueAdopted. r.mu must be held.
func (r *Room) adoptLocked(orphan, fresh *relayed) {
	delete(r.streams, orphan.key)
	delete(r.streams, fresh.key)
	var unmatched []*inbound
	olds := orphan.orphans
	for _, in := range fresh.tracks {
		matched := false
		for i, old := range olds {
			if old != nil && old.track.Kind() == in.track.Kind() {
				in.adopt(old)
				olds[i] = nil
				matched = true
				break
			}
		}
		if !matched {
			unmatched = append(unmatched, in)
		}
	}
	orphan.key = fresh.key
	orphan.tracks = fresh.tracks
	// Old tracks not matched yet stay orphans: the new connection's other
	// tracks may still be on their way (adoptTrack), or the grace ends.
	orphan.orphans = nil
	for _, old := range olds {
		if old != nil {
			orphan.orphans = append(orphan.orphans, old)
		}
	}
	orphan.pendingNew = unmatched
	r.streams[orphan.key] = orphan
}

// adoptTrack lets a track that arrives after its stream was adopted take
// over an old track of its kind. r.mu must be held.
func (r *Room) adoptTrack(rel *relayed, in *inbound) bool {
	for i, old := range rel.orphans {
		if old.track.Kind() == in.track.Kind() {
			in.adopt(old)
			rel.orphans = append(rel.orphans[:i:i], rel.orphans[i+1:]...)
			return true
		}
	}
	return false
}

// continueAdopted finishes an adoption outside the lock: tracks of kinds
// the old connection did not have are added, tracks it had that the new
// one lacks are removed, and the stream's events are refreshed.
func (r *Room) continueAdopted(publisher string, rel *relayed, events map[string][]json.RawMessage) {
	r.mu.Lock()
	added := rel.pendingNew
	rel.pendingNew = nil
	r.mu.Unlock()
	for _, in := range added {
		r.addTrack(rel.out, in)
	}
	if err := r.sock.Relay(rel.out, events); err != nil {
		r.log.Warn("sfu: refresh adopted stream's events", "err", err)
	}
	var to []string
	for _, id := range r.sock.Peers() {
		if id != publisher {
			to = append(to, id)
		}
	}
	r.sock.SendStream(rel.out, to...)
	r.log.Info("sfu: reconnected publisher continues its stream", "publisher", publisher, "stream", rel.out.ID())
	n := streamKey{publisher, rel.key.msid}.notice(StreamAdopted, rel.out)
	n.Events = eventNames(events)
	r.notify(n)
}

// expired is what the grace period ended for: whole streams whose
// publisher did not come back, and old tracks an adopted stream did not
// get back.
type expired struct {
	rel    *relayed
	tracks []*inbound
	whole  bool
}

// expiredOrphans takes out what waited AdoptGrace in vain.
func (r *Room) expiredOrphans(now time.Time) []expired {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []expired
	for key, rel := range r.streams {
		if len(rel.orphans) == 0 || now.Sub(rel.orphanedAt) < r.cfg.AdoptGrace {
			continue
		}
		e := expired{rel: rel, tracks: rel.orphans, whole: len(rel.tracks) == 0}
		rel.orphans = nil
		if e.whole {
			delete(r.streams, key)
		}
		out = append(out, e)
	}
	return out
}

// retire removes what expired: tracks from the stream's subscribers, and a
// whole stream from every client and from the replay registry.
func (r *Room) retire(e expired) {
	rel := e.rel
	for _, in := range e.tracks {
		rel.out.RemoveTrack(in.fwd)
		in.close()
	}
	if !e.whole {
		return
	}
	r.sock.UntrackStream(rel.out)
	r.sock.RemoveStream(rel.out)
	r.notify(rel.key.notice(StreamUnpublished, rel.out))
	r.log.Info("sfu: stream ended", "publisher", rel.key.publisher, "stream", rel.out.ID())
}

// refuseClaim handles a stream whose ids belong to another publisher's
// stream that this one may not continue: it is not relayed (its packets are
// read and dropped until its publisher stops them), and the attempt is
// logged and counted.
func (r *Room) refuseClaim(publisher string, rs *rtcio.RemoteStream) {
	r.dropped(DropStreamClaim)
	r.log.Warn("sfu: refused a stream whose ids belong to another publisher's stream", "client", publisher, "stream", rs.ID(), "msid", rs.MediaStreamID())
}
