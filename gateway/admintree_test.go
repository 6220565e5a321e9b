package gateway_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/rtcio-gateway/rtcio-gateway/config"
	"github.com/rtcio-gateway/rtcio-gateway/gateway/cluster"
	"github.com/rtcio-gateway/rtcio-gateway/internal/gatewaytest"
	"github.com/rtcio-gateway/rtcio-gateway/internal/testenv"
)

// treeAnswer is GET /admin/v1/rooms/{room}/tree, links kept raw so a
// missing list (null) is told apart from an empty one.
type treeAnswer struct {
	Room   string `json:"room"`
	Origin struct {
		Node    string `json:"node"`
		Clients int    `json:"clients"`
	} `json:"origin"`
	Edges []struct {
		Node    string `json:"node"`
		Lease   string `json:"lease"`
		Clients int    `json:"clients"`
		Live    bool   `json:"live"`
	} `json:"edges"`
	Clients []treeClient    `json:"clients"`
	Links   json.RawMessage `json:"links"`
}

type treeClient struct {
	ID       string `json:"id"`
	Node     string `json:"node"`
	ServedBy string `json:"servedBy"`
}

func getTree(t *testing.T, url, room, token string) treeAnswer {
	t.Helper()
	code, body := get(t, url+"/admin/v1/rooms/"+room+"/tree", token)
	if code != http.StatusOK {
		t.Fatalf("tree of %s: %d %s", room, code, body)
	}
	var tree treeAnswer
	if err := json.Unmarshal(body, &tree); err != nil {
		t.Fatalf("tree of %s: %v in %s", room, err, body)
	}
	if tree.Room != room || tree.Edges == nil || tree.Clients == nil || string(tree.Links) != "[]" {
		t.Fatalf("tree of %s: room, edges, clients or links (want []) wrong or missing: %s", room, body)
	}
	return tree
}

// TestAdminRoomTreeSingleNode: without a cluster the tree has this node
// (cluster.node_id) as the origin serving every client, no edges and no
// links; the room's hidden gateway peer is not a client; a room nobody is
// in is a 404.
func TestAdminRoomTreeSingleNode(t *testing.T) {
	cfg := gatewaytest.SFUConfig()
	cfg.Admin.Token = "admin-token-tree"
	cfg.Cluster.NodeID = "solo"
	gw := gatewaytest.StartGateway(t, cfg)
	ann := dialSig(t, gw.URL, "")
	ann.emit(t, "join-room", map[string]any{"roomId": "talk", "name": "ann"})
	ann.wait(t, "join-ok", "roomId", "talk")
	waitSFURoom(t, gw, "talk")

	tree := getTree(t, gw.URL, "talk", cfg.Admin.Token)
	if tree.Origin.Node != "solo" || tree.Origin.Clients != 1 || len(tree.Edges) != 0 ||
		!slices.Equal(tree.Clients, []treeClient{{ann.ID(), "solo", "solo"}}) {
		t.Errorf("tree = %+v, want ann (%s) served by the origin solo", tree, ann.ID())
	}
	if code, body := get(t, gw.URL+"/admin/v1/rooms/nobody/tree", cfg.Admin.Token); code != http.StatusNotFound {
		t.Errorf("tree of an unknown room: %d %s, want 404", code, body)
	}
}

// TestAdminRoomTreeCluster: gateway gw-a cascades rooms past 2 clients per
// node; two more nodes (gw-b, gw-c) are cluster handles in the test that
// heartbeat, and the rooms' other clients are seeded through the cluster
// package as their directories would write them (AssignEdge, then Join
// with the assignment as Media). In room "big", ann joined gw-a for real
// (gw-a is its origin); s2 joins the origin and s3 a live edge. In room
// "far", which gw-b originates, x2 is on an edge whose lease lapsed. The
// tree shows the origin, the edges with their leases, counts and
// liveness, each client's signaling node and serving node (not the
// gateway peer), and gw-a's links (none: no edge gateway peer connects);
// a mesh room, an unknown room and a request without the token are
// refused.
func TestAdminRoomTreeCluster(t *testing.T) {
	addr := testenv.StartRedis(t)
	cfg := gatewaytest.SFUConfig()
	cfg.Admin.Token = "admin-token-tree"
	cfg.Redis.URL = "redis://" + addr + "/0"
	cfg.Cluster.NodeID = "gw-a"
	cfg.Cluster.Heartbeat = 100 * time.Millisecond
	cfg.Cluster.NodeTTL = time.Second
	cfg.Cluster.MaxRoomPeersPerNode = 2
	cfg.Rooms.Topologies = []config.TopologyRule{{Pattern: "mesh-*", Topology: "mesh"}}
	gw := gatewaytest.StartGateway(t, cfg)
	ctx := ctxFor(t, 60*time.Second)
	if err := testenv.WaitReady(ctx, gw.URL, nil); err != nil {
		t.Fatal(err)
	}

	ann := dialSig(t, gw.URL, "")
	ann.emit(t, "join-room", map[string]any{"roomId": "big", "name": "ann"})
	ann.wait(t, "join-ok", "roomId", "big")
	gwPeer := waitSFURoom(t, gw, "big").PeerID()

	nodes := map[string]*cluster.Cluster{}
	for id, load := range map[string]int{"gw-b": 1, "gw-c": 3} {
		nodes[id] = runNode(t, addr, id, load)
	}
	b := nodes["gw-b"]
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	// An edge goes only to a node that is alive and published its load;
	// and never to the origin, which is read from the media lease.
	waitFor(t, "gw-b and gw-c to publish their loads", func() bool {
		n, err := rdb.Exists(ctx, "rtcio:node:gw-b:load", "rtcio:node:gw-c:load").Result()
		return err == nil && n == 2
	})
	waitFor(t, "gw-a to hold big's media lease", func() bool {
		node, _, ok, err := b.Holder(ctx, "media:big")
		return err == nil && ok && node == "gw-a"
	})

	const ttl = 5 * time.Second
	seed := func(room, socket, node string, limit int, ttl time.Duration) cluster.Assignment {
		t.Helper()
		a, err := b.AssignEdge(ctx, cluster.EdgeRequest{Room: room, Socket: socket, MediaLease: "media:" + room, Limit: limit, TTL: ttl})
		if err != nil {
			t.Fatal(err)
		}
		// Join records the calling node as the member's signaling node.
		m := cluster.Member{ID: socket, Name: socket, Role: "client", Media: a.Node}
		if _, _, err := nodes[node].Join(ctx, room, m, 0); err != nil {
			t.Fatal(err)
		}
		return a
	}
	if a := seed("big", "s2", "gw-c", 2, ttl); a.Node != "" {
		t.Fatalf("s2 assigned %+v, want the origin", a)
	}
	s3 := seed("big", "s3", "gw-c", 2, ttl)
	if !s3.Placed || nodes[s3.Node] == nil {
		t.Fatalf("s3 assigned %+v, want a new edge on gw-b or gw-c", s3)
	}
	// The edge's node adopts its lease, as it would when told.
	edge, err := nodes[s3.Node].Adopt(ctx, cluster.EdgeLeaseName("big", s3.Node), s3.Lease, ttl)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = edge.Release(context.Background()) })

	tree := getTree(t, gw.URL, "big", cfg.Admin.Token)
	want := []treeClient{{ann.ID(), "gw-a", "gw-a"}, {"s2", "gw-c", "gw-a"}, {"s3", "gw-c", s3.Node}}
	if !slices.Equal(tree.Clients, want) {
		t.Errorf("big's clients = %v, want %v (not the gateway peer %s)", tree.Clients, want, gwPeer)
	}
	if tree.Origin.Node != "gw-a" || tree.Origin.Clients != 2 || len(tree.Edges) != 1 ||
		tree.Edges[0].Node != s3.Node || tree.Edges[0].Lease != s3.Lease || tree.Edges[0].Clients != 1 || !tree.Edges[0].Live {
		t.Errorf("big's tree = %+v, want origin gw-a with 2 clients, one live edge %s with 1", tree, s3.Lease)
	}

	// "far": gw-b is the origin; x2's edge is never adopted, so its lease
	// lapses (nobody moves x2: only the origin's node does, and gw-b is
	// the test's).
	far, err := b.Claim(ctx, "media:far", ttl)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = far.Release(context.Background()) })
	seed("far", "x1", "gw-c", 1, ttl)
	x2 := seed("far", "x2", "gw-b", 1, 300*time.Millisecond)
	if !x2.Placed {
		t.Fatalf("x2 assigned %+v, want a new edge", x2)
	}
	waitFor(t, "x2's edge lease to lapse", func() bool {
		tree = getTree(t, gw.URL, "far", cfg.Admin.Token)
		return len(tree.Edges) == 1 && !tree.Edges[0].Live
	})
	if tree.Origin.Node != "gw-b" || tree.Origin.Clients != 1 || tree.Edges[0].Node != x2.Node || tree.Edges[0].Lease != x2.Lease ||
		tree.Edges[0].Clients != 1 || !slices.Equal(tree.Clients, []treeClient{{"x1", "gw-c", "gw-b"}, {"x2", "gw-b", x2.Node}}) {
		t.Errorf("far's tree = %+v, want origin gw-b serving x1, x2 on the dead edge %s", tree, x2.Lease)
	}

	// A mesh room has members but no media tree.
	if _, _, err := b.Join(ctx, "mesh-1", cluster.Member{ID: "m1", Role: "client"}, 0); err != nil {
		t.Fatal(err)
	}
	for _, room := range []string{"mesh-1", "nobody"} {
		if code, body := get(t, gw.URL+"/admin/v1/rooms/"+room+"/tree", cfg.Admin.Token); code != http.StatusNotFound {
			t.Errorf("tree of %s: %d %s, want 404", room, code, body)
		}
	}
	if code, _ := get(t, gw.URL+"/admin/v1/rooms/big/tree", ""); code != http.StatusUnauthorized {
		t.Errorf("tree without the token: %d, want 401", code)
	}
}

// runNode is a cluster node that only heartbeats with a fixed load, until
// the test ends.
func runNode(t *testing.T, addr, id string, load int) *cluster.Cluster {
	t.Helper()
	c, err := cluster.Open(cluster.Config{URL: "redis://" + addr + "/0", NodeID: id, Heartbeat: 100 * time.Millisecond, NodeTTL: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var reaped atomic.Uint64
	go func() {
		defer close(done)
		c.RunNode(ctx, cluster.NodeHooks{Load: func() int { return load }}, &reaped)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		_ = c.Close()
	})
	return c
}
