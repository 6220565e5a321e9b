package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/rtcio-gateway/rtcio-gateway/gateway/clusterrooms"
	"github.com/rtcio-gateway/rtcio-gateway/gateway/sfu"
	"github.com/rtcio-gateway/rtcio-gateway/gateway/signaling"
)

// GET /admin/v1/rooms/{room}/tree shows who serves an SFU room's media:
// the origin (the media lease holder), the edges a cascaded room spread to
// (cluster.max_room_peers_per_node), which node serves each client, and
// this node's links (its gateway peer's connections to the room's other
// gateway peers).
//
// On a single node the answer has the same shape, with this node as the
// origin of every client and no edges, rather than a 404: a dashboard
// reads one format whether or not the gateways are clustered. A mesh room,
// or a room nobody is in, is a 404: it has no media tree.
//
// In a cluster the tree is read from Redis in several reads, not one
// atomic snapshot: a client joining meanwhile can be counted in one part
// and not yet in another. It is for looking at, not for deciding on.

// treeTimeout bounds the Redis reads of one request: a Redis that does not
// answer must not hold admin requests (and their connections) for good.
const treeTimeout = 5 * time.Second

// roomTree is the endpoint's answer.
type roomTree struct {
	Room    string          `json:"room"`
	Origin  treeOrigin      `json:"origin"`
	Edges   []treeEdge      `json:"edges"`
	Clients []treeClient    `json:"clients"`
	Links   []sfu.LinkStats `json:"links"`
}

type treeOrigin struct {
	// Node is the media lease holder; "" while nobody holds it (its node
	// died and no other took the room over yet).
	Node    string `json:"node"`
	Clients int    `json:"clients"`
}

type treeEdge struct {
	Node  string `json:"node"`
	Lease string `json:"lease"`
	// Clients are the sockets assigned to the edge; Live is false once
	// its lease is gone (its node died or left) until the origin moves
	// them.
	Clients int  `json:"clients"`
	Live    bool `json:"live"`
}

type treeClient struct {
	ID string `json:"id"`
	// Node is the node the client's signaling is connected to; ServedBy
	// the node whose gateway peer carries its media.
	Node     string `json:"node"`
	ServedBy string `json:"servedBy"`
}

// errNoTree is returned by the tree readers for a room that has none.
var errNoTree = errors.New("no media tree")

// adminTree serves the tree; isSFU is the rooms' topology rule (the one
// the signaling applies), self this node's name on a single node.
func (s *Server) adminTree(isSFU func(string) bool, self string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("room")
		if !isSFU(id) {
			writeJSON(w, http.StatusNotFound, apiError{Code: "not-found", Message: "room " + id + " is not an SFU room: it has no media tree"})
			return
		}
		var (
			tree roomTree
			err  error
		)
		if s.cluster != nil {
			ctx, cancel := context.WithTimeout(r.Context(), treeTimeout)
			defer cancel()
			tree, err = s.cluster.roomTree(ctx, id, s.sfu.Room(id) != nil)
		} else {
			tree, err = s.localTree(id, self)
		}
		switch {
		case errors.Is(err, errNoTree):
			writeJSON(w, http.StatusNotFound, apiError{Code: "not-found", Message: "no SFU room " + id})
			return
		case err != nil:
			s.log.Warn("admin room tree not read", "room", id, "error", err)
			writeJSON(w, http.StatusServiceUnavailable, apiError{Code: "unavailable", Message: err.Error()})
			return
		}
		tree.Links = []sfu.LinkStats{}
		if room := s.sfu.Room(id); room != nil {
			if links := room.Links(); links != nil {
				tree.Links = links
			}
		}
		writeJSON(w, http.StatusOK, tree)
	}
}

// localTree is a single node's tree: every client is served here.
func (s *Server) localTree(id, self string) (roomTree, error) {
	tree := roomTree{Room: id, Origin: treeOrigin{Node: self}, Edges: []treeEdge{}, Clients: []treeClient{}}
	found := s.sfu.Room(id) != nil
	for _, room := range s.signaling.Rooms() {
		if room.ID != id {
			continue
		}
		found = true
		for _, m := range room.Members {
			if m.Role == signaling.RoleGateway.String() {
				continue
			}
			tree.Clients = append(tree.Clients, treeClient{ID: m.ID, Node: self, ServedBy: self})
		}
	}
	if !found {
		return roomTree{}, errNoTree
	}
	tree.Origin.Clients = len(tree.Clients)
	return tree, nil
}

// roomTree reads a room's tree from Redis. hosted tells whether this node
// has a gateway peer in the room: a room Redis forgot (restarted empty)
// still exists while its media flows.
func (n *clusterNode) roomTree(ctx context.Context, id string, hosted bool) (roomTree, error) {
	members, err := n.c.Members(ctx, id)
	if err != nil {
		return roomTree{}, fmt.Errorf("room tree of %s: %w", id, err)
	}
	served, err := n.c.RoomTree(ctx, id)
	if err != nil {
		return roomTree{}, fmt.Errorf("room tree of %s: %w", id, err)
	}
	origin, _, held, err := n.c.Holder(ctx, clusterrooms.MediaLeaseName(id))
	if err != nil {
		return roomTree{}, fmt.Errorf("room tree of %s: %w", id, err)
	}
	if len(members) == 0 && len(served) == 0 && !held && !hosted {
		return roomTree{}, errNoTree
	}
	tree := roomTree{Room: id, Origin: treeOrigin{Node: origin}, Edges: []treeEdge{}, Clients: []treeClient{}}
	for _, m := range members {
		if m.Role == signaling.RoleGateway.String() {
			continue
		}
		by := m.Media
		if by == "" {
			by = origin
		}
		tree.Clients = append(tree.Clients, treeClient{ID: m.ID, Node: m.Node, ServedBy: by})
		if m.Media == "" && len(served) == 0 {
			// No assignment is recorded while the room does not cascade
			// (cluster.max_room_peers_per_node 0): every client is the
			// origin's.
			tree.Origin.Clients++
		}
	}
	for _, sb := range served {
		if sb.Node == "" {
			tree.Origin.Clients = sb.Clients
			continue
		}
		tree.Edges = append(tree.Edges, treeEdge{Node: sb.Node, Lease: sb.Lease, Clients: sb.Clients, Live: sb.Live})
	}
	return tree, nil
}

// nodeName is this node's name as a cluster would know it
// (cluster.node_id, else the host name), for a single node's tree.
func nodeName(id string) string {
	if id != "" {
		return id
	}
	host, err := os.Hostname()
	if err != nil {
		return ""
	}
	return host
}
