package signaling_test

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/rtcio-gateway/rtcio-gateway/gateway/signaling"
	"github.com/rtcio-gateway/rtcio-gateway/internal/testenv"
)

func description(sdp string, extra map[string]any) map[string]any {
	data := map[string]any{"description": map[string]any{"type": "offer", "sdp": sdp}}
	for k, v := range extra {
		data[k] = v
	}
	return data
}

// TestDescriptionLimit checks the separate bound on session descriptions:
// an offer larger than the ordinary payload limit passes, one larger than
// its own limit is refused, counted and logged as an error naming the room,
// padding around a description still meets the ordinary limit, and the
// gateway's own peer is never refused.
func TestDescriptionLimit(t *testing.T) {
	logs := &testenv.LockedBuffer{}
	srv, url := startSignaling(t, signaling.Options{
		MaxPayloadBytes: 4 << 10, MaxDescriptionBytes: 16 << 10,
		EnforceSource: true, RequireSharedRoom: true,
		Topology: func(string) signaling.Topology { return signaling.SFU{} },
		Logger:   slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo})),
	})
	const room = "big-room"
	a := dialGo(t, url, "a", dialOptions{})
	a.Emit("join-room", map[string]any{"roomId": room, "name": "a"})
	a.Wait("join-ok", nil)
	gw := srv.AttachLocal(signaling.RoleGateway)
	t.Cleanup(gw.Close)
	gwLog := attachLog(gw)
	if err := gw.Emit("join-room", map[string]any{"roomId": room, "name": "gateway"}); err != nil {
		t.Fatal(err)
	}
	gwLog.log.wait(t, "gateway", "#rtcio:init-offer", bySource(a.ID()))

	// Over the ordinary limit, under the description limit: relayed.
	a.Emit("#rtcio:message", map[string]any{"target": gw.ID(), "data": description(strings.Repeat("a", 10<<10), nil)})
	gwLog.log.wait(t, "gateway", "#rtcio:message", func(o map[string]any) bool {
		d, _ := o["data"].(map[string]any)
		return d["description"] != nil
	})

	// Over the description limit: refused.
	a.Emit("#rtcio:message", map[string]any{"target": gw.ID(), "data": description(strings.Repeat("b", 20<<10), nil)})
	ev := refusal(a, "payload-too-large")
	if msg, _ := ev.obj()["message"].(string); !strings.Contains(msg, "session description") {
		t.Errorf("refusal message %q does not say a session description was too large", msg)
	}
	if n := srv.DescriptionRefusals(); n != 1 {
		t.Errorf("description refusals %d, want 1", n)
	}
	if l := logs.String(); !strings.Contains(l, "level=ERROR") || !strings.Contains(l, "room="+room) {
		t.Errorf("the refused description was not logged as an error naming the room:\n%s", l)
	}

	// A small description padded past the ordinary limit: refused too,
	// since only the sdp gets the larger bound.
	a.Emit("#rtcio:message", map[string]any{"target": gw.ID(), "data": description("v=0", map[string]any{"pad": strings.Repeat("c", 8<<10)})})
	refusal(a, "payload-too-large")
	// Anything else keeps the ordinary limit.
	a.Emit("#rtcio:message", map[string]any{"target": gw.ID(), "data": map[string]any{"mid": strings.Repeat("d", 8<<10)}})
	refusal(a, "payload-too-large")
	if n := srv.DescriptionRefusals(); n != 2 {
		t.Errorf("description refusals %d, want 2 (the padded one counts, the plain message does not)", n)
	}

	// The gateway's own peer is never refused, whatever the size.
	big := strings.Repeat("e", 40<<10)
	if err := gw.Emit("#rtcio:message", map[string]any{"target": a.ID(), "data": description(big, nil)}); err != nil {
		t.Fatal(err)
	}
	got := a.Wait("#rtcio:message", bySource(gw.ID()))
	d, _ := got.obj()["data"].(map[string]any)
	desc, _ := d["description"].(map[string]any)
	if desc["sdp"] != big {
		t.Errorf("a did not receive the gateway's whole description")
	}
	if n := srv.Refusals()[signaling.ReasonPayloadTooLarge]; n != 3 {
		t.Errorf("payload-too-large refusals %d, want 3 (none for the gateway)", n)
	}
}
