package clusterrooms_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/rtcio-gateway/rtcio-gateway/internal/testenv"
)

// gatewayMembers counts room's gateway peers in Redis, and names their
// nodes.
func gatewayMembers(ctx context.Context, r *redis.Client, room string) ([]string, error) {
	raw, err := r.HGetAll(ctx, "rtcio:room:"+room+":members").Result()
	if err != nil {
		return nil, err
	}
	var nodes []string
	for _, v := range raw {
		_, js, _ := strings.Cut(v, "|") // "<seq>|<member JSON>"
		var m struct{ Role, Node string }
		if err := json.Unmarshal([]byte(js), &m); err != nil {
			return nil, err
		}
		if m.Role == "gateway" {
			nodes = append(nodes, m.Node)
		}
	}
	return nodes, nil
}

// leaseHolder is the node holding room's media lease ("" when free).
func leaseHolder(ctx context.Context, r *redis.Client, room string) string {
	v, _ := r.Get(ctx, "rtcio:lease:media:"+room).Result()
	node, _, _ := strings.Cut(v, "|")
	return node
}

// sfuRooms joins two socket.io clients to each of n SFU rooms, on two
// different nodes, and waits until every room has its gateway peer.
func (c *testCluster) sfuRooms(ctx context.Context, js *testenv.NodeClients, n int) []string {
	c.t.Helper()
	rooms := make([]string, n)
	for i := range rooms {
		rooms[i] = fmt.Sprintf("sfu%d", i)
		for k := range 2 {
			node := (i + k) % len(c.nodes)
			client := fmt.Sprintf("%s-%d", rooms[i], k)
			if _, err := js.Connect(client, c.nodes[node].URL, wsOnly(nil)); err != nil {
				c.t.Fatal(err)
			}
			join(ctx, c.t, js, client, rooms[i])
		}
	}
	r := c.rdb()
	for _, room := range rooms {
		for {
			g, err := gatewayMembers(ctx, r, room)
			if err != nil {
				c.t.Fatal(err)
			}
			if len(g) == 1 {
				break
			}
			if ctx.Err() != nil {
				c.t.Fatalf("room %s: gateway peers on %v, want one", room, g)
			}
			time.Sleep(20 * time.Millisecond) // polling Redis: nothing to wait on
		}
	}
	return rooms
}

// TestSFURoomsAcrossNodes is acceptance 5: 50 SFU rooms
// over 3 nodes, each with clients on two nodes. Every room has exactly one
// gateway peer, on the node holding its media lease, at every 200 ms
// sample for 30 s; 10 s after every client left no room or lease key is left.
func TestSFURoomsAcrossNodes(t *testing.T) {
	c := startClusterOf(t, "sfu", 3, "cluster.media_lease_ttl=2s", "signaling.messages_per_second=0")
	js := testenv.StartNodeClients(t)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	rooms := c.sfuRooms(ctx, js, 50)
	r := c.rdb()
	perNode := map[string]int{}
	const samples = 150 // 30 s of 200 ms samples
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for s := range samples {
		for _, room := range rooms {
			g, err := gatewayMembers(ctx, r, room)
			if err != nil {
				t.Fatal(err)
			}
			holder := leaseHolder(ctx, r, room)
			if len(g) != 1 || g[0] != holder {
				t.Fatalf("sample %d, room %s: gateway peers on %v, lease held by %q", s, room, g, holder)
			}
			if s == 0 {
				perNode[holder]++
			}
		}
		<-tick.C // the sampling period
	}
	t.Logf("rooms hosted per node: %v", perNode)
	for _, room := range rooms {
		for k := range 2 {
			if err := js.Disconnect(fmt.Sprintf("%s-%d", room, k)); err != nil {
				t.Fatal(err)
			}
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		keys, err := r.Keys(ctx, "rtcio:*").Result()
		if err != nil {
			t.Fatal(err)
		}
		var left []string
		for _, k := range keys {
			if strings.HasPrefix(k, "rtcio:room:") || strings.HasPrefix(k, "rtcio:lease:") {
				left = append(left, k)
			}
		}
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("10 s after every client left, %d room/lease keys remain, e.g. %v", len(left), left[:min(5, len(left))])
		}
		time.Sleep(100 * time.Millisecond) // polling Redis: nothing to wait on
	}
}

// waitHolder polls until room's media lease is held by a node other than
// old, and returns it.
func waitHolder(ctx context.Context, t *testing.T, r *redis.Client, room, old string) string {
	t.Helper()
	for {
		if h := leaseHolder(ctx, r, room); h != "" && h != old {
			return h
		}
		if ctx.Err() != nil {
			t.Fatalf("room %s: no node took the lease from %s", room, old)
		}
		time.Sleep(20 * time.Millisecond) // polling Redis: nothing to wait on
	}
}

// waitSoleGateway waits until room's only gateway peer is host's, and
// fails the test if that takes more than 2 s from woke (a paused node
// woken then must close its room at once); it returns how long it took.
func waitSoleGateway(ctx context.Context, t *testing.T, r *redis.Client, room, host string, woke time.Time) time.Duration {
	t.Helper()
	for {
		g, err := gatewayMembers(ctx, r, room)
		if err != nil {
			t.Fatal(err)
		}
		if len(g) == 1 && g[0] == host {
			return time.Since(woke)
		}
		if time.Since(woke) > 2*time.Second {
			t.Fatalf("2 s after SIGCONT the room has gateway peers on %v, want only %s", g, host)
		}
		time.Sleep(20 * time.Millisecond) // polling Redis: nothing to wait on
	}
}

// claimedBy waits (5 s at most) until room's media lease is held and
// returns its holder: a join-ok can reach the client before its node's
// join hook has claimed the lease (it runs after the reply), and a read
// right after the join then finds none.
func claimedBy(ctx context.Context, t *testing.T, r *redis.Client, room string) string {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return waitHolder(wctx, t, r, room, "")
}

// nodeIndex is the index of node id in the cluster.
func (c *testCluster) nodeIndex(id string) int {
	c.t.Helper()
	for i, n := range c.ids {
		if n == id {
			return i
		}
	}
	c.t.Fatalf("no node %q", id)
	return -1
}

// TestMediaNodePaused is acceptance 10: SIGSTOP of a room's media node past
// its lease: a live node takes the lease within lease+5 s; on SIGCONT the
// old node finds its lease taken and closes its room (its gateway peer
// leaves) within 2 s.
func TestMediaNodePaused(t *testing.T) {
	c := startClusterOf(t, "sfu", 2, "cluster.media_lease_ttl=1s", "cluster.heartbeat=200ms", "cluster.node_ttl=5s")
	js := testenv.StartNodeClients(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	room := c.sfuRooms(ctx, js, 1)[0]
	r := c.rdb()
	old := leaseHolder(ctx, r, room)
	paused := c.nodes[c.nodeIndex(old)]
	start := time.Now()
	if err := paused.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	newHost := waitHolder(ctx, t, r, room, old)
	took := time.Since(start)
	if took > 6*time.Second {
		t.Errorf("new host after %v, want within lease+5 s", took)
	}
	// Two gateway peers are members now (the paused one cannot leave);
	// waking, the old node must close its room at once.
	woke := time.Now()
	if err := paused.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	closed := waitSoleGateway(ctx, t, r, room, newHost, woke)
	if !strings.Contains(paused.Logs(), "media lease was lost") {
		t.Error("the woken node did not log that it lost the room's lease")
	}
	t.Logf("SIGSTOP of %s: %s took the lease after %v; after SIGCONT the old host's gateway peer left after %v",
		old, newHost, took.Round(time.Millisecond), closed.Round(time.Millisecond))
}

// TestMediaNodeDrain is acceptance 11: SIGTERM of a room's media node: it
// closes its rooms and frees their leases, and a node with clients in them
// takes them over before the drained node has exited
// (shutdown.timeout 5s).
func TestMediaNodeDrain(t *testing.T) {
	c := startClusterOf(t, "sfu", 3, "cluster.heartbeat=200ms")
	js := testenv.StartNodeClients(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rooms := c.sfuRooms(ctx, js, 6)
	r := c.rdb()
	hosts := map[string]string{}
	for _, room := range rooms {
		hosts[room] = leaseHolder(ctx, r, room)
	}
	drained := hosts[rooms[0]]
	start := time.Now()
	if err := c.nodes[c.nodeIndex(drained)].Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	var handed []string
	for _, room := range rooms {
		if hosts[room] != drained {
			continue
		}
		h := waitHolder(ctx, t, r, room, drained)
		handed = append(handed, fmt.Sprintf("%s->%s %v", room, h, time.Since(start).Round(time.Millisecond)))
	}
	if _, exited := c.nodes[c.nodeIndex(drained)].Wait(10 * time.Second); !exited {
		t.Fatal("the drained node did not exit within 10 s")
	}
	for _, room := range rooms {
		if h := leaseHolder(ctx, r, room); h == drained || h == "" {
			t.Errorf("room %s: lease held by %q after the drain", room, h)
		}
	}
	t.Logf("SIGTERM of %s: handed over %v; exited after %v", drained, handed, time.Since(start).Round(time.Millisecond))
}
