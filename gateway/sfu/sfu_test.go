package sfu_test

import (
	"slices"
	"testing"
	"time"

	"github.com/rtcio-gateway/rtcio-gateway/gateway/sfu"
	"github.com/rtcio-gateway/rtcio-gateway/internal/testenv"
	"github.com/rtcio-gateway/rtcio-gateway/rtcio"
)

func TestMain(m *testing.M) { testenv.VerifyTestMain(m) }

type cameraMeta struct {
	Name   string              `json:"name"`
	Stream *rtcio.RemoteStream `json:"stream"`
}

// checkCamera asserts a received stream event carries the publisher's
// event name, metadata, RTCIOStream id and MediaStream id.
func checkCamera(t *testing.T, who string, ev *rtcio.Event, st *rtcio.Stream, name string) {
	t.Helper()
	var meta cameraMeta
	if err := ev.Decode(0, &meta); err != nil {
		t.Fatalf("%s: decode %v: %v", who, ev.Raw, err)
	}
	if meta.Name != name || meta.Stream == nil {
		t.Fatalf("%s: metadata %+v, want name %q and the stream", who, meta, name)
	}
	if meta.Stream.ID() != st.ID() || meta.Stream.MediaStreamID() != st.MediaStreamID() {
		t.Fatalf("%s: stream ids %q/%q, want the publisher's %q/%q", who, meta.Stream.ID(), meta.Stream.MediaStreamID(), st.ID(), st.MediaStreamID())
	}
}

func trackIDs(st *rtcio.Stream) []string {
	var ids []string
	for _, tr := range st.Tracks() {
		ids = append(ids, tr.ID())
	}
	return ids
}

// TestSFURelayAndReplay: in an SFU room each client has one peer, the
// gateway's; a published stream reaches the other clients with its event
// name, metadata and ids intact and real RTP; a late joiner gets it; after
// the publisher's untrackStream a later joiner does not, while connected
// clients keep receiving it; re-emitted under a new name it replays under
// that name; when the publisher leaves, the others see its tracks removed.
func TestSFURelayAndReplay(t *testing.T) {
	gw, notes := startSFU(t)
	const room = "sfu-room"
	a := dial(t, gw.URL, room)
	b := dial(t, gw.URL, room)
	bCam := collect(b.Socket, "camera")

	st := publishFixture(t, a.Socket, "camera", "alice-cam", map[string]any{"name": "alice"})
	ev := bCam.next(t, "camera on b")
	checkCamera(t, "b", ev, st, "alice")
	gwPeer := ev.PeerID
	if gwPeer == a.ID() {
		t.Fatalf("b received the stream straight from a: not an SFU")
	}
	b.waitRTP(t, 20, trackIDs(st)...)

	// A late joiner gets the live stream.
	c := dial(t, gw.URL, room)
	cCam := collect(c.Socket, "camera")
	checkCamera(t, "c", cCam.next(t, "camera on c"), st, "alice")
	c.waitRTP(t, 20, trackIDs(st)...)
	for _, x := range []*client{a, b, c} {
		if peers := x.Peers(); !slices.Equal(peers, []string{gwPeer}) {
			t.Errorf("%s has peers %v, want only the gateway %s", x.ID(), peers, gwPeer)
		}
	}

	// The publisher untracks: a later joiner does not get the stream, the
	// connected ones keep receiving it.
	a.UntrackStream(st)
	d := dial(t, gw.URL, room)
	dCam := collect(d.Socket, "camera")
	notes.wait(t, "not replayed to d", func(n sfu.Notice) bool {
		return n.Kind == sfu.StreamNotReplayed && n.Client == d.ID() && n.Stream == st.ID()
	})
	if !dCam.empty() {
		t.Fatalf("d got the untracked stream")
	}
	b.waitRTP(t, 40, trackIDs(st)...)

	// Emitted again under a new name, the stream replays under that name.
	if err := a.Emit("screen", map[string]any{"name": "alice-again", "stream": st}); err != nil {
		t.Fatal(err)
	}
	e := dial(t, gw.URL, room)
	eScreen := collect(e.Socket, "screen")
	checkCamera(t, "e", eScreen.next(t, "screen on e"), st, "alice-again")
	e.waitRTP(t, 20, trackIDs(st)...)

	// The publisher leaves: every other client sees its tracks removed.
	removed := collect(b.Socket, rtcio.EventTrackRemoved)
	start := time.Now()
	_ = a.Close()
	for range st.Tracks() {
		removed.next(t, "track-removed on b")
	}
	t.Logf("tracks removed %v after the publisher left", time.Since(start).Round(time.Millisecond))
	notes.wait(t, "unpublished", func(n sfu.Notice) bool { return n.Kind == sfu.StreamUnpublished && n.Stream == st.ID() })
}
