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
