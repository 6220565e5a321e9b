package gateway_test

import (
	"context"
	"encoding/json"
	"github.com/rtcio-gateway/rtcio-gateway/config"
	"net/http"
	"testing"
	"time"

	"github.com/rtcio-gateway/rtcio-gateway/internal/gatewaytest"
	"github.com/rtcio-gateway/rtcio-gateway/internal/testenv"
)

func TestMain(m *testing.M) { testenv.VerifyTestMain(m) }

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func get(t *testing.T, url, token string) (int, []byte) {
	t.Helper()
	return do(t, http.MethodGet, url, token)
}

func do(t *testing.T, method, url, token string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctxFor(t, 10*time.Second), method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	var body json.RawMessage
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body
}

func TestProbes(t *testing.T) {
	gw := gatewaytest.StartGateway(t, gatewaytest.TestConfig())
	for _, path := range []string{"/healthz", "/readyz"} {
		if code, body := get(t, gw.URL+path, ""); code != http.StatusOK {
			t.Errorf("%s = %d %s", path, code, body)
		}
	}
}

type roomsResponse struct {
	Rooms []struct {
		ID       string `json:"id"`
		Topology string `json:"topology"`
		Members  []struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"members"`
	} `json:"rooms"`
}

// TestAdminAPI checks the token, the room listing against what clients did,
// and that a kick disconnects the socket and tells its room.
func TestAdminAPI(t *testing.T) {
	const token = "admin-secret-token"
	cfg := gatewaytest.TestConfig()
	cfg.Admin.Token = token
	gw := gatewaytest.StartGateway(t, cfg)

	for _, tok := range []string{"", "wrong"} {
		if code, _ := get(t, gw.URL+"/admin/v1/rooms", tok); code != http.StatusUnauthorized {
			t.Errorf("rooms with token %q: status %d, want 401", tok, code)
		}
	}
	if code, _ := do(t, http.MethodDelete, gw.URL+"/admin/v1/sockets/x", "wrong"); code != http.StatusUnauthorized {
		t.Errorf("kick with a wrong token: status %d, want 401", code)
	}

	nodes := testenv.StartNodeClients(t)
	ctx := ctxFor(t, 20*time.Second)
	ids := map[string]string{}
	for _, name := range []string{"ann", "ben", "cat"} {
		id, err := nodes.Connect(name, gw.URL, nil)
		if err != nil {
			t.Fatal(err)
		}
		ids[name] = id
		room := "room-1"
		if name == "cat" {
			room = "room-2"
		}
		if err := nodes.Emit(name, "join-room", map[string]any{"roomId": room, "name": name}); err != nil {
			t.Fatal(err)
		}
		if _, err := nodes.WaitEvent(ctx, name, "join-ok", nil); err != nil {
			t.Fatal(err)
		}
	}

	code, body := get(t, gw.URL+"/admin/v1/rooms", token)
	if code != http.StatusOK {
		t.Fatalf("rooms: %d %s", code, body)
	}
	var rooms roomsResponse
	if err := json.Unmarshal(body, &rooms); err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for _, r := range rooms.Rooms {
		if r.Topology != "mesh" {
			t.Errorf("room %s topology %q, want mesh", r.ID, r.Topology)
		}
		for _, m := range r.Members {
			got[r.ID] = append(got[r.ID], m.Name+"="+m.ID)
		}
	}
	want := map[string][]string{
		"room-1": {"ann=" + ids["ann"], "ben=" + ids["ben"]},
		"room-2": {"cat=" + ids["cat"]},
	}
	if len(got) != len(want) || len(got["room-1"]) != 2 || got["room-1"][0] != want["room-1"][0] ||
		got["room-1"][1] != want["room-1"][1] || len(got["room-2"]) != 1 || got["room-2"][0] != want["room-2"][0] {
		t.Errorf("rooms = %v, want %v", got, want)
	}

	if code, _ := do(t, http.MethodDelete, gw.URL+"/admin/v1/sockets/no-such-socket", token); code != http.StatusNotFound {
		t.Errorf("kick of an unknown socket: %d, want 404", code)
	}
	if code, body := do(t, http.MethodDelete, gw.URL+"/admin/v1/sockets/"+ids["ben"], token); code != http.StatusNoContent {
		t.Fatalf("kick: %d %s", code, body)
	}
	if _, err := nodes.WaitEvent(ctx, "ben", testenv.EventDisconnect, nil); err != nil {
		t.Fatalf("kicked socket was not disconnected: %v", err)
	}
	isBen := func(args []any) bool {
		o, _ := args[0].(map[string]any)
		return o["id"] == ids["ben"]
	}
	if _, err := nodes.WaitEvent(ctx, "ann", "user-disconnected", isBen); err != nil {
		t.Errorf("room mate did not see user-disconnected: %v", err)
	}
	if _, err := nodes.WaitEvent(ctx, "ann", "#rtcio:peer-left", isBen); err != nil {
		t.Errorf("room mate did not see #rtcio:peer-left: %v", err)
	}
	code, body = get(t, gw.URL+"/admin/v1/rooms/room-1", token)
	if code != http.StatusOK {
		t.Fatalf("room-1: %d %s", code, body)
	}
	var one struct {
		Members []struct{ ID string } `json:"members"`
	}
	_ = json.Unmarshal(body, &one)
	if len(one.Members) != 1 || one.Members[0].ID != ids["ann"] {
		t.Errorf("room-1 after kick: %s", body)
	}
}

func TestAdminAPIDisabledWithoutToken(t *testing.T) {
	gw := gatewaytest.StartGateway(t, gatewaytest.TestConfig())
	if code, _ := get(t, gw.URL+"/admin/v1/rooms", ""); code != http.StatusNotFound {
		t.Errorf("admin API without a configured token: %d, want 404", code)
	}
}

// TestBrowserJoinsFromServerOrigin loads a page from the gateway's own
// origin in Chromium; the page connects with socket.io-client's browser
// build (long-polling, then the upgrade to WebSocket) and joins a room where
// a Node client sees it arrive.
func TestBrowserJoinsFromServerOrigin(t *testing.T) {
	gw := gatewaytest.StartGateway(t, gatewaytest.TestConfig())
	web, err := testenv.NewWebHandler()
	if err != nil {
		testenv.SkipIfNoBrowser(t)
		t.Fatal(err)
	}
	gw.Server.Handle("/", web)
	nodes := testenv.StartNodeClients(t)
	browser := testenv.StartBrowser(t)
	ctx := ctxFor(t, 30*time.Second)

	if _, err := nodes.Connect("host", gw.URL, nil); err != nil {
		t.Fatal(err)
	}
	_ = nodes.Emit("host", "join-room", map[string]any{"roomId": "browser-room", "name": "host"})
	if _, err := nodes.WaitEvent(ctx, "host", "join-ok", nil); err != nil {
		t.Fatal(err)
	}

	page, err := browser.OpenPage(ctx, gw.URL+"/conformance.html")
	if err != nil {
		t.Fatal(err)
	}
	var joined struct {
		ID        string `json:"id"`
		Transport string `json:"transport"`
		Hosts     []any  `json:"hosts"`
	}
	err = page.Eval(ctx, `() => new Promise((resolve, reject) => {
		const socket = io({ transports: ["polling", "websocket"] });
		const hosts = [];
		socket.on("connect_error", (e) => reject(new Error("connect_error: " + e.message)));
		socket.on("user-connected", (u) => hosts.push(u));
		socket.on("join-ok", () => {
			const done = () => resolve({ id: socket.id, transport: socket.io.engine.transport.name, hosts });
			if (socket.io.engine.transport.name === "websocket") return done();
			socket.io.engine.once("upgrade", done);
		});
		socket.on("connect", () => socket.emit("join-room", { roomId: "browser-room", name: "chromium" }));
		setTimeout(() => reject(new Error("no join-ok within 15s")), 15000);
	})`, &joined)
	if err != nil {
		t.Fatalf("page: %v", err)
	}
	if joined.Transport != "websocket" {
		t.Errorf("page transport = %q, want an upgrade to websocket", joined.Transport)
	}
	if len(joined.Hosts) != 1 {
		t.Errorf("page backfill = %v, want the host", joined.Hosts)
	}
	args, err := nodes.WaitEvent(ctx, "host", "user-connected", nil)
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := args[0].(map[string]any); o["id"] != joined.ID || o["name"] != "chromium" {
		t.Errorf("host saw %v, want the page %s", args, joined.ID)
	}
}

// TestTopologyPerRoom: with SFU the default, a room matching a mesh rule
// behaves exactly like rtc.io-server (members get init-offers for each
// other), while in an SFU room only the hidden gateway peer does.
func TestTopologyPerRoom(t *testing.T) {
	cfg := gatewaytest.SFUConfig()
	cfg.Rooms.Topologies = []config.TopologyRule{{Pattern: "mesh-*", Topology: "mesh"}}
	gw := gatewaytest.StartGateway(t, cfg)
	nodes := testenv.StartNodeClients(t)
	ctx := ctxFor(t, 20*time.Second)
	join := func(client, room string) string {
		id, err := nodes.Connect(client, gw.URL, nil)
		if err != nil {
			t.Fatal(err)
		}
		_ = nodes.Emit(client, "join-room", map[string]any{"roomId": room, "name": client})
		if _, err := nodes.WaitEvent(ctx, client, "join-ok", nil); err != nil {
			t.Fatal(err)
		}
		return id
	}
	join("m1", "mesh-1")
	m2 := join("m2", "mesh-1")
	if _, err := nodes.WaitEvent(ctx, "m1", "#rtcio:init-offer", func(args []any) bool {
		o, _ := args[0].(map[string]any)
		return o["source"] == m2
	}); err != nil {
		t.Fatalf("mesh room: no init-offer for the newcomer: %v", err)
	}

	join("s1", "sfu-1")
	s2 := join("s2", "sfu-1")
	// s1 hears of s2 (presence) but is not told to offer to it; the
	// gateway peer offers to each client instead.
	if _, err := nodes.WaitEvent(ctx, "s1", "user-connected", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := nodes.WaitEvent(ctx, "s2", "#rtcio:message", nil); err != nil {
		t.Fatalf("sfu room: the gateway peer did not offer to s2: %v", err)
	}
	for _, ev := range nodes.Events("s1") {
		if ev.Name == "#rtcio:init-offer" {
			t.Errorf("sfu room: s1 got an init-offer: %v (s2 is %s)", ev.Args, s2)
		}
	}
}
