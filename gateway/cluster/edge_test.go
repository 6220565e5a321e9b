package cluster_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/rtcio-gateway/rtcio-gateway/gateway/cluster"
	"github.com/rtcio-gateway/rtcio-gateway/internal/testenv"
)

// TestAssignEdge: with a limit of 2 clients per node, the origin (the
// media lease holder) serves the first two; the next ones go to a new edge
// placed on the least-loaded live node other than the origin (its lease in
// that node's name, which can adopt it), which is filled before another
// edge is placed; with every node full the origin takes the client past
// the limit. Leaving frees the place, an emptied edge disappears from the
// tree, and the clients of an edge whose lease is gone stay apart from a
// later edge on the same node.
func TestAssignEdge(t *testing.T) {
	addr := testenv.StartRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	ctx := context.Background()
	const ttl = 5 * time.Second // long: this test never waits for a lapse

	nodes := []*loadedNode{runLoaded(t, addr, "n1"), runLoaded(t, addr, "n2"), runLoaded(t, addr, "n3")}
	n1, n2, n3 := nodes[0], nodes[1], nodes[2]
	// n1 is the least loaded, but it is the origin: never its own edge.
	waitLoads(t, rdb, nodes, 0, 5, 3)
	media, err := n1.c.Claim(ctx, "media:big", ttl)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = media.Release(ctx) }()

	assign := func(c *cluster.Cluster, socket string) cluster.Assignment {
		t.Helper()
		a, err := c.AssignEdge(ctx, cluster.EdgeRequest{Room: "big", Socket: socket, MediaLease: "media:big", Limit: 2, TTL: ttl})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	want := func(socket string, got cluster.Assignment, node string, placed, over bool) {
		t.Helper()
		if got.Node != node || got.Placed != placed || got.Over != over || (node == "") != (got.Lease == "") {
			t.Fatalf("%s: %+v, want node %q placed %v over %v", socket, got, node, placed, over)
		}
	}

	want("s1", assign(n2.c, "s1"), "", false, false)
	want("s2", assign(n3.c, "s2"), "", false, false)
	want("s1 again", assign(n3.c, "s1"), "", false, false)
	s3 := assign(n1.c, "s3")
	want("s3", s3, "n3", true, false)
	// The edge lease is n3's to adopt, and nobody else's.
	if _, err := n2.c.Adopt(ctx, cluster.EdgeLeaseName("big", "n3"), s3.Lease, ttl); err == nil {
		t.Fatal("n2 adopted n3's edge lease")
	}
	edge3, err := n3.c.Adopt(ctx, cluster.EdgeLeaseName("big", "n3"), s3.Lease, ttl)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = edge3.Release(ctx) }()
	want("s4", assign(n2.c, "s4"), "n3", false, false)
	s5 := assign(n1.c, "s5")
	want("s5", s5, "n2", true, false)
	edge2, err := n2.c.Adopt(ctx, cluster.EdgeLeaseName("big", "n2"), s5.Lease, ttl)
	if err != nil {
		t.Fatal(err)
	}
	want("s6", assign(n1.c, "s6"), "n2", false, false)
	want("s7", assign(n1.c, "s7"), "", false, true)

	checkTree(t, n1.c, "big", "origin:3:live", "n2:2:live", "n3:2:live")

	// Leaving: the edge's count goes down, and an emptied edge leaves the
	// tree (its node retires it); its place can be taken again.
	for i, s := range []string{"s3", "s4"} {
		a, left, ok, err := n1.c.UnassignEdge(ctx, "big", s)
		if err != nil || !ok || a.Node != "n3" || left != 1-i {
			t.Fatalf("unassign %s: %+v left %d ok %v err %v", s, a, left, ok, err)
		}
	}
	if _, _, ok, err := n1.c.UnassignEdge(ctx, "big", "s3"); ok || err != nil {
		t.Fatalf("unassigned s3 twice: ok %v err %v", ok, err)
	}
	checkTree(t, n1.c, "big", "origin:3:live", "n2:2:live")

	// n2's edge is gone (its node died or left) while its clients are still
	// assigned to it: it takes nobody new, and a new edge on n2 (n3 still
	// holds its lease, retiring) is a different incarnation.
	if err := edge2.Release(ctx); err != nil {
		t.Fatal(err)
	}
	checkTree(t, n1.c, "big", "origin:3:live", "n2:2:dead")
	s8 := assign(n3.c, "s8")
	want("s8", s8, "n2", true, false)
	if s8.Lease == s5.Lease {
		t.Fatalf("the new edge on n2 reuses the dead one's lease %q", s8.Lease)
	}
	checkTree(t, n1.c, "big", "origin:3:live", "n2:2:dead", "n2:1:live")
	if a, left, ok, err := n1.c.UnassignEdge(ctx, "big", "s5"); err != nil || !ok || a.Lease != s5.Lease || left != 1 {
		t.Fatalf("unassign s5 from the dead edge: %+v left %d ok %v err %v", a, left, ok, err)
	}
	checkTree(t, n1.c, "big", "origin:3:live", "n2:1:dead", "n2:1:live")

	// The last one out leaves no key behind.
	for _, s := range []string{"s1", "s2", "s6", "s7", "s8"} {
		if _, _, ok, err := n2.c.UnassignEdge(ctx, "big", s); !ok || err != nil {
			t.Fatalf("unassign %s: ok %v err %v", s, ok, err)
		}
	}
	if n, err := rdb.Exists(ctx, "rtcio:room:big:served", "rtcio:room:big:assign").Result(); err != nil || n != 0 {
		t.Fatalf("%d assignment keys left (%v)", n, err)
	}

	// A bad request is refused, not stored.
	if _, err := n1.c.AssignEdge(ctx, cluster.EdgeRequest{Room: "big", Socket: "s9", MediaLease: "media:big", TTL: ttl}); err == nil {
		t.Fatal("limit 0 accepted")
	}
}

// TestAssignEdgeConcurrent: 12 sockets joining at once through 4 nodes
// with a limit of 3 fill the origin and three edges with exactly 3 each:
// the choice and the count are one script, so no node ends up over the
// limit while another has room.
func TestAssignEdgeConcurrent(t *testing.T) {
	addr := testenv.StartRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	ctx := context.Background()
	const ttl = 5 * time.Second

	nodes := []*loadedNode{runLoaded(t, addr, "n1"), runLoaded(t, addr, "n2"), runLoaded(t, addr, "n3"), runLoaded(t, addr, "n4")}
	waitLoads(t, rdb, nodes, 0, 0, 0, 0)
	media, err := nodes[0].c.Claim(ctx, "media:crowd", ttl)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = media.Release(ctx) }()

	var wg sync.WaitGroup
	var mu sync.Mutex
	placed := map[string]int{}
	for i := range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a, err := nodes[i%4].c.AssignEdge(ctx, cluster.EdgeRequest{Room: "crowd", Socket: fmt.Sprintf("s%d", i), MediaLease: "media:crowd", Limit: 3, TTL: ttl})
			if err != nil || a.Over {
				t.Errorf("s%d: %+v, %v", i, a, err)
				return
			}
			if a.Placed {
				mu.Lock()
				placed[a.Node]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(placed) != 3 || placed["n1"] != 0 || placed["n2"] != 1 || placed["n3"] != 1 || placed["n4"] != 1 {
		t.Errorf("edges placed %v, want one each on n2, n3, n4", placed)
	}
	checkTree(t, nodes[0].c, "crowd", "origin:3:live", "n2:3:live", "n3:3:live", "n4:3:live")
}

// checkTree compares a room's tree with "node:clients:live|dead" rows
// (origin first, then edges by lease value).
func checkTree(t *testing.T, c *cluster.Cluster, room string, want ...string) {
	t.Helper()
	tree, err := c.RoomTree(context.Background(), room)
	if err != nil {
		t.Fatal(err)
	}
	got := make([]string, 0, len(tree))
	for _, s := range tree {
		node, state := s.Node, "dead"
		if node == "" {
			node = "origin"
		}
		if s.Live {
			state = "live"
		}
		got = append(got, fmt.Sprintf("%s:%d:%s", node, s.Clients, state))
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("room tree %v, want %v", got, want)
	}
}

// TestMemberMedia: a member's edge (Media) is stored with its record and
// read back by every node, and a record without one stays as before.
func TestMemberMedia(t *testing.T) {
	addr := testenv.StartRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	ctx := context.Background()
	a, b := node(t, addr, "na"), node(t, addr, "nb")
	if _, _, err := a.Join(ctx, "r", cluster.Member{ID: "plain", Role: "client"}, 0); err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.Join(ctx, "r", cluster.Member{ID: "edged", Role: "client", Media: "nc"}, 0); err != nil {
		t.Fatal(err)
	}
	members, err := a.Members(ctx, "r")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, m := range members {
		got[m.ID] = m.Node + "/" + m.Media
	}
	if len(got) != 2 || got["plain"] != "na/" || got["edged"] != "nb/nc" {
		t.Fatalf("members %v", got)
	}
	raw, err := rdb.HGet(ctx, "rtcio:room:r:members", "plain").Result()
	if err != nil || strings.Contains(raw, "media") {
		t.Fatalf("a member without an edge is stored as %q (%v)", raw, err)
	}
}

// TestReassignOrphans: the clients of an edge whose lease is gone (its
// node died) move to live serving nodes as newcomers would (here: the
// origin's free place, then a new edge on the other node), their member
// records name their new edge, and clients of live nodes stay put. A
// second run moves nobody.
func TestReassignOrphans(t *testing.T) {
	addr := testenv.StartRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	ctx := context.Background()
	const ttl = 5 * time.Second

	nodes := []*loadedNode{runLoaded(t, addr, "n1"), runLoaded(t, addr, "n2"), runLoaded(t, addr, "n3")}
	n1, n2, n3 := nodes[0], nodes[1], nodes[2]
	waitLoads(t, rdb, nodes, 0, 1, 2)
	media, err := n1.c.Claim(ctx, "media:big", ttl)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = media.Release(ctx) }()
	req := cluster.EdgeRequest{Room: "big", MediaLease: "media:big", Limit: 2, TTL: ttl}
	var edge *cluster.Lease
	for i := range 4 {
		req.Socket = fmt.Sprintf("s%d", i)
		a, err := n1.c.AssignEdge(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if a.Placed {
			if edge, err = n2.c.Adopt(ctx, cluster.EdgeLeaseName("big", a.Node), a.Lease, ttl); err != nil {
				t.Fatal(err)
			}
		}
		if _, _, err := n1.c.Join(ctx, "big", cluster.Member{ID: req.Socket, Role: "client", Node: "n1", Media: a.Node}, 0); err != nil {
			t.Fatal(err)
		}
	}
	checkTree(t, n1.c, "big", "origin:2:live", "n2:2:live")
	// One origin client leaves; then n2's edge dies.
	if _, _, _, err := n1.c.UnassignEdge(ctx, "big", "s0"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := n1.c.Leave(ctx, "big", "s0"); err != nil {
		t.Fatal(err)
	}
	if err := edge.Release(ctx); err != nil {
		t.Fatal(err)
	}
	moved, err := n3.c.ReassignOrphans(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, m := range moved {
		got[m.Socket] = fmt.Sprintf("%s/%v", m.Node, m.Placed)
	}
	// n2 still publishes load 1 and has no edge lease: the least-loaded
	// node for the new edge.
	if len(got) != 2 || got["s2"] != "/false" || got["s3"] != "n2/true" {
		t.Fatalf("moved %v, want s2 to the origin and s3 to a new edge on n2", got)
	}
	members, err := n1.c.Members(ctx, "big")
	if err != nil {
		t.Fatal(err)
	}
	media2 := map[string]string{}
	for _, m := range members {
		media2[m.ID] = m.Node + "/" + m.Media
	}
	if fmt.Sprint(media2) != "map[s1:n1/ s2:n1/ s3:n1/n2]" {
		t.Fatalf("member records %v", media2)
	}
	checkTree(t, n1.c, "big", "origin:2:live", "n2:1:live")
	if again, err := n1.c.ReassignOrphans(ctx, req); err != nil || len(again) != 0 {
		t.Fatalf("second run moved %v (%v)", again, err)
	}

	// Redis forgot the counts (restarted empty; the nodes wrote the
	// member records back): they are rebuilt from the records, nobody
	// moves, and a newcomer finds the origin full as before.
	if err := rdb.Del(ctx, "rtcio:room:big:served", "rtcio:room:big:assign").Err(); err != nil {
		t.Fatal(err)
	}
	if moved, err := n1.c.ReassignOrphans(ctx, req); err != nil || len(moved) != 0 {
		t.Fatalf("after the loss, moved %v (%v)", moved, err)
	}
	checkTree(t, n1.c, "big", "origin:2:live", "n2:1:live")
	req.Socket = "s9"
	if a, err := n1.c.AssignEdge(ctx, req); err != nil || a.Node != "n2" || a.Placed {
		t.Fatalf("newcomer after the rebuild: %+v (%v), want n2's edge", a, err)
	}
}
