package clusterrooms

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/rtcio-gateway/rtcio-gateway/gateway/cluster"
)

// Least-loaded placement: the node whose client finds an SFU room without
// a host takes the room's media lease in the name of the live node with
// the least load (one Lua script, cluster.Place), and sends that node a
// "host" envelope through its inbox; the chosen node adopts the lease and
// starts the room's gateway peer, which joins the room and offers to its
// clients wherever their sockets are. The lease names one node from the
// moment it is placed, so there are never two hosts; a chosen node that
// does not adopt it (it died, the envelope was lost) lets it lapse after
// the lease's TTL, and a node with clients in the room places it again at
// its next heartbeat.

// hostRequest is a "host" envelope's payload: the room, and the media
// lease's value placed in the receiver's name.
type hostRequest struct {
	Room  string `json:"room"`
	Lease string `json:"lease"`
}

// maxHostRoom bounds a host request's room name (the signaling server's
// own bound is smaller; this one only keeps a hostile envelope small).
const maxHostRoom = 1024

// decodeHost reads a host request; anything malformed is an error.
func decodeHost(payload []byte) (hostRequest, error) {
	var h hostRequest
	if err := json.Unmarshal(payload, &h); err != nil {
		return h, fmt.Errorf("host request: %w", err)
	}
	if h.Room == "" || len(h.Room) > maxHostRoom || !strings.Contains(h.Lease, "|") {
		return h, errors.New("host request: no room or no lease")
	}
	return h, nil
}

// Serve makes the placement take the rooms other nodes place here (host
// starts one under its adopted lease) and, for least-loaded placement,
// publish this node's load with every heartbeat (load; negative: the node
// takes no new rooms). Call it before the node's directory starts.
func (p *Placement) Serve(host func(roomID string, h MediaHold), load func() int) {
	p.host, p.load = host, load
}

// publishedLoad is the node's load hook: nil (nothing published) unless
// the placement is served and least-loaded or cascading (edges go to the
// least-loaded node).
func (p *Placement) publishedLoad() func() int {
	if p == nil || !(p.leastLoaded || p.edgeLimit > 0) || p.load == nil {
		return nil
	}
	return func() int {
		l := p.load()
		if l < 0 {
			return l
		}
		// A room placed here but not started yet counts already, or
		// a heartbeat in between would publish a figure without it.
		return l + int(p.adopting.Load())
	}
}

// place takes roomID's free media lease in the name of the least-loaded
// live node. ok is true when that is this node; another node is told to
// host the room.
func (p *Placement) place(ctx context.Context, roomID string) (MediaHold, bool, error) {
	pl, err := p.r.c.Place(ctx, MediaLeaseName(roomID), p.ttl)
	if err != nil {
		return MediaHold{}, false, err
	}
	if pl.Lease != nil {
		return MediaHold{pl.Lease}, true, nil
	}
	if pl.Held {
		return MediaHold{}, false, nil
	}
	b, _ := json.Marshal(hostRequest{Room: roomID, Lease: pl.Value})
	if p.r.bus == nil {
		return MediaHold{}, false, errUnavailable
	}
	if err := p.r.bus.Send(pl.Node, kindHost, b); err != nil {
		// The lease lapses unadopted and is placed again.
		return MediaHold{}, false, fmt.Errorf("tell %s to host room %s: %w", pl.Node, roomID, err)
	}
	p.r.log.Info("SFU room placed on another node", "room", roomID, "host", pl.Node)
	return MediaHold{}, false, nil
}

// hostPlaced runs for a host envelope: it adopts the lease another node
// placed in this node's name and starts the room (off the inbox reader:
// starting a room's gateway peer goes through Redis and the bus).
func (r *Rooms) hostPlaced(env cluster.Envelope) {
	req, err := decodeHost(env.Payload)
	if err != nil {
		r.log.Warn("malformed envelope, dropped", "from", env.From, "kind", env.Kind, "error", err)
		return
	}
	p := r.placement
	if p == nil {
		r.log.Warn("an SFU room was placed here, but this node places no rooms", "room", req.Room, "from", env.From)
		return
	}
	r.adopt(MediaLeaseName(req.Room), req.Lease, env.From, func(ctx context.Context, l *cluster.Lease) {
		r.becameOrigin(req.Room)
		h := MediaHold{l}
		if p.host == nil {
			_ = h.Release(ctx)
			return
		}
		p.host(req.Room, h)
	})
}

// adopt adopts a lease another node placed in this node's name and hands
// it to start, off the caller's goroutine (the inbox reader's: starting a
// gateway peer goes through Redis and the bus). Until then it counts in
// the load this node publishes.
func (r *Rooms) adopt(name, value, from string, start func(context.Context, *cluster.Lease)) {
	p := r.placement
	p.adopting.Add(1)
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer p.adopting.Add(-1)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		l, err := r.c.Adopt(ctx, name, value, p.ttl)
		if err != nil {
			r.log.Warn("cannot adopt a lease placed here", "lease", name, "from", from, "error", err)
			return
		}
		start(ctx, l)
	}()
}
