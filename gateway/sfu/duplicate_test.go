package sfu_test

import (
	"maps"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/rtcio-gateway/rtcio-gateway/gateway"
	"github.com/rtcio-gateway/rtcio-gateway/gateway/sfu"
	"github.com/rtcio-gateway/rtcio-gateway/internal/gatewaytest"
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
