package sfu_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"

	"github.com/rtcio-gateway/rtcio-gateway/gateway/sfu"
	"github.com/rtcio-gateway/rtcio-gateway/internal/mediafixture"
	"github.com/rtcio-gateway/rtcio-gateway/internal/testenv"
	"github.com/rtcio-gateway/rtcio-gateway/rtcio"
)

// kfFrame is one VP8 frame the publisher wrote.
type kfFrame struct {
	at  time.Time
	key bool
}

// kfRecorder sits between the fixture player and the publisher's track and
// logs when every frame, and in particular every keyframe, was written. The
// player is the only source of frames and cannot make a keyframe on demand,
// so this log is the complete list of keyframes the gateway ever got.
type kfRecorder struct {
	w mediafixture.SampleWriter

	mu      sync.Mutex
	frames  []kfFrame
	changed chan struct{}
}

func newKFRecorder(w mediafixture.SampleWriter) *kfRecorder {
	return &kfRecorder{w: w, changed: make(chan struct{})}
}

func (r *kfRecorder) WriteSample(s media.Sample) error {
	// RFC 6386 9.1: bit 0 of the frame tag is 0 for a key frame.
	key := len(s.Data) > 0 && s.Data[0]&1 == 0
	err := r.w.WriteSample(s)
	r.mu.Lock()
	r.frames = append(r.frames, kfFrame{at: time.Now(), key: key})
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
	return err
}

// waitGOP waits for a keyframe written after since, followed by n more
// frames, and returns the keyframe's time.
func (r *kfRecorder) waitGOP(t *testing.T, since time.Time, n int) time.Time {
	t.Helper()
	deadline := time.After(waitFor)
	for {
		r.mu.Lock()
		var key time.Time
		after := 0
		for _, f := range r.frames {
			if f.at.Before(since) {
				continue
			}
			if f.key && key.IsZero() {
				key = f.at
				continue
			}
			if !key.IsZero() {
				after++
			}
		}
		changed := r.changed
		total := len(r.frames)
		r.mu.Unlock()
		if !key.IsZero() && after >= n {
			return key
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("no keyframe after %v followed by %d frames within %v (%d frames written)", since.Format(time.StampMilli), n, waitFor, total)
		}
	}
}

// keyframes returns the times of every keyframe written.
func (r *kfRecorder) keyframes() []time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []time.Time
	for _, f := range r.frames {
		if f.key {
			out = append(out, f.at)
		}
	}
	return out
}

// kfPlayer plays the long-GOP fixture into the recorder until stopped.
type kfPlayer struct {
	cancel context.CancelFunc
	done   chan struct{}
}

func startKFPlayer(t *testing.T, rec *kfRecorder) *kfPlayer {
	ctx, cancel := context.WithCancel(context.Background())
	p := &kfPlayer{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		if err := mediafixture.PlayIVF(ctx, mediafixture.Path(mediafixture.VP8LongGOP), rec); err != nil {
			t.Errorf("play %s: %v", mediafixture.VP8LongGOP, err)
		}
	}()
	t.Cleanup(p.stop)
	return p
}

func (p *kfPlayer) stop() {
	p.cancel()
	<-p.done
}

// kfPageProbe instruments the conformance page before it creates its peer
// connection: every RTCPeerConnection records when it first reached
// "connected" and when getStats first showed a decoded inbound video
// frame; every <video> the page adds records its first presented frame
// (requestVideoFrameCallback). Times are performance.now() milliseconds;
// timeOrigin turns them into Unix milliseconds.
const kfPageProbe = `() => {
  if (window.__kf) return null;
  const m = window.__kf = { connected: null, firstPacket: null, inbound: null, firstDecode: null, firstFrame: null, origin: performance.timeOrigin, pcs: 0 };
  const Base = window.RTCPeerConnection;
  window.RTCPeerConnection = class extends Base {
    constructor(...args) {
      super(...args);
      m.pcs++;
      this.addEventListener('connectionstatechange', () => {
        if (this.connectionState === 'connected' && m.connected === null) m.connected = performance.now();
      });
      const poll = async () => {
        if (m.firstDecode !== null || this.connectionState === 'closed') return;
        try {
          const rep = await this.getStats();
          const now = performance.now();
          rep.forEach((s) => {
            if (s.type !== 'inbound-rtp' || s.kind !== 'video') return;
            if (s.packetsReceived > 0 && m.firstPacket === null) m.firstPacket = now;
            m.inbound = { packetsReceived: s.packetsReceived, packetsLost: s.packetsLost, framesReceived: s.framesReceived,
              framesDecoded: s.framesDecoded, keyFramesDecoded: s.keyFramesDecoded, framesDropped: s.framesDropped,
              pliCount: s.pliCount, firCount: s.firCount, nackCount: s.nackCount };
            if (s.framesDecoded > 0 && m.firstDecode === null) m.firstDecode = now;
          });
        } catch (err) { /* closed meanwhile */ }
        setTimeout(poll, 5);
      };
      poll();
    }
  };
  const watch = (v) => {
    if (v.__kf || !v.requestVideoFrameCallback) return;
    v.__kf = true;
    v.requestVideoFrameCallback((now) => { if (m.firstFrame === null) m.firstFrame = now; });
  };
  new MutationObserver(() => document.querySelectorAll('video').forEach(watch))
    .observe(document.body, { childList: true, subtree: true });
  return null;
}`

// kfPageWait waits in the page until the probe saw a decoded frame, for at
// most ms milliseconds, and returns the probe's record.
const kfPageWait = `async (ms) => {
  const m = window.__kf;
  const end = performance.now() + ms;
  while (m.firstDecode === null && performance.now() < end) await new Promise((r) => setTimeout(r, 10));
  return m;
}`

type kfProbe struct {
	Connected   *float64 `json:"connected"`
	FirstPacket *float64 `json:"firstPacket"`
	// Inbound is the video inbound-rtp entry at the first decoded frame
	// (or at the end of the wait), for the log.
	Inbound     map[string]any `json:"inbound"`
	FirstDecode *float64       `json:"firstDecode"`
	FirstFrame  *float64       `json:"firstFrame"`
	Origin      float64        `json:"origin"`
	PCs         int            `json:"pcs"`
}

// unix turns a probe time into wall-clock time.
func (p kfProbe) unix(ms float64) time.Time {
	return time.UnixMicro(int64((p.Origin + ms) * 1000))
}

// maxFirstFrameDelay is the bound between a late joiner's peer
// connection reaching "connected" and its first decoded frame.
const maxFirstFrameDelay = time.Second

// TestKeyframeCacheLateJoinerDecodesAtOnce: a Go publisher plays a fixture
// with one keyframe per 10 s and never answers PLI; a browser that joins
// the SFU room a few seconds after the keyframe decodes its first frame
// within 1 s of its peer connection reaching "connected", long before the
// publisher's next keyframe: the gateway started its down-track from the
// cached keyframe and the frames after it.
//
// The control the issue asks for (the same join with the cache turned off
// must not decode) cannot be run through the gateway: the SFU builds its
// publications without exposing forwarding.PublicationConfig's
// DisableKeyframeCache. The keyframe log stands in for it: no keyframe was
// written between the join and the first decoded frame, and a VP8 decoder
// cannot start without one, so the frame came from the cache; the
// gateway's keyframe cache hit counter says the same.
func TestKeyframeCacheLateJoinerDecodesAtOnce(t *testing.T) {
	testenv.SkipIfNoBrowser(t)
	web, err := testenv.NewWebHandler()
	if err != nil {
		t.Fatal(err)
	}
	gw, notes := startSFU(t)
	gw.Server.Handle("/", web)
	const room = "keyframe-cache"

	// The browser starts first: a cold Chromium start must not eat into
	// the GOP the joiner lands in.
	br := testenv.StartBrowser(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	page, err := testenv.OpenConformancePage(ctx, t, br, gw.URL, testenv.ConformanceOptions{WebURL: gw.URL, Name: "late-joiner"})
	if err != nil {
		t.Fatal(err)
	}
	if err := page.Page().Eval(ctx, kfPageProbe, nil); err != nil {
		t.Fatalf("install page probe: %v", err)
	}

	// The publisher: video only, from the long-GOP fixture. Its API is
	// pion's default interceptor set (NACK responder, reports, TWCC),
	// none of which makes keyframes; the sample track cannot either. PLIs
	// that reach it are counted to show they were asked for and ignored.
	pubc := dial(t, gw.URL, room)
	video, err := mediafixture.NewVP8Track("video-kf", "kf-cam")
	if err != nil {
		t.Fatal(err)
	}
	rec := newKFRecorder(video)
	st, err := rtcio.NewStream(video)
	if err != nil {
		t.Fatal(err)
	}
	var plis atomic.Int64
	st.OnRTCP(func(_ string, _ webrtc.TrackLocal, pkts []rtcp.Packet) {
		for _, p := range pkts {
			switch p.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				plis.Add(1)
			}
		}
	})
	// pion reports a remote track only once RTP flows, so the fixture
	// plays before the gateway knows the stream; frames written before the
	// track was bound are lost. Once the stream is relayed the fixture
	// restarts from its keyframe, which the gateway then surely gets.
	first := startKFPlayer(t, rec)
	if err := pubc.Emit("camera", map[string]any{"name": "go-publisher", "stream": st}); err != nil {
		t.Fatal(err)
	}
	notes.wait(t, "stream published", func(n sfu.Notice) bool {
		return n.Kind == sfu.StreamPublished && n.Stream == st.ID()
	})
	first.stop()
	restart := time.Now()
	startKFPlayer(t, rec)

	// Mid-interval: 3 s (45 frames at 15 fps) after the keyframe.
	const framesIn = 45
	keyAt := rec.waitGOP(t, restart, framesIn)
	plisBefore := plis.Load()
	joinAt := time.Now()
	if err := page.JoinRoom(ctx, room, ""); err != nil {
		t.Fatal(err)
	}
	var probe kfProbe
	if err := page.Page().EvalArg(ctx, kfPageWait, waitFor.Milliseconds(), &probe); err != nil {
		t.Fatalf("wait for the first decoded frame: %v", err)
	}
	if probe.Connected == nil || probe.FirstDecode == nil {
		t.Fatalf("page probe %+v: no connected peer connection or no decoded video within %v of joining", probe, waitFor)
	}
	if probe.PCs != 1 {
		t.Errorf("page made %d peer connections, want 1 (to the gateway peer)", probe.PCs)
	}
	connectedAt, decodedAt := probe.unix(*probe.Connected), probe.unix(*probe.FirstDecode)
	delay := time.Duration((*probe.FirstDecode - *probe.Connected) * float64(time.Millisecond))
	presented := "n/a"
	if probe.FirstFrame != nil {
		presented = fmt.Sprint(time.Duration((*probe.FirstFrame - *probe.Connected) * float64(time.Millisecond)).Round(time.Millisecond))
	}
	firstPacket := "n/a"
	if probe.FirstPacket != nil {
		firstPacket = fmt.Sprint(time.Duration((*probe.FirstPacket - *probe.Connected) * float64(time.Millisecond)).Round(time.Millisecond))
	}
	t.Logf("joined %v after the keyframe; connected %v after joining; first video packet %s, first decoded frame %v, first presented frame %s after connected; PLIs/FIRs reaching the publisher: %d before the join, %d in all; page inbound video %v",
		joinAt.Sub(keyAt).Round(time.Millisecond), connectedAt.Sub(joinAt).Round(time.Millisecond),
		firstPacket, delay.Round(time.Millisecond), presented, plisBefore, plis.Load(), probe.Inbound)

	// The gateway's own account: the browser's video down-track started
	// from the cache.
	fams := scrape(t, gw.URL)
	hits, misses := value(t, fams, "rtcio_keyframe_cache_hits_total"), value(t, fams, "rtcio_keyframe_cache_misses_total")
	t.Logf("gateway: %v keyframe cache hits, %v misses, %v keyframe requests sent upstream",
		hits, misses, value(t, fams, "rtcio_keyframe_requests_sent_total"))
	if hits < 1 {
		t.Errorf("the gateway counted %v keyframe cache hits (%v misses), want the browser's subscription", hits, misses)
	}
	// The join was mid-interval, and nothing but the cache could have
	// given the browser a keyframe: the publisher wrote none between its
	// keyframe before the join and the first decoded frame.
	if joinAt.Sub(keyAt) < 2*time.Second {
		t.Fatalf("joined only %v after the keyframe: not mid-interval", joinAt.Sub(keyAt))
	}
	for _, k := range rec.keyframes() {
		if k.After(keyAt) && k.Before(decodedAt) {
			t.Fatalf("the publisher wrote a keyframe at %v, %v after the join and before the first decoded frame: the test proves nothing about the cache",
				k.Format(time.StampMilli), k.Sub(joinAt))
		}
	}
	if delay < 0 || delay > maxFirstFrameDelay {
		t.Fatalf("first decoded frame %v after the peer connection reached connected, want within %v", delay, maxFirstFrameDelay)
	}
}
