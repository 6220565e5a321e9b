package clusterrooms_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/rtcio-gateway/rtcio-gateway/config"
	"github.com/rtcio-gateway/rtcio-gateway/gateway/webhook"
	"github.com/rtcio-gateway/rtcio-gateway/internal/gatewaytest"
	"github.com/rtcio-gateway/rtcio-gateway/internal/testenv"
)

// clusterConfig is a test gateway that is node id of the cluster on redis
// at addr, with short heartbeats so a dead node is noticed quickly.
func clusterConfig(addr, id string) config.Config {
	cfg := gatewaytest.TestConfig()
	cfg.Redis.URL = "redis://" + addr + "/0"
	cfg.Cluster.NodeID = id
	cfg.Cluster.Heartbeat = 100 * time.Millisecond
	cfg.Cluster.NodeTTL = time.Second
	return cfg
}

// startNodes runs n gateways in this process, one cluster on one Redis,
// and waits until each is ready (its inbox reads).
func startNodes(t *testing.T, addr string, n int) []*gatewaytest.Gateway {
	t.Helper()
	var out []*gatewaytest.Gateway
	for i := range n {
		g := gatewaytest.StartGateway(t, clusterConfig(addr, fmt.Sprintf("node%d", i+1)))
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		err := testenv.WaitReady(ctx, g.URL, nil)
		cancel()
		if err != nil {
			t.Fatalf("node%d: %v", i+1, err)
		}
		out = append(out, g)
	}
	return out
}

func waitCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func field(args []any, key string) any {
	if len(args) == 0 {
		return nil
	}
	m, _ := args[0].(map[string]any)
	return m[key]
}

func has(key, want string) func([]any) bool {
	return func(args []any) bool { return field(args, key) == want }
}

// TestMeshAcrossNodes runs the rtc.io room convention with each socket on
// another gateway of one cluster: presence, init-offers, relayed messages,
// media-state with backfill, leave and disconnect notices, and the
// hardening (forged source, no shared room) with the target on another
// node. The clients are socket.io-client 4.8 under Node.
func TestMeshAcrossNodes(t *testing.T) {
	addr := testenv.StartRedis(t)
	nodes := startNodes(t, addr, 2)
	js := testenv.StartNodeClients(t)
	ctx := waitCtx(t)
	connect := func(name string, g *gatewaytest.Gateway) string {
		id, err := js.Connect(name, g.URL, map[string]any{"transports": []string{"websocket"}})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	a := connect("a", nodes[0])
	b := connect("b", nodes[1])
	stranger := connect("stranger", nodes[1])
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}

	must(js.Emit("a", "join-room", map[string]any{"roomId": "r1", "name": "Ann"}))
	_, err := js.WaitEvent(ctx, "a", "join-ok", has("roomId", "r1"))
	must(err)
	must(js.Emit("a", "media-state", map[string]any{"roomId": "r1", "mic": true, "cam": false}))
	// Wait until the state is stored: a's next event is ordered after it.
	must(js.Emit("a", "leave-room", map[string]any{"roomId": "nowhere"}))
	_, err = js.WaitEvent(ctx, "a", "gateway-error", has("code", "not-in-room"))
	must(err)

	must(js.Emit("b", "join-room", map[string]any{"roomId": "r1", "name": "Bob"}))
	// b, on node 2, hears of a (on node 1) and of its media-state first.
	_, err = js.WaitEvent(ctx, "b", "user-connected", has("id", a))
	must(err)
	st, err := js.WaitEvent(ctx, "b", "media-state", has("id", a))
	must(err)
	if field(st, "mic") != true || field(st, "cam") != false {
		t.Errorf("backfilled media-state %v", st)
	}
	_, err = js.WaitEvent(ctx, "b", "join-ok", has("roomId", "r1"))
	must(err)
	// a hears of b across the bus, and is told to offer to it.
	_, err = js.WaitEvent(ctx, "a", "user-connected", has("id", b))
	must(err)
	_, err = js.WaitEvent(ctx, "a", "#rtcio:init-offer", has("source", b))
	must(err)

	// A message relayed across nodes, with the source stated by the server.
	must(js.Emit("a", "#rtcio:message", map[string]any{"target": b, "type": "candidate", "data": map[string]any{"n": 1.0}}))
	msg, err := js.WaitEvent(ctx, "b", "#rtcio:message", has("type", "candidate"))
	must(err)
	if field(msg, "source") != a {
		t.Errorf("message source %v, want %s", field(msg, "source"), a)
	}
	// media-state announced live crosses too.
	must(js.Emit("b", "media-state", map[string]any{"roomId": "r1", "mic": false, "cam": true}))
	_, err = js.WaitEvent(ctx, "a", "media-state", has("id", b))
	must(err)

	// Hardening with the target on another node.
	must(js.Emit("a", "#rtcio:message", map[string]any{"target": b, "source": stranger, "type": "x", "data": map[string]any{}}))
	_, err = js.WaitEvent(ctx, "a", "gateway-error", has("code", "forged-source"))
	must(err)
	must(js.Emit("a", "#rtcio:message", map[string]any{"target": stranger, "type": "x", "data": map[string]any{}}))
	_, err = js.WaitEvent(ctx, "a", "gateway-error", has("code", "no-shared-room"))
	must(err)
	must(js.Emit("stranger", "#rtcio:message", map[string]any{"target": a, "type": "x", "data": map[string]any{}}))
	_, err = js.WaitEvent(ctx, "stranger", "gateway-error", has("code", "no-shared-room"))
	must(err)

	// leave-room: the other node's member hears user-disconnected.
	must(js.Emit("b", "leave-room", map[string]any{"roomId": "r1"}))
	_, err = js.WaitEvent(ctx, "a", "user-disconnected", has("id", b))
	must(err)
	must(js.Emit("b", "join-room", map[string]any{"roomId": "r1", "name": "Bob"}))
	_, err = js.WaitEvent(ctx, "a", "user-connected", has("id", b))
	must(err)
	// A disconnect: peer-left first, then user-disconnected.
	must(js.Disconnect("b"))
	_, err = js.WaitEvent(ctx, "a", "#rtcio:peer-left", has("id", b))
	must(err)
	_, err = js.WaitEvent(ctx, "a", "user-disconnected", has("id", b))
	must(err)

	// Nothing arrived twice and nothing out of place: a's events about b.
	var about []string
	for _, ev := range js.Events("a") {
		if field(ev.Args, "id") == b || field(ev.Args, "source") == b {
			about = append(about, ev.Name)
		}
	}
	want := []string{"user-connected", "#rtcio:init-offer", "media-state", "user-disconnected", "user-connected", "#rtcio:init-offer", "#rtcio:peer-left", "user-disconnected"}
	if fmt.Sprint(about) != fmt.Sprint(want) {
		t.Errorf("a's events about b:\n got %v\nwant %v", about, want)
	}

	// A kick issued on node 1 reaches a socket on node 2.
	victim := connect("victim", nodes[1])
	must(js.Emit("victim", "join-room", map[string]any{"roomId": "r1", "name": "Vic"}))
	_, err = js.WaitEvent(ctx, "a", "user-connected", has("id", victim))
	must(err)
	if found, err := nodes[0].Server.Signaling().Kick(victim); !found || err != nil {
		t.Fatalf("kick of a socket on another node: found %v, %v", found, err)
	}
	_, err = js.WaitEvent(ctx, "victim", "disconnect", nil)
	must(err)
	_, err = js.WaitEvent(ctx, "a", "#rtcio:peer-left", has("id", victim))
	must(err)
	if found, _ := nodes[0].Server.Signaling().Kick("no-such-socket"); found {
		t.Error("kick of an unknown socket reported found")
	}

	// The admin view lists the cluster's rooms from Redis on either node.
	rooms := nodes[1].Server.Signaling().Rooms()
	if len(rooms) != 1 || rooms[0].ID != "r1" || len(rooms[0].Members) != 1 || rooms[0].Members[0].ID != a {
		t.Errorf("rooms seen from node 2: %+v", rooms)
	}
}

// TestWebhooksOncePerCluster: room and participant webhooks are posted once
// for the whole cluster, whichever node a member is on: each by the node
// where the change happened, from the snapshot Redis returned.
func TestWebhooksOncePerCluster(t *testing.T) {
	const secret = "webhook-secret-0123456789abcdef"
	hooks := gatewaytest.StartWebhookLog(t, secret)
	count := func(evs []webhook.Event) map[string]int {
		got := map[string]int{}
		for _, ev := range evs {
			got[string(ev.Type)+" "+ev.Room]++
		}
		return got
	}
	addr := testenv.StartRedis(t)
	var nodes []*gatewaytest.Gateway
	for i := range 2 {
		cfg := clusterConfig(addr, fmt.Sprintf("node%d", i+1))
		cfg.Webhooks.URLs = []string{hooks.URL}
		cfg.Webhooks.Secret = secret
		g := gatewaytest.StartGateway(t, cfg)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		if err := testenv.WaitReady(ctx, g.URL, nil); err != nil {
			t.Fatal(err)
		}
		cancel()
		nodes = append(nodes, g)
	}
	js := testenv.StartNodeClients(t)
	ctx := waitCtx(t)
	for i, name := range []string{"a", "b", "marker"} {
		if _, err := js.Connect(name, nodes[i%2].URL, map[string]any{"transports": []string{"websocket"}}); err != nil {
			t.Fatal(err)
		}
	}
	join(ctx, t, js, "a", "hooked")
	join(ctx, t, js, "b", "hooked")
	if err := js.Disconnect("b"); err != nil {
		t.Fatal(err)
	}
	if _, err := js.WaitEvent(ctx, "a", "user-disconnected", nil); err != nil {
		t.Fatal(err)
	}
	if err := js.Disconnect("a"); err != nil {
		t.Fatal(err)
	}
	// Six events for the room; then a marker room's start, posted after
	// them, so a duplicate of any would have had time to come too.
	hooks.WaitFor(t, "room", time.Minute, func(evs []webhook.Event) bool { return len(evs) >= 6 })
	join(ctx, t, js, "marker", "marker")
	hooks.WaitFor(t, "marker room", time.Minute, func(evs []webhook.Event) bool {
		got := count(evs)
		return got["room_started marker"] > 0 && got["participant_joined marker"] > 0
	})
	got := count(hooks.Events())
	want := map[string]int{
		"room_started hooked": 1, "participant_joined hooked": 2,
		"participant_left hooked": 2, "room_finished hooked": 1,
		"room_started marker": 1, "participant_joined marker": 1,
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("%s posted %d times, want %d (all: %v)", k, got[k], n, got)
		}
	}
}
