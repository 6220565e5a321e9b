package sfu

import (
	"context"
	"encoding/json"

	"github.com/rtcio-gateway/rtcio-gateway/rtcio"
)

// replayTo gives a client that just connected every live stream whose
// publisher still tracks it, each on its own so that a silent publisher
// holds up nothing else.
func (r *Room) replayTo(clientID string) {
	// A stream's key changes when a reconnected publisher adopts it, so
	// each is read under the lock and the goroutines use their copy.
	type candidate struct {
		key streamKey
		out *rtcio.Stream
	}
	r.mu.Lock()
	var candidates, untracked []candidate
	for _, rel := range r.streams {
		if rel.out == nil || rel.key.publisher == clientID || len(rel.tracks) == 0 {
			continue
		}
		if rel.untracked {
			untracked = append(untracked, candidate{rel.key, rel.out})
		} else {
			candidates = append(candidates, candidate{rel.key, rel.out})
		}
	}
	r.mu.Unlock()
	for _, rel := range untracked {
		n := rel.key.notice(StreamNotReplayed, rel.out)
		n.Client = clientID
		r.notify(n)
	}
	for _, rel := range candidates {
		r.loops.Add(1)
		go func() {
			defer r.loops.Done()
			events, err := r.metadata.do(rel.key, func() (map[string][]json.RawMessage, error) {
				ctx, cancel := context.WithTimeout(r.ctx, r.cfg.MetadataWait)
				defer cancel()
				return r.sock.RequestMetadata(ctx, rel.key.publisher, rel.key.msid)
			})
			if err != nil {
				r.log.Info("sfu: not replaying stream the publisher no longer confirms", "client", clientID, "publisher", rel.key.publisher, "stream", rel.out.ID(), "err", err)
				n := rel.key.notice(StreamNotReplayed, rel.out)
				n.Client = clientID
				r.notify(n)
				return
			}
			if err := r.sock.Relay(rel.out, events); err != nil {
				r.log.Warn("sfu: refresh relayed events", "err", err)
				return
			}
			r.sock.SendStream(rel.out, clientID)
			n := rel.key.notice(StreamReplayed, rel.out)
			n.Client, n.Events = clientID, eventNames(events)
			r.notify(n)
			r.log.Info("sfu: replayed stream", "client", clientID, "publisher", rel.key.publisher, "stream", rel.out.ID(), "events", eventNames(events))
		}()
	}
}

// answerLink answers another gateway peer's metadata request for a stream
// this room relays: it replays the stream to its own late joiners, so the
// answer must be what the publisher says now, not what it said when the
// stream was first relayed: a stream the publisher untracked gets no
// answer, one it emitted again gets its new events. A request from a
// client is answered from the stored events (they were fresh when the
// stream was sent to it).
func (r *Room) answerLink(peerID string, st *rtcio.Stream, answer func(map[string][]json.RawMessage)) bool {
	if !r.cfg.isLink(peerID) {
		return false
	}
	r.mu.Lock()
	var key streamKey
	found := false
	for _, rel := range r.streams {
		if rel.out == st {
			key, found = rel.key, true
			break
		}
	}
	r.mu.Unlock()
	if !found || key.publisher == peerID {
		// Gone meanwhile, or the link's own: stay silent.
		return true
	}
	r.loops.Add(1)
	go func() {
		defer r.loops.Done()
		events, err := r.metadata.do(key, func() (map[string][]json.RawMessage, error) {
			ctx, cancel := context.WithTimeout(r.ctx, r.cfg.MetadataWait)
			defer cancel()
			return r.sock.RequestMetadata(ctx, key.publisher, key.msid)
		})
		if err != nil {
			r.log.Info("sfu: not confirming to a link a stream the publisher no longer confirms", "link", peerID, "publisher", key.publisher, "stream", st.ID(), "err", err)
			return
		}
		if err := r.sock.Relay(st, events); err != nil {
			r.log.Warn("sfu: refresh relayed events", "err", err)
			return
		}
		answer(events)
	}()
	return true
}
