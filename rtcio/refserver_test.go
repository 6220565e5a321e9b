package rtcio

import (
	"testing"

	"github.com/pion/webrtc/v4"

	"github.com/rtcio-gateway/rtcio-gateway/internal/testenv"
)

// TestAgainstReferenceServer runs Go Sockets against the Node socket.io 4.8
// reference rtc.io server: the Socket needs nothing special from our own
// signaling server.
func TestAgainstReferenceServer(t *testing.T) {
	leakCheck(t)
	url := testenv.StartRefServer(t)
	a := dial(t, url, testOptions(t))
	b := dial(t, url, testOptions(t))
	if len(a.ID()) != 20 {
		t.Logf("reference server id %q (Node ids are 20 chars)", a.ID())
	}
	bRTP := newRTPCounter(b)
	bCam := collect(b, "camera")
	bHi := collect(b, "hi")
	bAdded := collect(b, EventTrackAdded)
	aConn := collect(a, EventPeerConnect)
	bDisc := collect(b, EventPeerDisconnect)
	userConnected := collect(b.Server(), "user-connected")

	st, _, _ := fixtureStream(t, "ref-cam")
	if err := a.Emit("camera", st, map[string]any{"label": "front"}); err != nil {
		t.Fatal(err)
	}
	join(t, a, "ref-room")
	join(t, b, "ref-room")
	if e := userConnected.next(t, "user-connected on b"); e.Args[0].(map[string]any)["id"] != a.ID() {
		t.Fatalf("user-connected %v", e.Args)
	}
	aConn.next(t, "a peer-connect")
	if err := a.Emit("hi", "there"); err != nil {
		t.Fatal(err)
	}
	bHi.next(t, "hi on b")
	ev := bCam.next(t, "camera on b")
	if ev.Stream.ID() != st.ID() || ev.Args[0] != ev.Stream {
		t.Fatalf("camera stream %q", ev.Stream.ID())
	}
	var meta struct{ Label string }
	if err := ev.Decode(1, &meta); err != nil || meta.Label != "front" {
		t.Fatalf("meta %+v %v", meta, err)
	}
	var video *webrtc.TrackRemote
	for _, tr := range ev.Stream.Tracks() {
		if tr.Kind() == webrtc.RTPCodecTypeVideo {
			video = tr
		}
	}
	if video == nil {
		// The video track may land just after the metadata answer.
		video = bAdded.next(t, "video track").Track
	}
	bRTP.waitPackets(t, video, 20)

	aID := a.ID()
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if e := bDisc.next(t, "peer-disconnect on b"); e.PeerID != aID {
		t.Fatalf("disconnect of %s", e.PeerID)
	}
}
