package sfu_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/rtcio-gateway/rtcio-gateway/gateway"
	"github.com/rtcio-gateway/rtcio-gateway/gateway/sfu"
	"github.com/rtcio-gateway/rtcio-gateway/internal/gatewaytest"
	"github.com/rtcio-gateway/rtcio-gateway/rtcio"
)

// TestSFUApplicationUntrack: the application retires streams for later
// joiners, by the admin API (any stream) or by the untrack-stream server
// event (the publisher's own streams only); connected clients keep them.
func TestSFUApplicationUntrack(t *testing.T) {
	n := newNotices()
	cfg := gatewaytest.SFUConfig()
	cfg.Admin.Token = "admin-token"
	gw := gatewaytest.StartGateway(t, cfg, gateway.WithStreamNotices(n.add))
	const room = "untrack"
	a := dial(t, gw.URL, room)
	b := dial(t, gw.URL, room)
	camA := publishFixture(t, a.Socket, "camera", "cam-a", map[string]any{"name": "a"})
	camB := publishFixture(t, b.Socket, "camera", "cam-b", map[string]any{"name": "b"})
	for _, st := range []*rtcio.Stream{camA, camB} {
		n.wait(t, "published", func(x sfu.Notice) bool { return x.Kind == sfu.StreamPublished && x.Stream == st.ID() })
	}

	// The admin API lists both streams.
	req, _ := http.NewRequest(http.MethodGet, gw.URL+"/admin/v1/rooms/"+room+"/streams", nil)
	req.Header.Set("Authorization", "Bearer admin-token")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var listed struct{ Streams []sfu.StreamInfo }
	_ = json.NewDecoder(resp.Body).Decode(&listed)
	resp.Body.Close()
	if len(listed.Streams) != 2 {
		t.Fatalf("admin lists %+v, want both streams", listed.Streams)
	}

	// b may not untrack a's stream; a may.
	errs := collect(b.Socket, "gateway-error")
	_ = b.Server().Emit("untrack-stream", map[string]any{"roomId": room, "streamId": camA.ID()})
	if ev := errs.next(t, "refusal"); !containsCode(ev, "forbidden") {
		t.Fatalf("b untracking a's stream: %v", ev.Raw)
	}
	done := collect(a.Socket, "stream-untracked")
	_ = a.Server().Emit("untrack-stream", map[string]any{"roomId": room, "streamId": camA.ID()})
	done.next(t, "stream-untracked")

	// The admin untracks b's stream.
	req, _ = http.NewRequest(http.MethodPost, gw.URL+"/admin/v1/rooms/"+room+"/streams/"+camB.ID()+"/untrack", nil)
	req.Header.Set("Authorization", "Bearer admin-token")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("admin untrack: %d", resp.StatusCode)
	}

	// A later client gets neither; a and b keep receiving each other's.
	c := dial(t, gw.URL, room)
	cams := collect(c.Socket, "camera")
	for _, st := range []*rtcio.Stream{camA, camB} {
		n.wait(t, "not replayed", func(x sfu.Notice) bool {
			return x.Kind == sfu.StreamNotReplayed && x.Client == c.ID() && x.Stream == st.ID()
		})
	}
	if !cams.empty() {
		t.Fatal("a later client got an untracked stream")
	}
	a.waitRTP(t, 30, trackIDs(camB)...)
	b.waitRTP(t, 30, trackIDs(camA)...)
}

func containsCode(ev *rtcio.Event, code string) bool {
	var body struct{ Code string }
	return ev.Decode(0, &body) == nil && body.Code == code
}
