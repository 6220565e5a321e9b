package clusterrooms

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/rtcio-gateway/rtcio-gateway/gateway/cluster"
	"github.com/rtcio-gateway/rtcio-gateway/gateway/signaling"
)

// MediaLeaseName is the lease that names the node hosting an SFU room's
// media.
func MediaLeaseName(roomID string) string { return "media:" + roomID }

// Placement places SFU rooms' media for sfu.Manager (its Placement):
// the node that holds a room's media lease hosts it. With "joining"
// placement the first node whose client joins claims it; with
// "least-loaded" that node takes it in the name of the live node with the
// least load, and tells that node to host it (place.go). Either way a node
// with clients in a room nobody hosts claims it at its next heartbeat.
type Placement struct {
	r           *Rooms
	ttl         time.Duration
	leastLoaded bool
	// host starts a room placed on this node by another one; load is
	// this node's published load. Set by Serve before the node starts.
	host func(roomID string, h MediaHold)
	load func() int
	// adopting counts host requests received and not yet started: they
	// are part of the load this node publishes meanwhile.
	adopting atomic.Int64
	// Cascading (cascade.go): edgeLimit is max_room_peers_per_node (0:
	// off); hostEdge and invite are the SFU manager's.
	edgeLimit                            int
	hostEdge                             func(roomID, edge string, h EdgeHold)
	invite                               func(roomID, clientID string) bool
	edgesPlaced, overLimit, clientsMoved atomic.Uint64
}

// Placement returns the room placement of this node, with media leases of
// ttl; leastLoaded chooses "least-loaded" placement over "joining". The
// node's directory keeps it, to publish the node's load and to take the
// rooms other nodes place here.
func (r *Rooms) Placement(ttl time.Duration, leastLoaded bool) *Placement {
	p := &Placement{r: r, ttl: ttl, leastLoaded: leastLoaded}
	r.placement = p
	return p
}

// MediaHold is a held media lease.
type MediaHold struct{ *cluster.Lease }

// Claim takes roomID's media lease; ok is false when another node has it.
func (p *Placement) Claim(ctx context.Context, roomID string) (MediaHold, bool, error) {
	if p.leastLoaded {
		h, ok, err := p.place(ctx, roomID)
		if ok {
			p.r.becameOrigin(roomID)
		}
		return h, ok, err
	}
	l, err := p.r.c.Claim(ctx, MediaLeaseName(roomID), p.ttl)
	if errors.Is(err, cluster.ErrLeaseHeld) {
		return MediaHold{}, false, nil
	}
	if err != nil {
		return MediaHold{}, false, err
	}
	p.r.becameOrigin(roomID)
	return MediaHold{l}, true, nil
}

// Clients counts roomID's client members on every node; with edge set,
// those the edge serves.
func (p *Placement) Clients(ctx context.Context, roomID, edge string) (int, error) {
	members, err := p.r.c.Members(ctx, roomID)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, m := range members {
		if m.Role == signaling.RoleClient.String() && (edge == "" || m.Media == edge) {
			n++
		}
	}
	return n, nil
}

// LocalRooms lists the SFU rooms this node's clients are in.
func (p *Placement) LocalRooms() []string {
	p.r.mu.Lock()
	defer p.r.mu.Unlock()
	seen := make(map[string]bool)
	var out []string
	for _, ls := range p.r.local {
		if ls.role != signaling.RoleClient {
			continue
		}
		for id := range ls.rooms {
			if seen[id] || p.r.env.Topology == nil || p.r.env.Topology(id).Name() != (signaling.SFU{}).Name() {
				continue
			}
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}
