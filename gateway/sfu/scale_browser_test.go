package sfu_test

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
	"github.com/pion/webrtc/v4/pkg/media/ivfreader"

	"github.com/rtcio-gateway/rtcio-gateway/config"
	"github.com/rtcio-gateway/rtcio-gateway/gateway/signaling"
	"github.com/rtcio-gateway/rtcio-gateway/internal/mediafixture"
	"github.com/rtcio-gateway/rtcio-gateway/rtcio"
)

// TestBrowserSFUTwentyPublishers puts a Chromium page in a room with 20 Go
// publishers (VP8 fixture keyframes and sparse Opus each): the page gets all
// 20 camera events from the gateway peer and decodes frames of every one of
// the 20 videos. Its one peer connection then carries 40 forwarded m-lines;
// with every codec of the media engine on each, the gateway's offer and the
// page's answer passed 64 KiB from about 12 publishers on, and the answer
// was refused. Here the real browser accepts m-lines that list one codec
// and its RTX, and no description is refused.
func TestBrowserSFUTwentyPublishers(t *testing.T) {
	if testing.Short() {
		t.Skip("20 publishers and a browser")
	}
	// Twenty peers, the race-instrumented gateway and a browser share this
	// machine: a publisher's answer to the gateway's metadata request (a
	// late joiner's replay) can take many seconds, which is not under test.
	env := startBrowserSFU(t, 4*time.Minute, func(c *config.Config) { c.Media.MetadataWait = 30 * time.Second })
	ctx := env.ctx
	const room, n = "twenty", 20
	viewer := env.openPage(t, "viewer")
	env.joinPage(t, viewer, room)
	gwPeer := gatewayPeerOf(t, ctx, viewer)

	pubs := make([]pub, n)
	for i := range n {
		s := dialPatient(t, ctx, env.gw.URL)
		join(t, s, room)
		name := fmt.Sprintf("pub-%02d", i)
		pubs[i] = goPub(name, "camera", publishSparse(t, s, name))
	}
	ids := make([]string, 0, n)
	for _, p := range pubs {
		waitPageStream(t, ctx, viewer, gwPeer, p)
		ids = append(ids, pageVideoTrack(t, ctx, viewer, p.msid))
	}
	waitDecoded(t, ctx, viewer, gwPeer, 0, ids...)

	pcs, err := viewer.PeerConnections(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if pcs.Count != 1 || pcs.Peers[0].ID != gwPeer {
		t.Errorf("the page has peer connections %+v, want one, to the gateway %s", pcs, gwPeer)
	}
	sig := env.gw.Server.Signaling()
	if got := sig.Refusals()[signaling.ReasonPayloadTooLarge]; got != 0 {
		t.Errorf("%d payloads refused as too large", got)
	}
	if got := sig.DescriptionRefusals(); got != 0 {
		t.Errorf("%d session descriptions refused", got)
	}
}

// dialPatient is dialSocket bounded by ctx instead of waitFor: twenty
// peers, the race detector and a browser on a shared machine can make one
// connect take long, which is not what this test is about.
func dialPatient(t *testing.T, ctx context.Context, url string) *rtcio.Socket {
	t.Helper()
	api, err := rtcio.LoopbackAPI()
	if err != nil {
		t.Fatal(err)
	}
	s, err := rtcio.Dial(ctx, url, rtcio.Options{API: api})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// publishSparse publishes the keyframes of the VP8 fixture, two a second,
// and an Opus track that sends a silent frame four times a second: the
// room has 40 forwarded tracks whose video a browser decodes, while the
// race-instrumented process (gateway and 20 peers) forwards little.
func publishSparse(t *testing.T, s *rtcio.Socket, name string) *rtcio.Stream {
	t.Helper()
	msid := name + "-cam"
	video, err := mediafixture.NewVP8Track("video-"+msid, msid)
	if err != nil {
		t.Fatal(err)
	}
	audio, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio-"+msid, msid)
	if err != nil {
		t.Fatal(err)
	}
	keys := fixtureKeyframes(t)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		silence := []byte{0xf8, 0xff, 0xfe} // an Opus 20 ms silent frame
		for n := 0; ; n++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				_ = audio.WriteSample(media.Sample{Data: silence, Duration: 250 * time.Millisecond})
				if n%2 == 0 {
					// Two keyframes a second: each decodes on its own.
					_ = video.WriteSample(media.Sample{Data: keys[(n/2)%len(keys)], Duration: 500 * time.Millisecond})
				}
			}
		}
	}()
	t.Cleanup(func() { cancel(); wg.Wait() })
	st, err := rtcio.NewStream(audio, video)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Emit("camera", map[string]any{"name": name, "stream": st}); err != nil {
		t.Fatal(err)
	}
	return st
}

// fixtureKeyframes returns the keyframes of the VP8 fixture.
func fixtureKeyframes(t *testing.T) [][]byte {
	t.Helper()
	f, err := os.Open(mediafixture.Path(mediafixture.VP8))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, _, err := ivfreader.NewWith(f)
	if err != nil {
		t.Fatal(err)
	}
	var keys [][]byte
	for {
		frame, _, err := r.ParseNextFrame()
		if err != nil {
			break
		}
		if len(frame) > 0 && frame[0]&1 == 0 { // P bit clear: a keyframe
			keys = append(keys, frame)
		}
	}
	if len(keys) == 0 {
		t.Fatal("the VP8 fixture has no keyframe")
	}
	return keys
}
