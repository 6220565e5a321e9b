package testenv

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"
)

func testCtx(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func hasID(id string) func([]any) bool {
	return func(args []any) bool {
		if len(args) == 0 {
			return false
		}
		m, ok := args[0].(map[string]any)
		return ok && m["id"] == id
	}
}

func mustConnect(t *testing.T, n *NodeClients, client, url string, opts map[string]any) string {
	t.Helper()
	id, err := n.Connect(client, url, opts)
	if err != nil {
		t.Fatalf("connect %s: %v", client, err)
	}
	return id
}

func mustEmit(t *testing.T, n *NodeClients, client, event string, args ...any) {
	t.Helper()
	if err := n.Emit(client, event, args...); err != nil {
		t.Fatal(err)
	}
}

func mustWait(t *testing.T, ctx context.Context, n *NodeClients, client, event string, match func([]any) bool) []any {
	t.Helper()
	args, err := n.WaitEvent(ctx, client, event, match)
	if err != nil {
		t.Fatal(err)
	}
	return args
}

// TestRefServerRoomConvention walks the demo room convention of docs/PROTOCOL.md
// section 2 with real socket.io clients against the Node reference server,
// which also proves the driver's connect, emit, clean disconnect and drop.
func TestRefServerRoomConvention(t *testing.T) {
	srv := StartRefServerWith(t, RefServerConfig{})
	n := StartNodeClients(t)
	ctx := testCtx(t, 60*time.Second)
	url := srv.URL()

	aID := mustConnect(t, n, "a", url, nil)
	bID := mustConnect(t, n, "b", url, map[string]any{"transports": []string{"websocket"}})
	cID := mustConnect(t, n, "c", url, map[string]any{"auth": map[string]any{"token": "x"}})
	if len(aID) != 20 || aID == bID || bID == cID {
		t.Fatalf("socket ids %q %q %q: want distinct 20-char Node ids", aID, bID, cID)
	}
	if got := n.ID("a"); got != aID {
		t.Fatalf("ID(a) = %q, want %q", got, aID)
	}

	mustEmit(t, n, "a", "join-room", map[string]any{"roomId": "r1", "name": "Alice"})
	mustWait(t, ctx, n, "a", "join-ok", nil)
	mustEmit(t, n, "c", "join-room", map[string]any{"roomId": "r1", "name": "Carol"})
	mustWait(t, ctx, n, "c", "join-ok", nil)

	// c sees a's media-state relayed, so the server has stored it before b
	// joins and b's backfill must carry it.
	state := map[string]any{"roomId": "r1", "mic": true, "cam": false, "id": aID}
	mustEmit(t, n, "a", "media-state", state)
	got := mustWait(t, ctx, n, "c", "media-state", nil)
	if !reflect.DeepEqual(got, []any{state}) {
		t.Fatalf("relayed media-state = %v, want %v", got, state)
	}

	mustEmit(t, n, "b", "join-room", map[string]any{"roomId": "r1", "name": "Bob"})
	mustWait(t, ctx, n, "b", "join-ok", func(args []any) bool {
		m, _ := args[0].(map[string]any)
		return m["roomId"] == "r1"
	})
	wantB := []Event{
		{Client: "b", Name: EventConnect, ID: bID, Args: []any{bID}},
		{Client: "b", Name: "user-connected", Args: []any{map[string]any{"id": aID, "name": "Alice"}}},
		{Client: "b", Name: "media-state", Args: []any{state}},
		{Client: "b", Name: "user-connected", Args: []any{map[string]any{"id": cID, "name": "Carol"}}},
		{Client: "b", Name: "join-ok", Args: []any{map[string]any{"roomId": "r1"}}},
	}
	if evs := n.Events("b"); !reflect.DeepEqual(evs, wantB) {
		t.Fatalf("b received\n %+v\nwant\n %+v", evs, wantB)
	}

	mustWait(t, ctx, n, "a", "#rtcio:init-offer", func(args []any) bool {
		m, _ := args[0].(map[string]any)
		return m["source"] == bID
	})
	mustWait(t, ctx, n, "c", "#rtcio:init-offer", nil)

	// #rtcio:message goes to target only, unchanged (source not checked).
	msg := map[string]any{
		"source": "forged", "target": aID,
		"data": map[string]any{"description": map[string]any{"type": "offer", "sdp": "v=0\r\n"}},
	}
	mustEmit(t, n, "b", "#rtcio:message", msg)
	if got := mustWait(t, ctx, n, "a", "#rtcio:message", nil); !reflect.DeepEqual(got, []any{msg}) {
		t.Fatalf("relayed message = %v, want %v", got, msg)
	}

	// Abrupt loss: the server learns it from the transport, not a packet.
	if err := n.Drop("b"); err != nil {
		t.Fatal(err)
	}
	reason, err := srv.WaitDisconnect(ctx, bID)
	if err != nil {
		t.Fatal(err)
	}
	if reason != "transport close" && reason != "transport error" {
		t.Fatalf("server saw b leave with %q, want a transport loss", reason)
	}
	mustWait(t, ctx, n, "a", "user-disconnected", hasID(bID))
	mustWait(t, ctx, n, "a", "#rtcio:peer-left", hasID(bID))

	// Clean disconnect: a real DISCONNECT packet.
	if err := n.Disconnect("c"); err != nil {
		t.Fatal(err)
	}
	if reason, err := srv.WaitDisconnect(ctx, cID); err != nil || reason != "client namespace disconnect" {
		t.Fatalf("server saw c leave with %q (%v), want client namespace disconnect", reason, err)
	}
	mustWait(t, ctx, n, "a", "user-disconnected", hasID(cID))
	mustWait(t, ctx, n, "a", "#rtcio:peer-left", hasID(cID))

	wantA := []string{
		EventConnect, "join-ok",
		"user-connected", "#rtcio:init-offer", // c
		"user-connected", "#rtcio:init-offer", // b
		"#rtcio:message",
		"user-disconnected", "#rtcio:peer-left", // b dropped
		"user-disconnected", "#rtcio:peer-left", // c left
	}
	if names := n.EventNames("a"); !slices.Equal(names, wantA) {
		t.Fatalf("a received %v, want %v", names, wantA)
	}
	if names := n.EventNames("b"); names[len(names)-1] != EventDisconnect {
		t.Fatalf("b's last event = %v, want its own disconnect", names)
	}
}

// TestDropLongPolling checks that a drop is abrupt on the long-polling
// transport too, where no TCP connection stays open between requests: if
// no poll was pending, only the ping timeout can tell, hence short pings.
func TestDropLongPolling(t *testing.T) {
	srv := StartRefServerWith(t, RefServerConfig{PingInterval: 300 * time.Millisecond, PingTimeout: 300 * time.Millisecond})
	n := StartNodeClients(t)
	ctx := testCtx(t, 30*time.Second)

	id := mustConnect(t, n, "p", srv.URL(), map[string]any{"transports": []string{"polling"}})
	if err := n.Drop("p"); err != nil {
		t.Fatal(err)
	}
	reason, err := srv.WaitDisconnect(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if reason == "client namespace disconnect" || reason == "" {
		t.Fatalf("server saw a polling drop as %q, want a transport loss", reason)
	}
	ev, err := n.Take(ctx, "p", func(e Event) bool { return e.Name == EventDisconnect })
	if err != nil {
		t.Fatal(err)
	}
	if ev.Reason == "io client disconnect" {
		t.Fatalf("client reason %q: a drop must not look like a clean disconnect", ev.Reason)
	}
	// The name is free again after a drop.
	if _, err := n.Connect("p", srv.URL(), nil); err != nil {
		t.Fatalf("reconnect under the same name: %v", err)
	}
}

// TestMailbox checks Next and WaitEvent semantics: WaitEvent leaves the
// events it passes over for later, and nothing is delivered twice.
func TestMailbox(t *testing.T) {
	url := StartRefServer(t)
	n := StartNodeClients(t)
	ctx := testCtx(t, 30*time.Second)

	mustConnect(t, n, "x", url, nil)
	mustConnect(t, n, "y", url, nil)
	mustEmit(t, n, "x", "join-room", map[string]any{"roomId": "m", "name": "X"})
	mustWait(t, ctx, n, "x", "join-ok", nil)
	mustEmit(t, n, "y", "join-room", map[string]any{"roomId": "m", "name": "Y"})

	// init-offer arrives after user-connected; taking it first must leave
	// user-connected in the mailbox.
	mustWait(t, ctx, n, "x", "#rtcio:init-offer", nil)
	for _, want := range []string{EventConnect, "user-connected"} {
		ev, err := n.Next(ctx, "x")
		if err != nil {
			t.Fatal(err)
		}
		if ev.Name != want {
			t.Fatalf("Next = %q, want %q", ev.Name, want)
		}
	}
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if ev, err := n.Next(short, "x"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next on an empty mailbox = %+v, %v; want deadline exceeded", ev, err)
	}
	if got := len(n.Events("x")); got != 4 {
		t.Fatalf("history has %d events, want 4 (connect, join-ok, user-connected, init-offer)", got)
	}
}

// TestConnectRefused checks that a failed connection is reported as a
// *ConnectError, with the client's own message, and leaves no client.
func TestConnectRefused(t *testing.T) {
	n := StartNodeClients(t)
	closed := "http://" + FreeAddr(t)
	_, err := n.Connect("z", closed, map[string]any{"transports": []string{"websocket"}})
	var ce *ConnectError
	if !errors.As(err, &ce) {
		t.Fatalf("connect to a closed port: %v, want *ConnectError", err)
	}
	if ce.Message == "" || ce.Client != "z" {
		t.Fatalf("connect error %+v lacks the client's message", ce)
	}
	if err := n.Emit("z", "x"); err == nil {
		t.Fatal("emit from a client that never connected succeeded")
	}
}

// TestEmitBinaryAndUnknownClient covers argument encoding and the driver's
// refusal of bad commands without dying.
func TestEmitBinaryAndUnknownClient(t *testing.T) {
	url := StartRefServer(t)
	n := StartNodeClients(t)
	ctx := testCtx(t, 30*time.Second)
	aID := mustConnect(t, n, "a", url, nil)
	mustConnect(t, n, "b", url, nil)

	var de *DriverError
	if err := n.Emit("nobody", "x"); !errors.As(err, &de) {
		t.Fatalf("emit from unknown client: %v, want *DriverError", err)
	}
	payload := []byte{0, 1, 2, 0xff}
	mustEmit(t, n, "b", "#rtcio:message", map[string]any{"target": aID, "data": Binary(payload)})
	args := mustWait(t, ctx, n, "a", "#rtcio:message", nil)
	m, _ := args[0].(map[string]any)
	if got, ok := DecodeBinary(m["data"]); !ok || !slices.Equal(got, payload) {
		t.Fatalf("binary attachment arrived as %v", m["data"])
	}
}
