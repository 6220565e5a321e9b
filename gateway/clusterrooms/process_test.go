package clusterrooms_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"syscall"
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
}

// startCluster runs n gateway processes of one cluster on a fresh Redis,
// with extra --set keys for every node, and waits until each is ready.
func startCluster(t *testing.T, n int, extra ...string) *testCluster {
	t.Helper()
	bin := gatewayBin.get(t)
	c := &testCluster{t: t, redis: testenv.StartRedisServer(t)}
	for i := range n {
		id := fmt.Sprintf("node%d", i+1)
		args := []string{"--topology", "mesh",
			"--set", "redis.url=redis://" + c.redis.Addr() + "/0",
			"--set", "cluster.node_id=" + id,
			"--set", "demo.enabled=false"}
		for _, kv := range extra {
			args = append(args, "--set", kv)
		}
		c.nodes = append(c.nodes, testenv.RunGateway(t, bin, args...))
		c.ids = append(c.ids, id)
	}
	return c
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

// TestSignalingNodeKilled is acceptance 8 for mesh rooms: a node holding
// one socket of a room is killed with SIGKILL. The client, behind the
// sticky proxy, reconnects to a live node and joins again; its room mates
// on the other nodes get exactly one peer-left (and user-disconnected) for
// its old id, from the reaper, and then meet its new id.
func TestSignalingNodeKilled(t *testing.T) {
	c := startCluster(t, 3)
	var backends []string
	for _, n := range c.nodes {
		backends = append(backends, strings.TrimPrefix(n.URL, "http://"))
	}
	proxy := testenv.StartStickyProxy(t, backends...)
	js := testenv.StartNodeClients(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// The proxy sends its first connection to the first backend: node1.
	old, err := js.Connect("mover", "http://"+proxy.Addr(), wsOnly(map[string]any{
		"reconnection": true, "reconnectionDelay": 100, "reconnectionDelayMax": 500,
	}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Connect("o2", c.nodes[1].URL, wsOnly(nil)); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Connect("o3", c.nodes[2].URL, wsOnly(nil)); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"mover", "o2", "o3"} {
		join(ctx, t, js, name, "k9")
	}
	for _, name := range []string{"o2", "o3"} {
		if _, err := js.WaitEvent(ctx, name, "user-connected", has("id", old)); err != nil {
			t.Fatal(err)
		}
	}
	rooms := c.rdb().HKeys(ctx, "rtcio:room:k9:members").Val()
	if len(rooms) != 3 {
		t.Fatalf("room k9 has %d members in Redis before the kill, want 3", len(rooms))
	}
	if node := c.rdb().Get(ctx, "rtcio:socket:"+old+":node").Val(); node != "node1" {
		t.Fatalf("the proxied client is on %q, want node1", node)
	}

	killed := time.Now()
	if err := c.nodes[0].Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	again, err := js.Take(ctx, "mover", func(e testenv.Event) bool { return e.Name == testenv.EventConnect && e.ID != old })
	if err != nil {
		t.Fatal(err)
	}
	join(ctx, t, js, "mover", "k9")
	rejoined := time.Since(killed)
	var peerLeft []time.Duration
	for _, name := range []string{"o2", "o3"} {
		if _, err := js.WaitEvent(ctx, name, "#rtcio:peer-left", has("id", old)); err != nil {
			t.Fatal(err)
		}
		peerLeft = append(peerLeft, time.Since(killed))
		if _, err := js.WaitEvent(ctx, name, "user-disconnected", has("id", old)); err != nil {
			t.Fatal(err)
		}
		if _, err := js.WaitEvent(ctx, name, "user-connected", has("id", again.ID)); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"o2", "o3"} {
		evs := js.Events(name)
		if n := count(evs, "#rtcio:peer-left", has("id", old)); n != 1 {
			t.Errorf("%s got %d peer-left for the killed node's socket, want 1", name, n)
		}
		if n := count(evs, "user-disconnected", has("id", old)); n != 1 {
			t.Errorf("%s got %d user-disconnected for the killed node's socket, want 1", name, n)
		}
	}
	t.Logf("kill -9 of node1: its client joined again through the proxy after %v; peer-left for its old id after %v (node_ttl 5s, heartbeat 1s)",
		rejoined.Round(time.Millisecond), peerLeft)
}

// TestRedisDown is acceptance 9 for mesh rooms: Redis is killed for 10 s
// and comes back empty. No node exits; liveness stays up and readiness goes
// down; a join meanwhile gets join-error cluster-unavailable; once Redis is
// back the nodes write their state again, turn ready, and a new joiner
// meets everyone who was in the room.
func TestRedisDown(t *testing.T) {
	c := startCluster(t, 3)
	js := testenv.StartNodeClients(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	ids := map[string]string{}
	for i, name := range []string{"a", "b", "c", "late"} {
		id, err := js.Connect(name, c.nodes[i%3].URL, wsOnly(nil))
		if err != nil {
			t.Fatal(err)
		}
		ids[name] = id
	}
	for _, name := range []string{"a", "b", "c"} {
		join(ctx, t, js, name, "stay")
	}
	if err := js.Emit("a", "media-state", map[string]any{"roomId": "stay", "mic": true, "cam": true}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"b", "c"} {
		if _, err := js.WaitEvent(ctx, name, "media-state", has("id", ids["a"])); err != nil {
			t.Fatal(err)
		}
	}

	killed := time.Now()
	c.redis.Kill()
	var unready []time.Duration
	for i := range c.nodes {
		c.waitStatus(i, "/readyz", http.StatusServiceUnavailable, 10*time.Second)
		unready = append(unready, time.Since(killed))
		if got := c.status(i, "/healthz"); got != http.StatusOK {
			t.Errorf("%s /healthz answered %d while Redis is down", c.ids[i], got)
		}
	}
	if err := js.Emit("late", "join-room", map[string]any{"roomId": "stay", "name": "late"}); err != nil {
		t.Fatal(err)
	}
	je, err := js.WaitEvent(ctx, "late", "join-error", nil)
	if err != nil {
		t.Fatal(err)
	}
	if field(je, "reason") != "cluster-unavailable" {
		t.Errorf("join while Redis is down: join-error %v, want reason cluster-unavailable", je)
	}
	// The outage lasts 10 s, as in the acceptance scenario.
	time.Sleep(time.Until(killed.Add(10 * time.Second)))
	for i, n := range c.nodes {
		if err, exited := n.Wait(0); exited {
			t.Fatalf("%s exited while Redis was down: %v", c.ids[i], err)
		}
	}
	restarted := time.Now()
	if err := c.redis.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	var ready []time.Duration
	for i := range c.nodes {
		c.waitStatus(i, "/readyz", http.StatusOK, 30*time.Second)
		ready = append(ready, time.Since(restarted))
	}
	// Every node re-asserted its part: the newcomer meets a, b and c, and
	// a's media-state, although Redis came back empty.
	join(ctx, t, js, "late", "stay")
	for _, name := range []string{"a", "b", "c"} {
		if _, err := js.WaitEvent(ctx, "late", "user-connected", has("id", ids[name])); err != nil {
			t.Fatal(err)
		}
		if _, err := js.WaitEvent(ctx, name, "user-connected", has("id", ids["late"])); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := js.WaitEvent(ctx, "late", "media-state", has("id", ids["a"])); err != nil {
		t.Fatal(err)
	}
	// Messages cross nodes again.
	if err := js.Emit("b", "#rtcio:message", map[string]any{"target": ids["late"], "type": "hello", "data": map[string]any{}}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.WaitEvent(ctx, "late", "#rtcio:message", has("source", ids["b"])); err != nil {
		t.Fatal(err)
	}
	t.Logf("redis killed: readiness 503 after %v; restarted empty after 10 s: readiness 200 after %v", unready, ready)
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

// TestPausedNodeEvicted: a node paused (SIGSTOP) past node_ttl is reaped:
// its room mates get one peer-left for its socket. When it wakes (SIGCONT)
// it must not write that socket back behind their backs: it disconnects
// it, and the client (reconnecting) joins again and is announced anew.
func TestPausedNodeEvicted(t *testing.T) {
	c := startCluster(t, 2, "cluster.heartbeat=200ms", "cluster.node_ttl=1s")
	js := testenv.StartNodeClients(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sleeper := c.pairUp(ctx, js, "sleeper", "awake", "nap")
	if err := c.nodes[0].Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	if _, err := js.WaitEvent(ctx, "awake", "#rtcio:peer-left", has("id", sleeper)); err != nil {
		t.Fatal(err)
	}
	if err := c.nodes[0].Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	if _, err := js.WaitEvent(ctx, "sleeper", testenv.EventDisconnect, nil); err != nil {
		t.Fatal(err)
	}
	if n := c.rdb().HLen(ctx, "rtcio:room:nap:members").Val(); n != 1 {
		t.Errorf("room nap has %d members after the paused node woke, want 1 (its socket was not written back)", n)
	}
	// The client comes back (its app reconnects and joins again).
	again, err := js.Connect("woken", c.nodes[0].URL, wsOnly(nil))
	if err != nil {
		t.Fatal(err)
	}
	join(ctx, t, js, "woken", "nap")
	if _, err := js.WaitEvent(ctx, "awake", "user-connected", has("id", again)); err != nil {
		t.Fatal(err)
	}
	if n := count(js.Events("awake"), "#rtcio:peer-left", has("id", sleeper)); n != 1 {
		t.Errorf("awake got %d peer-left for the paused socket, want 1", n)
	}
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

// TestNodeDrain: SIGTERM of a node in a cluster (mesh rooms have no media
// to hand over): its clients are told to reconnect, its room mates on
// other nodes get exactly one peer-left each, the process exits within
// shutdown.timeout, and Redis keeps nothing of its sockets.
func TestNodeDrain(t *testing.T) {
	c := startCluster(t, 2)
	js := testenv.StartNodeClients(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	leaving := c.pairUp(ctx, js, "leaving", "staying", "drain")
	start := time.Now()
	if err := c.nodes[0].Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if _, err := js.WaitEvent(ctx, "leaving", "server-shutdown", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := js.WaitEvent(ctx, "staying", "#rtcio:peer-left", has("id", leaving)); err != nil {
		t.Fatal(err)
	}
	exitErr, exited := c.nodes[0].Wait(10 * time.Second)
	if !exited {
		t.Fatal("node1 did not exit within 10 s of SIGTERM (shutdown.timeout 5s)")
	}
	if exitErr != nil {
		t.Errorf("node1 exited with %v", exitErr)
	}
	took := time.Since(start)
	if n := count(js.Events("staying"), "#rtcio:peer-left", has("id", leaving)); n != 1 {
		t.Errorf("staying got %d peer-left for the drained node's socket, want 1", n)
	}
	r := c.rdb()
	for _, key := range []string{"rtcio:socket:" + leaving + ":node", "rtcio:socket:" + leaving + ":rooms", "rtcio:node:node1:sockets", "rtcio:node:node1:alive"} {
		if r.Exists(ctx, key).Val() != 0 {
			t.Errorf("key %s left after the drain", key)
		}
	}
	t.Logf("SIGTERM of node1: exited after %v", took.Round(time.Millisecond))
}
