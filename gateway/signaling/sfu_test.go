package signaling_test

import (
	"slices"
	"sync"
	"testing"

	"github.com/rtcio-gateway/rtcio-gateway/gateway/signaling"
	"github.com/rtcio-gateway/rtcio-gateway/internal/gatewaytest"
)

// startSignaling serves a bare signaling server on a loopback port.
func startSignaling(t *testing.T, opts signaling.Options) (*signaling.Server, string) {
	t.Helper()
	srv, err := signaling.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return srv, gatewaytest.ServeSignaling(t, srv)
}

// localLog records what a local participant receives.
type localLog struct {
	log *eventLog
}

func attachLog(l *signaling.LocalConn) *localLog {
	ll := &localLog{log: newEventLog()}
	l.Subscribe(func(event string, args []any) { ll.log.add(received{Event: event, Args: args}) })
	return ll
}

// TestSFUTopology checks the star: the gateway participant (attached in
// process) is the only one told to offer, it is hidden from presence, and
// clients cannot signal each other.
func TestSFUTopology(t *testing.T) {
	var mu sync.Mutex
	var joins []string
	srv, url := startSignaling(t, signaling.Options{
		EnforceSource: true, RequireSharedRoom: true,
		Topology: func(string) signaling.Topology { return signaling.SFU{} },
		OnJoin: func(ev signaling.RoomEvent) {
			mu.Lock()
			joins = append(joins, ev.Member.Role.String()+":"+ev.Member.ID)
			mu.Unlock()
		},
	})
	const room = "star"
	a := dialGo(t, url, "a", dialOptions{})
	a.Emit("join-room", map[string]any{"roomId": room, "name": "a"})
	a.Wait("join-ok", nil)

	gw := srv.AttachLocal(signaling.RoleGateway)
	gwLog := attachLog(gw)
	if err := gw.Emit("join-room", map[string]any{"roomId": room, "name": "gateway"}); err != nil {
		t.Fatal(err)
	}
	gwLog.log.wait(t, "gateway", "join-ok", nil)
	// Joining after a, the gateway is told to offer to a.
	gwLog.log.wait(t, "gateway", "#rtcio:init-offer", bySource(a.ID()))

	b := dialGo(t, url, "b", dialOptions{})
	b.Emit("join-room", map[string]any{"roomId": room, "name": "b"})
	b.Wait("join-ok", nil)
	gwLog.log.wait(t, "gateway", "#rtcio:init-offer", bySource(b.ID()))
	a.Wait("user-connected", byID(b.ID()))

	// Clients cannot signal each other; client and gateway can.
	b.Emit("#rtcio:message", map[string]any{"target": a.ID(), "data": map[string]any{"mid": "x"}})
	refusal(b, "not-relayed")
	b.Emit("#rtcio:message", map[string]any{"target": gw.ID(), "data": map[string]any{"mid": "y"}})
	got := gwLog.log.wait(t, "gateway", "#rtcio:message", bySource(b.ID()))
	if got.obj()["target"] != gw.ID() {
		t.Errorf("gateway received %v", got.obj())
	}
	if err := gw.Emit("#rtcio:message", map[string]any{"target": a.ID(), "data": map[string]any{"mid": "z"}}); err != nil {
		t.Fatal(err)
	}
	a.Wait("#rtcio:message", bySource(gw.ID()))

	gw.Close()
	a.Wait("#rtcio:peer-left", byID(gw.ID()))
	b.Wait("#rtcio:peer-left", byID(gw.ID()))
	// A marker after the close: presence of the hidden gateway never shows.
	b.Emit("media-state", map[string]any{"roomId": room, "mic": true, "cam": true})
	a.Wait("media-state", byID(b.ID()))

	for _, c := range []*goClient{a, b} {
		for _, ev := range c.Events() {
			switch {
			case ev.Event == "#rtcio:init-offer":
				t.Errorf("%s got an init-offer in an SFU room: %v", c.name, ev.obj())
			case (ev.Event == "user-connected" || ev.Event == "user-disconnected") && ev.obj()["id"] == gw.ID():
				t.Errorf("%s saw the hidden gateway in presence: %v", c.name, ev)
			}
		}
	}
	gwEvents := summaries(gwLog.log.all())
	wantGW := []string{
		"user-connected:" + a.ID() + "/a", "join-ok:" + room, "init-offer:" + a.ID(),
		"user-connected:" + b.ID() + "/b", "init-offer:" + b.ID(),
		"message:" + b.ID() + "->" + gw.ID(),
	}
	if !slices.Equal(gwEvents, wantGW) {
		t.Errorf("gateway received\n  %q\nwant\n  %q", gwEvents, wantGW)
	}
	// OnJoin runs after the joiner was answered, so its calls may trail
	// the test's own steps: compare them as a set.
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(joins)
	want := []string{"client:" + a.ID(), "gateway:" + gw.ID(), "client:" + b.ID()}
	slices.Sort(want)
	if !slices.Equal(joins, want) {
		t.Errorf("OnJoin saw %v, want %v", joins, want)
	}
}
