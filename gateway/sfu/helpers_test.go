package sfu_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/rtcio-gateway/rtcio-gateway/config"
	"github.com/rtcio-gateway/rtcio-gateway/gateway"
	"github.com/rtcio-gateway/rtcio-gateway/gateway/sfu"
	"github.com/rtcio-gateway/rtcio-gateway/internal/gatewaytest"
	"github.com/rtcio-gateway/rtcio-gateway/internal/mediafixture"
	"github.com/rtcio-gateway/rtcio-gateway/rtcio"
)

const waitFor = 20 * time.Second

// notices collects the SFU's stream decisions so tests can wait on them.
type notices struct {
	mu      sync.Mutex
	all     []sfu.Notice
	changed chan struct{}
}

func newNotices() *notices { return &notices{changed: make(chan struct{})} }

func (n *notices) add(x sfu.Notice) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.all = append(n.all, x)
	close(n.changed)
	n.changed = make(chan struct{})
}

func (n *notices) wait(t testing.TB, what string, match func(sfu.Notice) bool) sfu.Notice {
	t.Helper()
	deadline := time.After(waitFor)
	for {
		n.mu.Lock()
		for _, x := range n.all {
			if match(x) {
				n.mu.Unlock()
				return x
			}
		}
		changed := n.changed
		n.mu.Unlock()
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("no notice %s within %v; got %+v", what, waitFor, n.all)
		}
	}
}

// startSFU runs a gateway with SFU rooms in process.
func startSFU(t testing.TB, tune ...func(*config.Config)) (*gatewaytest.Gateway, *notices) {
	n := newNotices()
	cfg := gatewaytest.SFUConfig()
	cfg.Admin.Token = metricsToken // scrape reads /metrics with it
	for _, f := range tune {
		f(&cfg)
	}
	return gatewaytest.StartGateway(t, cfg, gateway.WithStreamNotices(n.add)), n
}

// client is a Go rtc.io participant with its event mailboxes and RTP counts.
type client struct {
	*rtcio.Socket
	mu      sync.Mutex
	packets map[string]int // by track id
	tracks  map[string]*webrtc.TrackRemote
	given   map[string]int // remote tracks given, by track id
	got     chan struct{}
}

func dial(t testing.TB, url, room string) *client {
	t.Helper()
	c := dialNoJoin(t, url)
	join(t, c.Socket, room)
	return c
}

func join(t testing.TB, s *rtcio.Socket, room string) {
	t.Helper()
	if err := s.Server().Emit("join-room", map[string]any{"roomId": room, "name": s.ID()}); err != nil {
		t.Fatal(err)
	}
}

// dialSocket connects a loopback-only Go rtc.io Socket, closed at cleanup.
func dialSocket(t testing.TB, url string) *rtcio.Socket {
	t.Helper()
	api, err := rtcio.LoopbackAPI()
	if err != nil {
		t.Fatal(err)
	}
	return dialSocketAPI(t, url, api)
}

// dialSocketAPI connects a Go rtc.io Socket on api, closed at cleanup.
func dialSocketAPI(t testing.TB, url string, api *webrtc.API) *rtcio.Socket {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	s, err := rtcio.Dial(ctx, url, rtcio.Options{API: api})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// dialNoJoin connects a Go rtc.io client that has not joined a room.
func dialNoJoin(t testing.TB, url string) *client {
	t.Helper()
	s := dialSocket(t, url)
	c := &client{Socket: s, packets: make(map[string]int), tracks: make(map[string]*webrtc.TrackRemote), given: make(map[string]int), got: make(chan struct{}, 1)}
	s.SetHooks(rtcio.Hooks{RemoteTrack: func(_ string, _ *rtcio.RemoteStream, tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		c.mu.Lock()
		c.tracks[tr.ID()] = tr
		c.given[tr.ID()]++
		c.mu.Unlock()
		go func() {
			for {
				if _, _, err := tr.ReadRTP(); err != nil {
					return
				}
				c.mu.Lock()
				c.packets[tr.ID()]++
				c.mu.Unlock()
				select {
				case c.got <- struct{}{}:
				default:
				}
			}
		}()
	}})
	return c
}

// waitRTP waits until every track id in ids delivered at least n packets.
func (c *client) waitRTP(t testing.TB, n int, ids ...string) {
	t.Helper()
	deadline := time.After(waitFor)
	for {
		c.mu.Lock()
		done := true
		for _, id := range ids {
			if c.packets[id] < n {
				done = false
			}
		}
		snapshot := map[string]int{}
		for k, v := range c.packets {
			snapshot[k] = v
		}
		c.mu.Unlock()
		if done {
			return
		}
		select {
		case <-c.got:
		case <-deadline:
			t.Fatalf("%s: want %d packets on %v, got %v", c.ID(), n, ids, snapshot)
		}
	}
}

// mailbox collects events of one name.
type mailbox struct{ ch chan *rtcio.Event }

func collect(s *rtcio.Socket, name string) *mailbox {
	m := &mailbox{ch: make(chan *rtcio.Event, 64)}
	s.On(name, func(e *rtcio.Event) {
		select {
		case m.ch <- e:
		default:
		}
	})
	return m
}

func (m *mailbox) next(t testing.TB, what string) *rtcio.Event {
	t.Helper()
	select {
	case e := <-m.ch:
		return e
	case <-time.After(waitFor):
		t.Fatalf("timed out waiting for %s", what)
		return nil
	}
}

// empty reports whether nothing arrived (call only after a barrier proved
// that what would have arrived had time to).
func (m *mailbox) empty() bool { return len(m.ch) == 0 }

// fixtureTracks makes a VP8 and an Opus track of MediaStream msid that play
// looping fixtures until the test ends.
func fixtureTracks(t testing.TB, msid string) (audio, video webrtc.TrackLocal) {
	t.Helper()
	a, err := mediafixture.NewOpusTrack("audio-"+msid, msid)
	if err != nil {
		t.Fatal(err)
	}
	v, err := mediafixture.NewVP8Track("video-"+msid, msid)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = mediafixture.PlayIVF(ctx, mediafixture.Path(mediafixture.VP8), v) }()
	go func() { defer wg.Done(); _ = mediafixture.PlayOgg(ctx, mediafixture.Path(mediafixture.Opus), a) }()
	t.Cleanup(func() { cancel(); wg.Wait() })
	return a, v
}

// publishFixture publishes a looping VP8 + Opus fixture stream under event
// with metadata, until the test ends.
func publishFixture(t testing.TB, s *rtcio.Socket, event, msid string, meta map[string]any) *rtcio.Stream {
	t.Helper()
	st, err := rtcio.NewStream(fixtureTracks(t, msid))
	if err != nil {
		t.Fatal(err)
	}
	meta["stream"] = st
	if err := s.Emit(event, meta); err != nil {
		t.Fatal(err)
	}
	return st
}

// waitKinds waits until the client was given a track of each kind, and
// returns their ids in that order.
func (c *client) waitKinds(t testing.TB, kinds ...string) []string {
	t.Helper()
	deadline := time.After(waitFor)
	for {
		c.mu.Lock()
		ids := make([]string, 0, len(kinds))
		for _, k := range kinds {
			for id, tr := range c.tracks {
				if tr.Kind().String() == k {
					ids = append(ids, id)
					break
				}
			}
		}
		c.mu.Unlock()
		if len(ids) == len(kinds) {
			return ids
		}
		select {
		case <-c.got:
		case <-deadline:
			t.Fatalf("%s: no track of each of %v within %v", c.ID(), kinds, waitFor)
		}
	}
}
