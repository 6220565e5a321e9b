package sfu

import (
	"time"

	"github.com/rtcio-gateway/rtcio-gateway/gateway/signaling"
)

// onSignal watches the room's signaling for publishers whose socket left.
func (r *Room) onSignal(event string, args []any) {
	if event != signaling.EventPeerLeft {
		return
	}
	obj, _ := firstObject(args)
	id, _ := obj["id"].(string)
	if id == "" {
		return
	}
	r.mu.Lock()
	r.left[id] = time.Now()
	r.mu.Unlock()
}

// watchDepartures closes the peer of a publisher whose socket left once its
// media stopped too. As in a mesh, media that keeps flowing keeps being
// forwarded; but where a mesh notices a closed page only when the
// connection times out (8 to 10 s), the gateway acts as soon as the socket
// is gone and the media is silent.
func (r *Room) watchDepartures() {
	defer r.loops.Done()
	tick := time.NewTicker(r.cfg.MediaStopGrace / 4)
	defer tick.Stop()
	for {
		select {
		case <-r.ctx.Done():
			return
		case now := <-tick.C:
			for _, id := range r.silentDepartures(now) {
				r.log.Info("sfu: publisher left and its media stopped", "publisher", id)
				r.sock.Peer(id).Close()
			}
			for _, e := range r.expiredOrphans(now) {
				r.retire(e)
			}
			r.closeUnconnected(now)
		}
	}
}

func (r *Room) silentDepartures(now time.Time) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for id, at := range r.left {
		if now.Sub(at) < r.cfg.MediaStopGrace {
			continue
		}
		silent := true
		for key, rel := range r.streams {
			if key.publisher != id {
				continue
			}
			for _, in := range rel.tracks {
				if in.idleFor(now) < r.cfg.MediaStopGrace {
					silent = false
				}
			}
		}
		if silent {
			out = append(out, id)
			delete(r.left, id)
			r.departing[id] = true
		}
	}
	return out
}

// dropClient hands a client that left the room to the departure watch
// instead of closing its connection at once: as in a mesh, a publisher
// whose socket.io connection dropped while its media keeps flowing keeps
// being forwarded, and its connection closes once its media is silent
// (after MediaStopGrace for a client that sends nothing).
func (r *Room) dropClient(id string) {
	r.relayLimit.forget(id)
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.moved, id)
	if _, ok := r.left[id]; !ok {
		r.left[id] = time.Now()
	}
}

func firstObject(args []any) (map[string]any, bool) {
	if len(args) == 0 {
		return nil, false
	}
	m, ok := args[0].(map[string]any)
	return m, ok
}
