package clusterrooms_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/rtcio-gateway/rtcio-gateway/internal/testenv"
)

// cluster is a test cluster: a real redis-server and gateway processes
// on loopback ports, each its own node.
type testCluster struct {
	t     *testing.T
	redis *testenv.Redis
	nodes []*testenv.GatewayProcess
	ids   []string
	topo  string   // rooms' topology
	extra []string // --set keys of every node
}

// startCluster runs n gateway processes of one cluster on a fresh Redis,
// with extra --set keys for every node, and waits until each is ready.
func startCluster(t *testing.T, n int, extra ...string) *testCluster {
	t.Helper()
	return startClusterOf(t, "mesh", n, extra...)
}

// startClusterOf is startCluster with rooms of topology topo.
func startClusterOf(t *testing.T, topo string, n int, extra ...string) *testCluster {
	t.Helper()
	bin := gatewayBin.get(t)
	c := &testCluster{t: t, redis: testenv.StartRedisServer(t), topo: topo, extra: extra}
	for i := range n {
		c.addNode(bin, fmt.Sprintf("node%d", i+1))
	}
	return c
}

// addNode runs one more gateway process of the cluster, node id, with
// the cluster's --set keys and extra ones, and returns its index.
func (c *testCluster) addNode(bin, id string, extra ...string) int {
	c.t.Helper()
	args := []string{"--topology", c.topo,
		"--set", "redis.url=redis://" + c.redis.Addr() + "/0",
		"--set", "cluster.node_id=" + id,
		"--set", "demo.enabled=false"}
	for _, kv := range append(slices.Clone(c.extra), extra...) {
		args = append(args, "--set", kv)
	}
	c.nodes = append(c.nodes, testenv.RunGateway(c.t, bin, args...))
	c.ids = append(c.ids, id)
	return len(c.nodes) - 1
}

// rdb is a Redis client for the test's own inspection.
func (c *testCluster) rdb() *redis.Client {
	r := redis.NewClient(&redis.Options{Addr: c.redis.Addr(), MaxRetries: -1})
	c.t.Cleanup(func() { _ = r.Close() })
	return r
}

// status is the HTTP status of path on node i, or 0 when it does not answer.
func (c *testCluster) status(i int, path string) int {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.nodes[i].URL+path, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// waitStatus polls path on node i until it answers want; it returns how
// long that took.
func (c *testCluster) waitStatus(i int, path string, want int, within time.Duration) time.Duration {
	c.t.Helper()
	start := time.Now()
	for c.status(i, path) != want {
		if time.Since(start) > within {
			c.t.Fatalf("%s of %s: not %d within %v", path, c.ids[i], want, within)
		}
		time.Sleep(20 * time.Millisecond) // polling an HTTP probe: nothing to wait on
	}
	return time.Since(start)
}

// wsOnly are socket.io-client options for one TCP connection per session
// (what the per-connection sticky proxy keeps on one node).
func wsOnly(extra map[string]any) map[string]any {
	opts := map[string]any{"transports": []string{"websocket"}}
	for k, v := range extra {
		opts[k] = v
	}
	return opts
}

func count(evs []testenv.Event, name string, match func([]any) bool) int {
	n := 0
	for _, e := range evs {
		if e.Name == name && (match == nil || match(e.Args)) {
			n++
		}
	}
	return n
}

// TestThirtyClientsThreeNodes is acceptance 3: 30 socket.io-client 4.8
// clients, 10 per node, join one mesh room at once, 20 rounds. Each sees
// exactly 29 user-connected, the room gets exactly 435 init-offers (one
// per pair), and each departure gives every remaining member exactly one
// peer-left and one user-disconnected.
func TestThirtyClientsThreeNodes(t *testing.T) {
	c := startCluster(t, 3, "signaling.messages_per_second=0")
	js := testenv.StartNodeClients(t)
	const n, rounds = 30, 20
	for round := range rounds {
		room := fmt.Sprintf("round-%d", round)
		names := make([]string, n)
		ids := make([]string, n)
		for i := range n {
			names[i] = fmt.Sprintf("r%d-c%d", round, i)
			id, err := js.Connect(names[i], c.nodes[i%3].URL, wsOnly(nil))
			if err != nil {
				t.Fatal(err)
			}
			ids[i] = id
		}
		start := time.Now()
		for i := range n {
			if err := js.Emit(names[i], "join-room", map[string]any{"roomId": room, "name": names[i]}); err != nil {
				t.Fatal(err)
			}
		}
		if d := time.Since(start); d > time.Second {
			t.Logf("round %d: the 30 joins took %v to send (more than 1 s)", round, d)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		for i := range n {
			if _, err := js.WaitEvent(ctx, names[i], "join-ok", has("roomId", room)); err != nil {
				t.Fatal(err)
			}
			for range n - 1 {
				if _, err := js.WaitEvent(ctx, names[i], "user-connected", nil); err != nil {
					t.Fatal(err)
				}
			}
		}
		// Every pair is told once who offers to whom. Which member of a
		// pair gets it depends on the join order in Redis, so the test
		// polls the total (its own logs) until all 435 are in.
		offers := func() int {
			total := 0
			for i := range n {
				total += count(js.Events(names[i]), "#rtcio:init-offer", nil)
			}
			return total
		}
		for deadline := time.Now().Add(30 * time.Second); offers() < 435 && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond) // polling the clients' logs
		}
		total := offers()
		pair := make(map[[2]string]int)
		for i := range n {
			for _, e := range js.Events(names[i]) {
				if e.Name == "#rtcio:init-offer" {
					src, _ := field(e.Args, "source").(string)
					pair[[2]string{min(src, ids[i]), max(src, ids[i])}]++
				}
			}
		}
		if total != 435 || len(pair) != 435 {
			t.Fatalf("round %d: %d init-offers over %d pairs, want 435 over 435", round, total, len(pair))
		}
		for p, k := range pair {
			if k != 1 {
				t.Errorf("round %d: pair %v got %d init-offers", round, p, k)
			}
		}
		// Leave one by one; after each, every remaining member hears it.
		for i := range n {
			if err := js.Disconnect(names[i]); err != nil {
				t.Fatal(err)
			}
			for j := i + 1; j < n; j++ {
				if _, err := js.WaitEvent(ctx, names[j], "#rtcio:peer-left", has("id", ids[i])); err != nil {
					t.Fatal(err)
				}
				if _, err := js.WaitEvent(ctx, names[j], "user-disconnected", has("id", ids[i])); err != nil {
					t.Fatal(err)
				}
			}
		}
		cancel()
		if got := offers(); got != 435 {
			t.Errorf("round %d: %d init-offers by the end of the round, want 435", round, got)
		}
		for i := range n {
			evs := js.Events(names[i])
			if got := count(evs, "user-connected", nil); got != n-1 {
				t.Errorf("round %d: %s saw %d user-connected, want %d", round, names[i], got, n-1)
			}
			if got := count(evs, "#rtcio:peer-left", nil); got != i {
				t.Errorf("round %d: %s saw %d peer-left, want %d", round, names[i], got, i)
			}
			if got := count(evs, "user-disconnected", nil); got != i {
				t.Errorf("round %d: %s saw %d user-disconnected, want %d", round, names[i], got, i)
			}
		}
		if t.Failed() {
			return
		}
	}
	c.expectOnlyNodeKeys()
}

// expectOnlyNodeKeys checks that the rooms left no keys in Redis: what
// remains belongs to the nodes (heartbeats, the node list, inboxes).
func (c *testCluster) expectOnlyNodeKeys() {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	keys, err := c.rdb().Keys(ctx, "*").Result()
	if err != nil {
		c.t.Fatal(err)
	}
	for _, k := range keys {
		switch {
		case k == "rtcio:nodes", strings.HasPrefix(k, "rtcio:inbox:"),
			strings.HasPrefix(k, "rtcio:node:") && (strings.HasSuffix(k, ":alive") || strings.HasSuffix(k, ":reaped")):
		default:
			c.t.Errorf("key left behind: %s", k)
		}
	}
}

// TestTenThousandMessagesAcrossNodes is acceptance 2: 10,000
// #rtcio:message from a socket on node 1 to one on node 2 arrive all,
// once each, in order, although node 2's Redis connections (its inbox
// reader among them) are killed in the middle.
func TestTenThousandMessagesAcrossNodes(t *testing.T) {
	c := startCluster(t, 2, "signaling.messages_per_second=0", "metrics.public=true")
	js := testenv.StartNodeClients(t)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	from := c.pairUp(ctx, js, "from", "to", "pipe")
	to := js.ID("to")
	if _, err := js.WaitEvent(ctx, "from", "user-connected", has("id", to)); err != nil {
		t.Fatal(err)
	}
	const total = 10000
	killed := 0
	for i := range total {
		if i == total/2 {
			// Wait until node2 delivered everything sent so far: its
			// inbox reader is then blocked in XREAD on its connection,
			// so the kill cuts the reader's own connection (an idle
			// pooled one would be replaced without the reader noticing).
			if _, err := js.WaitEvent(ctx, "to", "#rtcio:message", func(args []any) bool {
				d, _ := field(args, "data").(map[string]any)
				return d["n"] == float64(i-1)
			}); err != nil {
				t.Fatal(err)
			}
			killed = testenv.KillRedisClients(t, c.redis.Addr(), "rtcio-node2")
		}
		if err := js.Emit("from", "#rtcio:message", map[string]any{
			"target": to, "type": "seq", "data": map[string]any{"n": i},
		}); err != nil {
			t.Fatal(err)
		}
	}
	if killed == 0 {
		t.Fatal("no Redis connection of node2 was killed")
	}
	// The last one arriving means every earlier one arrived or was lost.
	if _, err := js.WaitEvent(ctx, "to", "#rtcio:message", func(args []any) bool {
		d, _ := field(args, "data").(map[string]any)
		return d["n"] == float64(total-1)
	}); err != nil {
		t.Fatal(err)
	}
	next := 0
	for _, e := range js.Events("to") {
		if e.Name != "#rtcio:message" {
			continue
		}
		d, _ := field(e.Args, "data").(map[string]any)
		if n, _ := d["n"].(float64); int(n) != next || field(e.Args, "source") != from {
			t.Fatalf("message %d: got %v from %v (lost, doubled or reordered)", next, d["n"], field(e.Args, "source"))
		}
		next++
	}
	if next != total {
		t.Fatalf("%d messages arrived, want %d", next, total)
	}
	// The kill reached the inbox reader (always blocked in XREAD), which
	// resumed from the last entry it had read.
	if logs := c.nodes[1].Logs(); !strings.Contains(logs, "inbox read failed") || !strings.Contains(logs, "inbox reads again") {
		t.Errorf("node2's inbox reader did not see its connection cut and resume")
	}
	// The nodes count what crossed: at least the 10,000 messages.
	if sent := c.metric(0, "rtcio_cluster_envelopes_sent_total"); sent < total {
		t.Errorf("node1 counted %v envelopes sent, want at least %d", sent, total)
	}
	if recv := c.metric(1, "rtcio_cluster_envelopes_received_total"); recv < total {
		t.Errorf("node2 counted %v envelopes received, want at least %d", recv, total)
	}
	t.Logf("%d messages in order, once each; %d Redis connections of node2 killed at message %d", total, killed, total/2)
}

// join makes client join room and waits for its join-ok.
func join(ctx context.Context, t *testing.T, js *testenv.NodeClients, client, room string) {
	t.Helper()
	if err := js.Emit(client, "join-room", map[string]any{"roomId": room, "name": client}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.WaitEvent(ctx, client, "join-ok", has("roomId", room)); err != nil {
		t.Fatal(err)
	}
}

// rssKiB reads a process's resident set size.
func rssKiB(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			var kib int
			if _, err := fmt.Sscanf(strings.TrimSpace(v), "%d kB", &kib); err == nil {
				return kib
			}
		}
	}
	t.Fatalf("no VmRSS for pid %d", pid)
	return 0
}

// TestJoinLeaveCycles is acceptance 12 for mesh rooms: 100 join/leave
// cycles of sockets on 3 nodes leave no room or socket keys in Redis, and
// the nodes' resident memory stays within 10% of what it was after a
// warm-up of 100 cycles. (Goroutine leaks are checked in process by TestMain's goleak
// for the in-process tests, which run the same code.)
func TestJoinLeaveCycles(t *testing.T) {
	c := startCluster(t, 3, "signaling.messages_per_second=0")
	js := testenv.StartNodeClients(t)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cycle := func(k int) {
		names := make([]string, 3)
		for i := range 3 {
			names[i] = fmt.Sprintf("c%d-%d", k, i)
			if _, err := js.Connect(names[i], c.nodes[i].URL, wsOnly(nil)); err != nil {
				t.Fatal(err)
			}
		}
		room := fmt.Sprintf("cycle-%d", k%7)
		for _, name := range names {
			join(ctx, t, js, name, room)
			if err := js.Emit(name, "media-state", map[string]any{"roomId": room, "mic": true, "cam": false}); err != nil {
				t.Fatal(err)
			}
		}
		for range names[1:] {
			if _, err := js.WaitEvent(ctx, names[0], "user-connected", nil); err != nil {
				t.Fatal(err)
			}
		}
		// One leaves the room, the others disconnect.
		if err := js.Emit(names[0], "leave-room", map[string]any{"roomId": room}); err != nil {
			t.Fatal(err)
		}
		for _, name := range names[1:] {
			if _, err := js.WaitEvent(ctx, name, "user-disconnected", nil); err != nil {
				t.Fatal(err)
			}
		}
		for _, name := range names {
			if err := js.Disconnect(name); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Warm-up: the heap and the libraries' pools settle (measured: RSS
	// grows by about 2.5 MiB over the first 100 cycles, 1 MiB over the next
	// 200).
	for k := range 100 {
		cycle(k)
	}
	before := make([]int, 3)
	for i, n := range c.nodes {
		before[i] = rssKiB(t, n.PID())
	}
	for k := 100; k < 200; k++ {
		cycle(k)
	}
	// The last disconnects are handled asynchronously on the nodes: wait
	// until Redis lists no room.
	r := c.rdb()
	for deadline := time.Now().Add(10 * time.Second); r.Exists(ctx, "rtcio:rooms").Val() != 0 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond) // polling Redis
	}
	c.expectOnlyNodeKeys()
	for i, n := range c.nodes {
		after := rssKiB(t, n.PID())
		t.Logf("%s RSS after warm-up %d KiB, after 100 more cycles %d KiB (%+.1f%%)", c.ids[i], before[i], after, 100*float64(after-before[i])/float64(before[i]))
		if float64(after) > 1.1*float64(before[i]) {
			t.Errorf("%s RSS grew from %d KiB to %d KiB over 100 cycles", c.ids[i], before[i], after)
		}
	}
}

// pairUp connects client first to node1 and second to node2, has both
// join room, and returns first's socket id.
func (c *testCluster) pairUp(ctx context.Context, js *testenv.NodeClients, first, second, room string) string {
	c.t.Helper()
	id, err := js.Connect(first, c.nodes[0].URL, wsOnly(nil))
	if err != nil {
		c.t.Fatal(err)
	}
	if _, err := js.Connect(second, c.nodes[1].URL, wsOnly(nil)); err != nil {
		c.t.Fatal(err)
	}
	join(ctx, c.t, js, first, room)
	join(ctx, c.t, js, second, room)
	return id
}

// metric reads one unlabelled sample from node i's /metrics (served
// without credentials: metrics.public=true); -1 when it is missing.
func (c *testCluster) metric(i int, name string) float64 {
	c.t.Helper()
	resp, err := http.Get(c.nodes[i].URL + "/metrics")
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			var f float64
			if _, err := fmt.Sscanf(v, "%g", &f); err == nil {
				return f
			}
		}
	}
	return -1
}
