package sfu_test

import (
	"context"
	"maps"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/rtcio-gateway/rtcio-gateway/gateway"
	"github.com/rtcio-gateway/rtcio-gateway/gateway/sfu"
	"github.com/rtcio-gateway/rtcio-gateway/internal/gatewaytest"
	"github.com/rtcio-gateway/rtcio-gateway/internal/mediafixture"
	"github.com/rtcio-gateway/rtcio-gateway/rtcio"
)

// TestDuplicateTransceiversForwardedAndRecordedOnce reproduces the rtc.io
// client's double transceivers: one publisher sends the same MediaStream
// (same stream id, same track ids) on two transceiver pairs, so the gateway
// receives four tracks for a camera. Every subscriber gets exactly one
// track per kind, the recording holds one audio and one video track, the
// duplicate counter counts the two copies, and the publisher gets no error.
func TestDuplicateTransceiversForwardedAndRecordedOnce(t *testing.T) {
	if _, err := exec.LookPath("ffprobe"); err != nil {
		t.Skip("ffprobe missing (scripts/test.sh installs ffmpeg)")
	}
	n := newNotices()
	cfg := gatewaytest.SFUConfig()
	cfg.Recording.Mode = "all"
	cfg.Recording.Dir = t.TempDir()
	cfg.Metrics.Public = true
	gw := gatewaytest.StartGateway(t, cfg, gateway.WithStreamNotices(n.add))
	const room = "dups"

	pub := dial(t, gw.URL, room)
	var errsMu sync.Mutex
	var errs []string
	pub.Server().On("gateway-error", func(ev *rtcio.Event) {
		errsMu.Lock()
		errs = append(errs, string(ev.Raw[0]))
		errsMu.Unlock()
	})
	sub1 := dialNoJoin(t, gw.URL)
	join(t, sub1.Socket, room)

	// Two Streams over the same two tracks: rtc.io adds a transceiver per
	// track for each, so the SDP carries every track twice under one msid.
	const msid = "dup-cam"
	audio, video := fixtureTracks(t, msid)
	first, err := rtcio.NewStream(audio, video)
	if err != nil {
		t.Fatal(err)
	}
	second, err := rtcio.NewStream(audio, video)
	if err != nil {
		t.Fatal(err)
	}
	if first.MediaStreamID() != second.MediaStreamID() {
		t.Fatalf("the two streams have MediaStream ids %q and %q, want one", first.MediaStreamID(), second.MediaStreamID())
	}
	if err := pub.Emit("camera", map[string]any{"name": "pub", "stream": first}); err != nil {
		t.Fatal(err)
	}
	if err := pub.Emit("camera", map[string]any{"name": "pub", "stream": second}); err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{"audio-" + msid, "video-" + msid} {
		n.wait(t, "duplicate of "+kind+" dropped", func(x sfu.Notice) bool {
			return x.Kind == sfu.DuplicateTrackDropped && x.Track == kind && x.MediaStream == msid
		})
	}
	sub2 := dialNoJoin(t, gw.URL) // a late joiner too
	join(t, sub2.Socket, room)
	ids := trackIDs(first)
	sub1.waitRTP(t, 100, ids...)
	sub2.waitRTP(t, 100, ids...)
	for i, s := range []*client{sub1, sub2} {
		s.mu.Lock()
		got := maps.Clone(s.given)
		s.mu.Unlock()
		want := map[string]int{"audio-" + msid: 1, "video-" + msid: 1}
		if len(got) != 2 || got["audio-"+msid] != 1 || got["video-"+msid] != 1 {
			t.Errorf("subscriber %d was given tracks %v, want %v", i+1, got, want)
		}
	}
	streams := gw.Server.SFU().Room(room).Streams()
	if len(streams) != 1 || streams[0].Tracks != 2 {
		t.Errorf("room relays %+v, want one stream of two tracks", streams)
	}
	if got := value(t, scrape(t, gw.URL), "rtcio_duplicate_tracks_dropped_total"); got != 2 {
		t.Errorf("rtcio_duplicate_tracks_dropped_total = %v, want 2", got)
	}

	// The recording: ended by the publisher leaving.
	_ = pub.Close()
	rec := n.wait(t, "recording finished", func(x sfu.Notice) bool { return x.Kind == sfu.RecordingFinished })
	media := strings.TrimSuffix(rec.Manifest, ".json") + ".webm"
	kinds := ffprobeStreams(t, media)
	slices.Sort(kinds)
	if !slices.Equal(kinds, []string{"audio", "video"}) {
		t.Errorf("recording has streams %v, want one audio and one video", kinds)
	}
	errsMu.Lock()
	defer errsMu.Unlock()
	if len(errs) > 0 {
		t.Errorf("publisher got gateway errors: %v", errs)
	}
}

// TestBrowserDuplicateTransceivers: the same with Chromium's own SDP. The
// conformance page, like the rtc.io client, adds a second set of sendonly
// transceivers when a stream is emitted again; the gateway gets every
// track twice under one msid. A Go subscriber is given one track per kind,
// the recording holds one audio and one video track, both copies are
// counted, and the page gets no gateway-error.
func TestBrowserDuplicateTransceivers(t *testing.T) {
	env := startRecordingBrowser(t)
	gw, n, ctx := env.gw, env.notes, env.ctx

	const room = "dups-browser"
	sub := dialNoJoin(t, gw.URL)
	join(t, sub.Socket, room)
	p := env.openPage(t, "alice")
	env.joinPage(t, p, room)
	gatewayPeerOf(t, ctx, p)
	st := env.publishPage(t, p, "camera", "alice")
	if _, err := p.EmitStream(ctx, "camera", pageArgs("alice"), st.RTCIOStreamID); err != nil {
		t.Fatal(err)
	}
	// Chromium gives the second sender of a track its own msid track id,
	// so the copies are told by the SDP's whole repeated set.
	first := n.wait(t, "a duplicate dropped", func(x sfu.Notice) bool {
		return x.Kind == sfu.DuplicateTrackDropped && x.MediaStream == st.MediaStreamID
	})
	n.wait(t, "the other duplicate dropped", func(x sfu.Notice) bool {
		return x.Kind == sfu.DuplicateTrackDropped && x.MediaStream == st.MediaStreamID && x.Track != first.Track
	})
	// Chromium's copies carry track ids of their own, and whichever copy
	// of a kind reaches the gateway first is the one forwarded: the
	// subscriber must be given one audio and one video track, once each.
	ids := sub.waitKinds(t, "audio", "video")
	sub.waitRTP(t, 100, ids...)
	sub.mu.Lock()
	given := maps.Clone(sub.given)
	sub.mu.Unlock()
	if len(given) != 2 || given[ids[0]] != 1 || given[ids[1]] != 1 {
		t.Errorf("subscriber was given tracks %v, want one audio and one video track once each (page tracks %v)", given, st.TrackIDs)
	}
	if got := value(t, scrape(t, gw.URL), "rtcio_duplicate_tracks_dropped_total"); got != 2 {
		t.Errorf("rtcio_duplicate_tracks_dropped_total = %v, want 2", got)
	}
	// The page still uploads both copies (the gateway does not answer them
	// inactive); logged for the record.
	stats, err := p.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for peer, s := range stats {
		for _, out := range s.Outbound {
			t.Logf("page outbound to %s: %s mid %s ssrc %d packets %d bytes %d", peer, out.Kind, out.Mid, out.SSRC, out.PacketsSent, out.BytesSent)
		}
	}

	if evs, err := p.Events(ctx, 0); err == nil {
		for _, e := range evs {
			if e.Type == "server" && e.Name == "gateway-error" {
				t.Errorf("page got a gateway-error: %+v", e)
			}
		}
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	rec := n.wait(t, "recording finished", func(x sfu.Notice) bool { return x.Kind == sfu.RecordingFinished })
	kinds := ffprobeStreams(t, strings.TrimSuffix(rec.Manifest, ".json")+".webm")
	slices.Sort(kinds)
	if !slices.Equal(kinds, []string{"audio", "video"}) {
		t.Errorf("recording has streams %v, want one audio and one video", kinds)
	}
}

// TestStreamWithTwoVideoTracksForwardedWhole: a stream that really has two
// tracks of one kind (audio, camera and screen under one MediaStream) is
// not mistaken for a repeated copy.
func TestStreamWithTwoVideoTracksForwardedWhole(t *testing.T) {
	gw, n := startSFU(t)
	const room, msid = "two-videos", "two-videos-cam"
	pub := dial(t, gw.URL, room)
	sub := dialNoJoin(t, gw.URL)
	join(t, sub.Socket, room)
	audio, video := fixtureTracks(t, msid)
	screen, err := mediafixture.NewVP8Track("screen-"+msid, msid)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = mediafixture.PlayIVF(ctx, mediafixture.Path(mediafixture.VP8), screen) }()
	t.Cleanup(func() { cancel(); <-done })
	st, err := rtcio.NewStream(audio, video, screen)
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.Emit("camera", map[string]any{"name": "pub", "stream": st}); err != nil {
		t.Fatal(err)
	}
	ids := trackIDs(st)
	sub.waitRTP(t, 50, ids...)
	sub.mu.Lock()
	given := maps.Clone(sub.given)
	sub.mu.Unlock()
	if len(given) != 3 {
		t.Errorf("subscriber was given tracks %v, want each of %v once", given, ids)
	}
	for _, id := range ids {
		if given[id] != 1 {
			t.Errorf("subscriber was given track %s %d times, want once", id, given[id])
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, x := range n.all {
		if x.Kind == sfu.DuplicateTrackDropped {
			t.Errorf("a track of a stream with two videos was dropped as a duplicate: %+v", x)
		}
	}
}
