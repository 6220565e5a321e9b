package rtcio

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/rtcio-gateway/rtcio-gateway/internal/testenv"
)

// TestBrowserInterop meets a Go Socket and the browser conformance peer
// (Chromium's own RTCPeerConnection speaking docs/PROTOCOL.md) through our
// signaling server, with Go as the polite and as the impolite side.
func TestBrowserInterop(t *testing.T) {
	leakCheck(t)
	for _, goPolite := range []bool{true, false} {
		name := "go-impolite"
		if goPolite {
			name = "go-polite"
		}
		t.Run(name, func(t *testing.T) { browserInterop(t, goPolite) })
	}
}

func browserInterop(t *testing.T, goPolite bool) {
	leakCheck(t)
	testenv.SkipIfNoBrowser(t)
	url := startGateway(t)
	web := testenv.ServeWeb(t)
	br := testenv.StartBrowser(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	g := dial(t, url, testOptions(t))
	gRTP := newRTPCounter(g)
	gCam := collect(g, "camera")
	gConn := collect(g, EventPeerConnect)
	gChat := collect(g, "chat")
	gSentinel := collect(g, "sentinel")
	gFiles, err := g.CreateChannel("files", ChannelOptions{})
	if err != nil {
		t.Fatal(err)
	}
	gFileMsg := collect(gFiles, "note")
	gFileData := collect(gFiles, ChannelEventData)

	st, _, _ := fixtureStream(t, "go-cam")
	if err := g.Emit("camera", map[string]any{"who": "go"}, st); err != nil {
		t.Fatal(err)
	}

	page, err := testenv.OpenConformancePage(ctx, t, br, url, testenv.ConformanceOptions{WebURL: web, Name: "browser"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := page.CreateChannel(ctx, "files", testenv.ChannelOptions{}); err != nil {
		t.Fatal(err)
	}
	// The member already in the room gets #rtcio:init-offer and is polite.
	// Each join waits for the server's join-ok, so the order is certain.
	gJoined := collect(g.Server(), "join-ok")
	first := func() error { join(t, g, "interop"); gJoined.next(t, "go join-ok"); return nil }
	second := func() error {
		if err := page.JoinRoom(ctx, "interop", ""); err != nil {
			return err
		}
		_, err := page.WaitFor(ctx, `e.type === 'server' && e.name === 'join-ok'`, 0)
		return err
	}
	if !goPolite {
		first, second = second, first
	}
	if err := first(); err != nil {
		t.Fatal(err)
	}
	if err := second(); err != nil {
		t.Fatal(err)
	}
	if e := gConn.next(t, "peer-connect with the browser"); e.PeerID != page.ID {
		t.Fatalf("go connected to %s, want %s", e.PeerID, page.ID)
	}
	if st, ok := g.Peer(page.ID).State(); !ok || st.Polite != goPolite {
		t.Fatalf("go polite=%v, want %v", st.Polite, goPolite)
	}

	// Browser camera -> Go: metadata, ids and RTP of the negotiated codec.
	cam, err := page.PublishCamera(ctx, "camera", []any{map[string]any{"who": "browser"}, "$stream"}, testenv.MediaOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ev := gCam.next(t, "browser camera on go")
	var meta struct{ Who string }
	if err := ev.Decode(0, &meta); err != nil || meta.Who != "browser" {
		t.Fatalf("camera meta %+v (%v)", meta, err)
	}
	if ev.Stream == nil || ev.Args[1] != ev.Stream || ev.Stream.ID() != cam.RTCIOStreamID || ev.Stream.MediaStreamID() != cam.MediaStreamID {
		t.Fatalf("camera stream %+v, want ids of %+v", ev.Stream, cam)
	}
	var video *webrtc.TrackRemote
	deadline := time.After(waitFor)
	for video == nil {
		for _, tr := range ev.Stream.Tracks() {
			if tr.Kind() == webrtc.RTPCodecTypeVideo {
				video = tr
			}
		}
		if video == nil {
			select {
			case <-gRTP.cond:
			case <-deadline:
				t.Fatal("no video track from the browser")
			}
		}
	}
	if mt := video.Codec().MimeType; !strings.HasPrefix(mt, "video/") || video.PayloadType() == 0 {
		t.Fatalf("video codec %q pt %d", mt, video.PayloadType())
	}
	gRTP.waitPackets(t, video, 30)

	// Go camera -> browser: metadata with our ids, and decoded frames.
	bev, err := page.WaitFor(ctx, `e.type === 'stream-event' && e.name === 'camera'`, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := bev.StreamArg(); !ok || got.RTCIOStreamID != st.ID() || got.MediaStreamID != st.MediaStreamID() || bev.PeerID != g.ID() {
		t.Fatalf("browser camera event %s", bev.Raw)
	}
	pred := fmt.Sprintf(`(s[%q] || {inbound: []}).inbound.some((i) => i.kind === 'video' && i.framesDecoded > 0)`, g.ID())
	if _, err := page.WaitForStats(ctx, pred); err != nil {
		t.Fatalf("browser decoded no video from go: %v", err)
	}

	// Ctrl events both ways.
	if err := g.Emit("chat", "from-go", 7); err != nil {
		t.Fatal(err)
	}
	if e, err := page.WaitFor(ctx, `e.type === 'event' && e.name === 'chat'`, 0); err != nil || e.PeerID != g.ID() {
		t.Fatalf("browser chat %+v (%v)", e, err)
	}
	if err := page.Emit(ctx, "chat", "from-browser"); err != nil {
		t.Fatal(err)
	}
	if e := gChat.next(t, "chat from browser"); e.Args[0] != "from-browser" || e.PeerID != page.ID {
		t.Fatalf("go chat %+v", e.Args)
	}

	// Custom channel both ways, text and binary.
	if _, err := page.WaitFor(ctx, `e.type === 'channel-open' && e.channel === 'files'`, 0); err != nil {
		t.Fatal(err)
	}
	if err := gFiles.Emit("note", "go-note"); err != nil {
		t.Fatal(err)
	}
	if _, err := page.WaitFor(ctx, `e.type === 'channel-event' && e.channel === 'files' && e.name === 'note'`, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := gFiles.Send([]byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	if e, err := page.WaitFor(ctx, `e.type === 'channel-data' && e.channel === 'files'`, 0); err != nil || e.ByteLength != 3 {
		t.Fatalf("browser binary %+v (%v)", e, err)
	}
	if n, err := page.ChannelEmit(ctx, "files", "note", "browser-note"); err != nil || n != 1 {
		t.Fatalf("browser channel emit: %d %v", n, err)
	}
	if e := gFileMsg.next(t, "note from browser"); e.Args[0] != "browser-note" {
		t.Fatalf("note %v", e.Args)
	}
	payload := bytes.Repeat([]byte{9}, 4096)
	if n, err := page.ChannelSendBinary(ctx, "files", payload, g.ID()); err != nil || n != 1 {
		t.Fatalf("browser binary send: %d %v", n, err)
	}
	if e := gFileData.next(t, "binary from browser"); !bytes.Equal(e.Args[0].([]byte), payload) {
		t.Fatal("binary payload mismatch")
	}

	// Hostile frames from the browser are dropped without harm.
	gAny := collect(g, "peer-connect")
	for _, f := range []testenv.RawFrame{
		testenv.RawText(`{"e":"peer-connect","d":[{"id":"forged"}]}`),
		testenv.RawText(`{"e":"#rtcio:message","d":[]}`),
		testenv.RawText(`not json`),
		testenv.RawText(`{"e":42}`),
		testenv.RawBinary([]byte{0, 1}),
	} {
		if r, err := page.SendRaw(ctx, g.ID(), "rtcio:ctrl", f); err != nil || !r.OK {
			t.Fatalf("send raw: %+v %v", r, err)
		}
	}
	big, err := page.SendRaw(ctx, g.ID(), "rtcio:ctrl", testenv.RawLongText("x", 2<<20))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("2 MiB text frame: sent=%v (%s)", big.OK, big.Error)
	if err := page.Emit(ctx, "sentinel"); err != nil {
		t.Fatal(err)
	}
	gSentinel.next(t, "sentinel after hostile frames")
	gAny.none(t, "forged peer-connect", 100*time.Millisecond)
	if st, ok := g.Peer(page.ID).State(); !ok || st.Connection != webrtc.PeerConnectionStateConnected {
		t.Fatalf("go peer after hostile frames: %+v", st)
	}
	gRTP.waitPackets(t, video, 10)
}

// TestBrowserOfferCollision forces an offer collision between the Go Socket
// and Chromium in both roles: both hold their signaling, both publish a
// stream (so both make an offer), then both release. The impolite side must
// ignore the polite side's offer, the polite side must give its own up, and
// both streams must arrive with their events and media.
func TestBrowserOfferCollision(t *testing.T) {
	leakCheck(t)
	for _, goPolite := range []bool{true, false} {
		name := "go-impolite"
		if goPolite {
			name = "go-polite"
		}
		t.Run(name, func(t *testing.T) { browserOfferCollision(t, goPolite) })
	}
}

func browserOfferCollision(t *testing.T, goPolite bool) {
	leakCheck(t)
	testenv.SkipIfNoBrowser(t)
	if !goPolite {
		// Our side works (Go ignores, Chromium rolls back and answers),
		// but Chromium (156) keeps the header-extension ids of the offer
		// it rolled back, which differ from pion's (mid is 1 in pion, 9 in
		// Chromium's video), so its next offer fails: "A BUNDLE group
		// contains a codec collision for header extension id=1". Its
		// stream then never reaches Go. Nothing in the Go peer can repair
		// Chromium's transceiver; see doc.go.
		t.Skip("known Chromium issue: header-extension ids kept across rollback collide with pion's")
	}
	url := startGateway(t)
	web := testenv.ServeWeb(t)
	br := testenv.StartBrowser(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	g, gate := dialGated(t, url, testOptions(t))
	gRTP := newRTPCounter(g)
	gConn := collect(g, EventPeerConnect)
	gScreen := collect(g, "screen")
	page, err := testenv.OpenConformancePage(ctx, t, br, url, testenv.ConformanceOptions{WebURL: web, Name: "browser"})
	if err != nil {
		t.Fatal(err)
	}
	gJoined := collect(g.Server(), "join-ok")
	first := func() error { join(t, g, "glare"); gJoined.next(t, "go join-ok"); return nil }
	second := func() error {
		if err := page.JoinRoom(ctx, "glare", ""); err != nil {
			return err
		}
		_, err := page.WaitFor(ctx, `e.type === 'server' && e.name === 'join-ok'`, 0)
		return err
	}
	if !goPolite {
		first, second = second, first
	}
	if err := first(); err != nil {
		t.Fatal(err)
	}
	if err := second(); err != nil {
		t.Fatal(err)
	}
	gConn.next(t, "peer-connect with the browser")
	if _, err := page.WaitFor(ctx, `e.type === 'peer-connect'`, 0); err != nil {
		t.Fatal(err)
	}
	if st, ok := g.Peer(page.ID).State(); !ok || st.Polite != goPolite {
		t.Fatalf("go polite=%v, want %v", st.Polite, goPolite)
	}

	sum, err := page.Summary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	mark := sum.LastSeq
	if err := page.HoldSignals(ctx); err != nil {
		t.Fatal(err)
	}
	gate.close()
	screen, err := page.PublishCamera(ctx, "screen", []any{"$stream", map[string]any{"by": "browser"}}, testenv.MediaOptions{NoAudio: true, Source: "synthetic"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := page.WaitFor(ctx, `e.type === 'signaling-state' && e.state === 'have-local-offer'`, mark); err != nil {
		t.Fatal(err)
	}
	st, _, _ := fixtureStream(t, "go-screen")
	if err := g.Emit("screen", st, map[string]any{"by": "go"}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-gate.offers:
	case <-timeout():
		t.Fatal("go made no offer while its signaling was held")
	}
	if n, err := page.ReleaseSignals(ctx); err != nil || n == 0 {
		t.Fatalf("release browser signals: %d %v (want the held offer)", n, err)
	}
	gate.open(t)

	// Browser stream on Go, with its ids and VP8/H.264 RTP.
	ev := gScreen.next(t, "browser screen on go")
	if ev.Stream == nil || ev.Stream.ID() != screen.RTCIOStreamID || ev.Stream.MediaStreamID() != screen.MediaStreamID {
		t.Fatalf("screen stream %+v, want ids of %+v", ev.Stream, screen)
	}
	gRTP.waitPackets(t, waitTrack(t, gRTP, ev.Stream, webrtc.RTPCodecTypeVideo), 20)
	// Go stream in the browser, decoded.
	pred := fmt.Sprintf(`e.type === 'stream-event' && e.name === 'screen' && e.peerId === %q`, g.ID())
	bev, err := page.WaitFor(ctx, pred, mark)
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := bev.StreamArg(); !ok || got.RTCIOStreamID != st.ID() {
		t.Fatalf("browser screen event %s, want stream %s", bev.Raw, st.ID())
	}
	stats := fmt.Sprintf(`(s[%q] || {inbound: []}).inbound.some((i) => i.kind === 'video' && i.framesDecoded > 0)`, g.ID())
	if _, err := page.WaitForStats(ctx, stats); err != nil {
		t.Fatalf("browser decoded no video from go: %v", err)
	}

	gs, _ := g.Peer(page.ID).State()
	bs, err := page.Summary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if goPolite && (gs.Rollbacks < 1 || bs.Counters.IgnoredOffers < 1 || bs.Counters.Rollbacks != 0) {
		t.Fatalf("go polite: go %d rollbacks, browser %+v", gs.Rollbacks, bs.Counters)
	}
	if !goPolite && (gs.IgnoredOffers < 1 || bs.Counters.Rollbacks < 1 || gs.Rollbacks != 0) {
		t.Fatalf("go impolite: go %d ignored, browser %+v", gs.IgnoredOffers, bs.Counters)
	}
}
