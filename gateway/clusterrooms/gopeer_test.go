package clusterrooms_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/rtcio-gateway/rtcio-gateway/internal/mediafixture"
	"github.com/rtcio-gateway/rtcio-gateway/rtcio"
)

// goPeer is a Go rtc.io client (pion) of a cluster node: it publishes
// looping fixture streams and records, per remote track id, the packets
// it received and the longest gap between two of them since startGaps.
type goPeer struct {
	*rtcio.Socket
	t *testing.T

	mu       sync.Mutex
	packets  map[string]int
	video    map[string]bool
	last     map[string]time.Time
	maxGap   map[string]time.Duration
	gapsFrom time.Time
	events   []peerEvent
	changed  chan struct{}
}

// peerEvent is a stream event the peer got: its name and the name in its
// metadata.
type peerEvent struct{ Event, Name string }

// dialGoPeer connects a Go client to url; it closes at the test's end.
// events are the stream events it records.
func dialGoPeer(ctx context.Context, t *testing.T, url string, events ...string) *goPeer {
	t.Helper()
	api, err := rtcio.LoopbackAPI()
	if err != nil {
		t.Fatal(err)
	}
	s, err := rtcio.Dial(ctx, url, rtcio.Options{API: api})
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	p := &goPeer{Socket: s, t: t, packets: map[string]int{}, video: map[string]bool{}, last: map[string]time.Time{}, maxGap: map[string]time.Duration{}, changed: make(chan struct{}, 1)}
	s.SetHooks(rtcio.Hooks{RemoteTrack: func(_ string, _ *rtcio.RemoteStream, tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		go p.read(tr)
	}})
	for _, name := range events {
		s.On(name, func(ev *rtcio.Event) {
			var meta struct{ Name string }
			_ = ev.Decode(0, &meta)
			p.mu.Lock()
			p.events = append(p.events, peerEvent{name, meta.Name})
			p.mu.Unlock()
			p.poke()
		})
	}
	return p
}

func (p *goPeer) poke() {
	select {
	case p.changed <- struct{}{}:
	default:
	}
}

func (p *goPeer) read(tr *webrtc.TrackRemote) {
	for {
		if _, _, err := tr.ReadRTP(); err != nil {
			return
		}
		now := time.Now()
		p.mu.Lock()
		id := tr.ID()
		p.video[id] = tr.Kind() == webrtc.RTPCodecTypeVideo
		if last, ok := p.last[id]; ok && !p.gapsFrom.IsZero() && now.Sub(later(last, p.gapsFrom)) > p.maxGap[id] {
			p.maxGap[id] = now.Sub(later(last, p.gapsFrom))
		}
		p.last[id] = now
		p.packets[id]++
		p.mu.Unlock()
		p.poke()
	}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// join joins room and waits for join-ok.
func (p *goPeer) join(ctx context.Context, room string) {
	p.t.Helper()
	ok := make(chan struct{}, 1)
	id := p.Server().On("join-ok", func(*rtcio.Event) {
		select {
		case ok <- struct{}{}:
		default:
		}
	})
	defer p.Server().Off("join-ok", id)
	if err := p.Server().Emit("join-room", map[string]any{"roomId": room, "name": p.ID()}); err != nil {
		p.t.Fatal(err)
	}
	select {
	case <-ok:
	case <-ctx.Done():
		p.t.Fatalf("%s: no join-ok for %s", p.ID(), room)
	}
}

// publish emits a looping VP8 + Opus fixture stream of MediaStream msid
// under event, with {name}.
func (p *goPeer) publish(event, msid, name string) *rtcio.Stream {
	p.t.Helper()
	a, err := mediafixture.NewOpusTrack("audio-"+msid, msid)
	if err != nil {
		p.t.Fatal(err)
	}
	v, err := mediafixture.NewVP8Track("video-"+msid, msid)
	if err != nil {
		p.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = mediafixture.PlayIVF(ctx, mediafixture.Path(mediafixture.VP8), v) }()
	go func() { defer wg.Done(); _ = mediafixture.PlayOgg(ctx, mediafixture.Path(mediafixture.Opus), a) }()
	p.t.Cleanup(func() { cancel(); wg.Wait() })
	st, err := rtcio.NewStream(a, v)
	if err != nil {
		p.t.Fatal(err)
	}
	if err := p.Emit(event, map[string]any{"name": name, "stream": st}); err != nil {
		p.t.Fatal(err)
	}
	return st
}

// waitFor waits until cond holds over the peer's record.
func (p *goPeer) waitFor(ctx context.Context, what string, cond func(p *goPeer) bool) {
	p.t.Helper()
	for {
		p.mu.Lock()
		done := cond(p)
		p.mu.Unlock()
		if done {
			return
		}
		select {
		case <-p.changed:
		case <-ctx.Done():
			p.mu.Lock()
			defer p.mu.Unlock()
			p.t.Fatalf("%s: %s: not within the test's time (packets %v, events %v)", p.ID(), what, p.packets, p.events)
		}
	}
}

// waitVideo waits until n more packets of each of the msids' videos
// arrived than when it was called.
func (p *goPeer) waitVideo(ctx context.Context, n int, msids ...string) {
	p.t.Helper()
	p.mu.Lock()
	base := make(map[string]int, len(msids))
	for _, m := range msids {
		base[m] = p.packets["video-"+m]
	}
	p.mu.Unlock()
	p.waitFor(ctx, "video of "+strings.Join(msids, ", "), func(p *goPeer) bool {
		for _, m := range msids {
			if p.packets["video-"+m] < base[m]+n {
				return false
			}
		}
		return true
	})
}

// startGaps starts measuring gaps between packets from now on.
func (p *goPeer) startGaps() {
	p.mu.Lock()
	p.gapsFrom = time.Now()
	clear(p.maxGap)
	p.mu.Unlock()
}

// gap is the longest gap in msid's video since startGaps, counting the
// time since its last packet.
func (p *goPeer) gap(msid string) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	g := p.maxGap["video-"+msid]
	if last, ok := p.last["video-"+msid]; ok {
		if d := time.Since(later(last, p.gapsFrom)); d > g {
			g = d
		}
	}
	return g
}

// eventsSince returns the events recorded from index i on.
func (p *goPeer) eventsSince(i int) []peerEvent {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]peerEvent(nil), p.events[min(i, len(p.events)):]...)
}

func (p *goPeer) eventCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.events)
}
