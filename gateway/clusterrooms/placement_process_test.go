package clusterrooms_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/rtcio-gateway/rtcio-gateway/internal/testenv"
)

// hostedRoom waits until room has exactly one gateway peer, on the node
// holding its media lease, and returns that node.
func (c *testCluster) hostedRoom(ctx context.Context, r *redis.Client, room string) string {
	c.t.Helper()
	for {
		g, err := gatewayMembers(ctx, r, room)
		if err != nil {
			c.t.Fatal(err)
		}
		if len(g) > 1 {
			c.t.Fatalf("room %s: gateway peers on %v", room, g)
		}
		if len(g) == 1 && g[0] == leaseHolder(ctx, r, room) {
			return g[0]
		}
		if ctx.Err() != nil {
			c.t.Fatalf("room %s: gateway peers on %v, lease held by %q", room, g, leaseHolder(ctx, r, room))
		}
		time.Sleep(20 * time.Millisecond) // polling Redis: nothing to wait on
	}
}

// waitPublishedLoads waits until every node in want publishes exactly its
// count of hosted rooms as its load (each room has one client, so counts
// one), and every other node publishes none.
func (c *testCluster) waitPublishedLoads(ctx context.Context, r *redis.Client, want map[string]int) {
	c.t.Helper()
	for {
		ok := true
		for _, id := range c.ids {
			v, err := r.Get(ctx, "rtcio:node:"+id+":load").Result()
			n, live := want[id]
			switch {
			case !live && errors.Is(err, redis.Nil):
			case live && err == nil && v == strconv.Itoa(n):
			default:
				ok = false
			}
		}
		if ok {
			return
		}
		if ctx.Err() != nil {
			c.t.Fatalf("published loads never matched %v", want)
		}
		time.Sleep(20 * time.Millisecond) // the heartbeat has no event to wait on
	}
}

// TestLeastLoadedPlacement: with cluster.placement least-loaded, SFU rooms
// whose clients all connect to node1 are hosted by all three nodes in
// turn (each chosen node adopts the lease and its gateway peer joins and
// offers to the client on node1); after node3 is killed, its rooms and
// every new room go to the two live nodes only, one gateway peer each.
func TestLeastLoadedPlacement(t *testing.T) {
	c := startClusterOf(t, "sfu", 3, "cluster.placement=least-loaded",
		"cluster.media_lease_ttl=1s", "cluster.heartbeat=200ms", "cluster.node_ttl=1s",
		"signaling.messages_per_second=0")
	js := testenv.StartNodeClients(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	r := c.rdb()
	hosted := map[string]int{"node1": 0, "node2": 0, "node3": 0}
	hostOf := map[string]string{}
	c.waitPublishedLoads(ctx, r, hosted)
	newRoom := func(i int) string {
		room := fmt.Sprintf("ll%d", i)
		client := room + "-c"
		if _, err := js.Connect(client, c.nodes[0].URL, wsOnly(nil)); err != nil {
			t.Fatal(err)
		}
		join(ctx, t, js, client, room)
		// The gateway peer, wherever it runs, offers to the client.
		if _, err := js.WaitEvent(ctx, client, "#rtcio:message", nil); err != nil {
			t.Fatalf("room %s: no offer from its gateway peer: %v", room, err)
		}
		host := c.hostedRoom(ctx, r, room)
		hostOf[room] = host
		hosted[host]++
		// Placement reads the published loads: wait until they show this
		// room, so the next placement is decided on current figures.
		c.waitPublishedLoads(ctx, r, hosted)
		return room
	}
	for i := range 9 {
		newRoom(i)
	}
	t.Logf("9 rooms created from node1, hosted per node: %v", hosted)
	for id, n := range hosted {
		if n != 3 {
			t.Errorf("%s hosts %d rooms, want 3 (least-loaded spreads evenly): %v", id, n, hosted)
		}
	}

	// node3 dies: its load expires, then its leases; node1 (whose clients
	// are in those rooms) places them again, on node1 and node2 only.
	if err := c.nodes[2].Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for room, host := range hostOf {
		if host != "node3" {
			continue
		}
		for {
			g, err := gatewayMembers(ctx, r, room)
			if err != nil {
				t.Fatal(err)
			}
			if h := leaseHolder(ctx, r, room); h != "" && h != "node3" && len(g) == 1 && g[0] == h {
				hosted["node3"]--
				hosted[h]++
				hostOf[room] = h
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("room %s of the dead node3: gateway peers %v, lease %q", room, g, leaseHolder(ctx, r, room))
			}
			time.Sleep(20 * time.Millisecond) // polling Redis: nothing to wait on
		}
	}
	t.Logf("node3 killed: its rooms re-placed after %v, hosted per node: %v", time.Since(start).Round(time.Millisecond), hosted)
	delete(hosted, "node3")
	c.waitPublishedLoads(ctx, r, hosted)
	for i := 9; i < 13; i++ {
		room := newRoom(i)
		if hostOf[room] == "node3" {
			t.Fatalf("room %s placed on the dead node3", room)
		}
	}
	t.Logf("4 more rooms after node3 died, hosted per node: %v", hosted)
	if d := hosted["node1"] - hosted["node2"]; d < -1 || d > 1 {
		t.Errorf("live nodes host %v rooms, want within one of each other", hosted)
	}
}

// TestLeastLoadedSkipsDrainingNode: a node shutting down (SIGTERM, still
// serving through its readiness delay, still heartbeating) withdraws its
// load at once, and a new room goes to the busier live node rather than
// to it.
func TestLeastLoadedSkipsDrainingNode(t *testing.T) {
	c := startClusterOf(t, "sfu", 2, "cluster.placement=least-loaded",
		"cluster.heartbeat=200ms", "cluster.node_ttl=1s", "shutdown.readiness_delay=4s", "shutdown.timeout=10s")
	js := testenv.StartNodeClients(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r := c.rdb()
	c.waitPublishedLoads(ctx, r, map[string]int{"node1": 0, "node2": 0})
	joinFromNode1 := func(room string) string {
		if _, err := js.Connect(room+"-c", c.nodes[0].URL, wsOnly(nil)); err != nil {
			t.Fatal(err)
		}
		join(ctx, t, js, room+"-c", room)
		return c.hostedRoom(ctx, r, room)
	}
	if h := joinFromNode1("first"); h != "node1" {
		t.Fatalf("first room hosted by %s, want node1 (a tie goes to the joining node)", h)
	}
	c.waitPublishedLoads(ctx, r, map[string]int{"node1": 1, "node2": 0})
	if err := c.nodes[1].Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	c.waitPublishedLoads(ctx, r, map[string]int{"node1": 1})
	if h := joinFromNode1("second"); h != "node1" {
		t.Fatalf("second room hosted by %s, want node1: node2 is draining", h)
	}
	if n, err := r.Exists(ctx, "rtcio:node:node2:alive").Result(); err != nil || n != 1 {
		t.Fatalf("node2 stopped heartbeating during its readiness delay (%d, %v): the test shows nothing", n, err)
	}
}
