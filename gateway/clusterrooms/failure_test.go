package clusterrooms_test

import (
	"context"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rtcio-gateway/rtcio-gateway/internal/testenv"
)

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

	killed, unready := c.killRedis()
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
	ready := c.restartRedis(killed)
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

// killRedis kills the cluster's redis-server and waits until every node
// is unready (its liveness still answering); it returns when Redis was
// killed and how long each node took.
func (c *testCluster) killRedis() (time.Time, []time.Duration) {
	c.t.Helper()
	killed := time.Now()
	c.redis.Kill()
	var unready []time.Duration
	for i := range c.nodes {
		c.waitStatus(i, "/readyz", http.StatusServiceUnavailable, 10*time.Second)
		unready = append(unready, time.Since(killed))
		if got := c.status(i, "/healthz"); got != http.StatusOK {
			c.t.Errorf("%s /healthz answered %d while Redis is down", c.ids[i], got)
		}
	}
	return killed, unready
}

// restartRedis ends an outage that began at killed after 10 s (the
// acceptance scenario's), checks no node exited meanwhile, restarts Redis
// empty and waits until every node is ready again; it returns how long
// each took after the restart.
func (c *testCluster) restartRedis(killed time.Time) []time.Duration {
	c.t.Helper()
	time.Sleep(time.Until(killed.Add(10 * time.Second))) // the outage's length
	for i, n := range c.nodes {
		if err, exited := n.Wait(0); exited {
			c.t.Fatalf("%s exited while Redis was down: %v", c.ids[i], err)
		}
	}
	restarted := time.Now()
	if err := c.redis.Restart(context.Background()); err != nil {
		c.t.Fatal(err)
	}
	var ready []time.Duration
	for i := range c.nodes {
		c.waitStatus(i, "/readyz", http.StatusOK, 30*time.Second)
		ready = append(ready, time.Since(restarted))
	}
	return ready
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
