package clusterrooms

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/rtcio-gateway/rtcio-gateway/gateway/cluster"
	"github.com/rtcio-gateway/rtcio-gateway/gateway/signaling"
)

// Cascading (cluster.max_room_peers_per_node): an SFU room whose origin
// (the media lease holder's gateway peer) serves its threshold of clients
// gets edges, further gateway peers of the same room on other nodes, each
// linked to the origin over one peer connection. At each join the
// directory asks package cluster which node serves the client
// (AssignEdge, one Lua script), records it as the member's Media, which
// the signaling's SFU topology pairs on, and when a new edge was placed
// tells its node to adopt the edge lease and start the edge's gateway peer
// (kindEdge). The origin's node moves the clients of dead edges every
// heartbeat (Reassign) and tells their new gateway peer to offer to them
// (kindInvite): they keep their sockets and rejoin nothing.

// Envelope kinds of cascading (see deliver.go).
const (
	kindEdge   = "edge"   // an edge lease placed on the receiver (a hostRequest)
	kindInvite = "invite" // offer to a client moved to the receiver's gateway peer (an inviteRequest)
)

// inviteRequest asks a node's gateway peer of Room to offer to Socket.
type inviteRequest struct {
	Room   string `json:"room"`
	Socket string `json:"socket"`
}

// EdgeHold is a held edge lease: this node is an edge of Room. Releasing
// it forgets the edge, so the node's next gateway peer in the room is an
// origin's again.
type EdgeHold struct {
	*cluster.Lease
	r    *Rooms
	room string
}

// Release frees the edge lease and forgets the edge.
func (h EdgeHold) Release(ctx context.Context) error {
	h.r.mu.Lock()
	if h.r.edges[h.room] == h.Lease {
		delete(h.r.edges, h.room)
	}
	h.r.mu.Unlock()
	return h.Lease.Release(ctx)
}

// CascadeStats counts what cascading did on this node.
type CascadeStats struct {
	// EdgesPlaced are edges this node placed (on any node); OverLimit
	// clients an origin took past the threshold because every node was
	// full; ClientsMoved clients of dead edges this node moved.
	EdgesPlaced, OverLimit, ClientsMoved uint64
}

// Cascade turns cascading on: past limit clients per node, a room's
// clients are served by edges. hostEdge starts an edge's gateway peer
// under the lease this node adopted (edge is this node's id); invite makes
// the room's gateway peer here offer to a client moved to it, and reports
// whether the room has one here. Call it before the node's directory
// starts; limit 0 leaves cascading off.
func (p *Placement) Cascade(limit int, hostEdge func(roomID, edge string, h EdgeHold), invite func(roomID, clientID string) bool) {
	p.edgeLimit, p.hostEdge, p.invite = limit, hostEdge, invite
}

func (p *Placement) cascading() bool { return p != nil && p.edgeLimit > 0 && p.hostEdge != nil }

// OriginLive reports whether roomID's media lease has a holder.
func (p *Placement) OriginLive(ctx context.Context, roomID string) (bool, error) {
	_, _, ok, err := p.r.c.Holder(ctx, MediaLeaseName(roomID))
	return ok, err
}

func (p *Placement) edgeRequest(roomID, socket string) cluster.EdgeRequest {
	return cluster.EdgeRequest{Room: roomID, Socket: socket, MediaLease: MediaLeaseName(roomID), Limit: p.edgeLimit, TTL: p.ttl}
}

// assign chooses the node serving a joining client's media and returns
// it as the member's Media ("" for the origin).
func (r *Rooms) assign(ctx context.Context, roomID, socket string) (string, error) {
	p := r.placement
	a, err := r.c.AssignEdge(ctx, p.edgeRequest(roomID, socket))
	if err != nil {
		return "", err
	}
	if a.Over {
		p.overLimit.Add(1)
		r.log.Warn("every node serves its max_room_peers_per_node clients of the room: the origin takes one more", "room", roomID, "socket", socket)
	}
	if a.Placed {
		p.edgesPlaced.Add(1)
		r.placeEdge(roomID, a)
	}
	return a.Node, nil
}

// unassign takes a client's assignment back (it left the room).
func (r *Rooms) unassign(ctx context.Context, roomID string, m signaling.Member) {
	if !r.placement.cascading() || m.Role != signaling.RoleClient {
		return
	}
	if _, _, _, err := r.c.UnassignEdge(ctx, roomID, m.ID); err != nil {
		r.log.Warn("cannot take back a client's edge assignment", "room", roomID, "socket", m.ID, "error", err)
	}
}

// placeEdge tells a new edge's node to adopt its lease and start its
// gateway peer; on this node it does so itself.
func (r *Rooms) placeEdge(roomID string, a cluster.Assignment) {
	if a.Node == r.c.NodeID() {
		r.adoptEdge(hostRequest{Room: roomID, Lease: a.Lease}, "")
		return
	}
	b, _ := json.Marshal(hostRequest{Room: roomID, Lease: a.Lease})
	if r.bus == nil {
		return
	}
	if err := r.bus.Send(a.Node, kindEdge, b); err != nil {
		// The lease lapses unadopted; the origin moves its clients.
		r.log.Warn("cannot tell a node to serve an edge", "room", roomID, "edge", a.Node, "error", err)
		return
	}
	r.log.Info("SFU room edge placed", "room", roomID, "edge", a.Node)
}

// edgePlaced runs for a kindEdge envelope.
func (r *Rooms) edgePlaced(env cluster.Envelope) {
	req, err := decodeHost(env.Payload)
	if err != nil {
		r.log.Warn("malformed envelope, dropped", "from", env.From, "kind", env.Kind, "error", err)
		return
	}
	r.adoptEdge(req, env.From)
}

// adoptEdge adopts an edge lease placed in this node's name and starts the
// edge's gateway peer.
func (r *Rooms) adoptEdge(req hostRequest, from string) {
	p := r.placement
	if !p.cascading() {
		r.log.Warn("an edge was placed here, but this node does not cascade rooms", "room", req.Room, "from", from)
		return
	}
	r.adopt(cluster.EdgeLeaseName(req.Room, r.c.NodeID()), req.Lease, from, func(_ context.Context, l *cluster.Lease) {
		r.mu.Lock()
		r.edges[req.Room] = l
		r.mu.Unlock()
		p.hostEdge(req.Room, r.c.NodeID(), EdgeHold{Lease: l, r: r, room: req.Room})
	})
}

// edgeOf is the Media of this node's gateway peer joining roomID: this
// node's id when it is an edge of the room, else "" (the origin).
func (r *Rooms) edgeOf(roomID string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.edges[roomID] != nil {
		return r.c.NodeID()
	}
	return ""
}

// becameOrigin forgets that this node is an edge of roomID: it took the
// room's media lease (the origin died, and its edge closed first), so its
// next gateway peer there is the origin's, though the old edge's lease may
// not be released yet.
func (r *Rooms) becameOrigin(roomID string) {
	r.mu.Lock()
	delete(r.edges, roomID)
	r.mu.Unlock()
}

// Reassign moves the clients of the dead edges of rooms (the SFU rooms
// whose origin this node hosts) to live gateway peers, and has those offer
// to them. The gateway calls it every heartbeat.
func (r *Rooms) Reassign(ctx context.Context, rooms []string) {
	p := r.placement
	if !p.cascading() {
		return
	}
	for _, roomID := range rooms {
		moved, err := r.c.ReassignOrphans(ctx, p.edgeRequest(roomID, ""))
		if err != nil {
			r.log.Warn("cannot move the clients of a dead edge", "room", roomID, "error", err)
			continue
		}
		for _, mv := range moved {
			p.clientsMoved.Add(1)
			r.log.Info("client of a dead edge moved", "room", roomID, "socket", mv.Socket, "to", mv.Node, "placed", mv.Placed)
			switch {
			case mv.Placed:
				// The new edge's gateway peer pairs with it at its join.
				p.edgesPlaced.Add(1)
				r.placeEdge(roomID, mv.Assignment)
			case mv.Node == "" || mv.Node == r.c.NodeID():
				p.invite(roomID, mv.Socket)
			default:
				r.sendInvite(mv.Node, inviteRequest{Room: roomID, Socket: mv.Socket})
			}
		}
	}
}

func (r *Rooms) sendInvite(node string, req inviteRequest) {
	b, _ := json.Marshal(req)
	if r.bus == nil {
		return
	}
	if err := r.bus.Send(node, kindInvite, b); err != nil {
		r.log.Warn("cannot ask an edge to offer to a moved client", "room", req.Room, "edge", node, "error", err)
	}
}

// decodeInvite reads an invite request; anything malformed is an error.
func decodeInvite(payload []byte) (inviteRequest, error) {
	var req inviteRequest
	if err := json.Unmarshal(payload, &req); err != nil {
		return req, fmt.Errorf("invite request: %w", err)
	}
	if req.Room == "" || len(req.Room) > maxHostRoom || req.Socket == "" || len(req.Socket) > maxHostRoom {
		return req, fmt.Errorf("invite request: no room or no socket")
	}
	return req, nil
}

// invited runs for a kindInvite envelope.
func (r *Rooms) invited(env cluster.Envelope) {
	req, err := decodeInvite(env.Payload)
	if err != nil {
		r.log.Warn("malformed envelope, dropped", "from", env.From, "kind", env.Kind, "error", err)
		return
	}
	if p := r.placement; p.cascading() && !p.invite(req.Room, req.Socket) {
		r.log.Info("asked to offer to a client of a room without a gateway peer here", "room", req.Room, "socket", req.Socket, "from", env.From)
	}
}

// Cascade returns the cascading counters.
func (r *Rooms) Cascade() CascadeStats {
	p := r.placement
	if p == nil {
		return CascadeStats{}
	}
	return CascadeStats{EdgesPlaced: p.edgesPlaced.Load(), OverLimit: p.overLimit.Load(), ClientsMoved: p.clientsMoved.Load()}
}
