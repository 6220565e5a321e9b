package sfu_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/transport/v5"
	"github.com/pion/transport/v5/stdnet"
	"github.com/pion/webrtc/v4"

	"github.com/rtcio-gateway/rtcio-gateway/config"
	"github.com/rtcio-gateway/rtcio-gateway/internal/gatewaytest"
	"github.com/rtcio-gateway/rtcio-gateway/internal/testenv"
	"github.com/rtcio-gateway/rtcio-gateway/rtcio"
)

// browserEnv is one SFU gateway serving the conformance page from its own
// origin, and one Chromium to open pages in.
type browserEnv struct {
	gw      *gatewaytest.Gateway
	notes   *notices
	browser *testenv.Browser
	ctx     context.Context
}

// startBrowserSFU starts the gateway and Chromium for t; ctx bounds every
// page call of the test.
func startBrowserSFU(t *testing.T, budget time.Duration, tune ...func(*config.Config)) *browserEnv {
	t.Helper()
	testenv.SkipIfNoBrowser(t)
	web, err := testenv.NewWebHandler()
	if err != nil {
		t.Fatal(err)
	}
	gw, notes := startSFU(t, tune...)
	// Same origin as the signaling server, as an app deploys it.
	gw.Server.Handle("/", web)
	br := testenv.StartBrowser(t)
	ctx, cancel := context.WithTimeout(context.Background(), budget)
	t.Cleanup(cancel)
	return &browserEnv{gw: gw, notes: notes, browser: br, ctx: ctx}
}

// openPage opens a conformance page connected to the gateway. The "chat"
// broadcast channel is created before anything joins, since both ends of
// a negotiated channel must create it.
func (e *browserEnv) openPage(t *testing.T, name string) *testenv.ConformancePeer {
	t.Helper()
	p, err := testenv.OpenConformancePage(e.ctx, t, e.browser, e.gw.URL, testenv.ConformanceOptions{WebURL: e.gw.URL, Name: name})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.CreateChannel(e.ctx, "chat", testenv.ChannelOptions{}); err != nil {
		t.Fatal(err)
	}
	return p
}

// joinPage joins a page to room and waits for the server's join-ok.
func (e *browserEnv) joinPage(t *testing.T, p *testenv.ConformancePeer, room string) {
	t.Helper()
	since := lastSeq(t, e.ctx, p)
	if err := p.JoinRoom(e.ctx, room, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := p.WaitFor(e.ctx, `e.type === 'server' && e.name === 'join-ok'`, since); err != nil {
		t.Fatal(err)
	}
}

// publishPage publishes the page's fake camera and microphone under event
// with args [{name, n, stream}, "tail-<name>"].
func (e *browserEnv) publishPage(t *testing.T, p *testenv.ConformancePeer, event, name string) testenv.StreamInfo {
	t.Helper()
	st, err := p.PublishCamera(e.ctx, event, pageArgs(name), testenv.MediaOptions{Source: "getUserMedia"})
	if err != nil {
		t.Fatal(err)
	}
	if len(st.TrackIDs) != 2 || st.RTCIOStreamID == st.MediaStreamID {
		t.Fatalf("%s published %+v: want audio+video with distinct ids", name, st)
	}
	return st
}

func pageArgs(name string) []any {
	return []any{map[string]any{"name": name, "n": len(name), "stream": "$stream"}, "tail-" + name}
}

func lastSeq(t *testing.T, ctx context.Context, p *testenv.ConformancePeer) int {
	t.Helper()
	s, err := p.Summary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return s.LastSeq
}

// pub is a published stream as its owner knows it.
type pub struct {
	owner string // the publisher's name, also its metadata "name"
	event string
	id    string // RTCIOStream id
	msid  string // MediaStream id
	page  bool   // published by a conformance page (args pageArgs), else publishFixture
	// trackIDs are the owner's track ids; the forwarded tracks keep them.
	trackIDs []string
}

func pagePub(owner, event string, st testenv.StreamInfo) pub {
	return pub{owner: owner, event: event, id: st.RTCIOStreamID, msid: st.MediaStreamID, page: true, trackIDs: st.TrackIDs}
}

func goPub(owner, event string, st *rtcio.Stream) pub {
	return pub{owner: owner, event: event, id: st.ID(), msid: st.MediaStreamID(), trackIDs: trackIDs(st)}
}

// waitPageStream waits for p's stream event of s and checks it came from
// the gateway peer with the owner's args, RTCIOStream id and MediaStream id.
func waitPageStream(t *testing.T, ctx context.Context, p *testenv.ConformancePeer, gwPeer string, s pub) testenv.PageEvent {
	t.Helper()
	ev, err := p.WaitFor(ctx, fmt.Sprintf(`e.type === 'stream-event' && e.name === %q && e.stream && e.stream.mediaStreamId === %q`, s.event, s.msid), 0)
	if err != nil {
		t.Fatalf("page %s: %s's %s: %v", p.ID, s.owner, s.event, err)
	}
	if ev.PeerID != gwPeer {
		t.Errorf("page %s got %s's %s from %s, want the gateway peer %s", p.ID, s.owner, s.event, ev.PeerID, gwPeer)
	}
	if ev.Stream.RTCIOStreamID != s.id {
		t.Errorf("page %s: %s's stream id %q, want the owner's %q", p.ID, s.owner, ev.Stream.RTCIOStreamID, s.id)
	}
	var meta struct {
		Name   string `json:"name"`
		N      int    `json:"n"`
		Stream struct {
			S testenv.StreamInfo `json:"$stream"`
		} `json:"stream"`
	}
	if err := ev.Arg(0, &meta); err != nil {
		t.Fatalf("page %s: %v", p.ID, err)
	}
	ok := meta.Name == s.owner && meta.Stream.S.RTCIOStreamID == s.id && meta.Stream.S.MediaStreamID == s.msid
	if s.page {
		var tail string
		ok = ok && meta.N == len(s.owner) && len(ev.Args) == 2 && ev.Arg(1, &tail) == nil && tail == "tail-"+s.owner
	} else {
		ok = ok && len(ev.Args) == 1
	}
	if !ok {
		t.Errorf("page %s: %s's %s args %s: want the owner's", p.ID, s.owner, s.event, ev.Raw)
	}
	return ev
}

// checkGoStream checks a Go participant's stream event against s: sent by
// the gateway peer, with the owner's exact args (the stream as its
// placeholder) and ids.
func checkGoStream(t *testing.T, who string, ev *rtcio.Event, gwPeer string, s pub) {
	t.Helper()
	if ev.PeerID != gwPeer {
		t.Errorf("%s got %s's %s from %s, want the gateway peer %s", who, s.owner, s.event, ev.PeerID, gwPeer)
	}
	if ev.Stream == nil || ev.Stream.ID() != s.id || ev.Stream.MediaStreamID() != s.msid {
		t.Errorf("%s: %s's %s stream %v, want ids %s/%s", who, s.owner, s.event, ev.Stream, s.id, s.msid)
	}
	placeholder := rtcio.PlaceholderPrefix + s.id
	var want []any
	if s.page {
		want = []any{map[string]any{"name": s.owner, "n": float64(len(s.owner)), "stream": placeholder}, "tail-" + s.owner}
	} else {
		want = []any{map[string]any{"name": s.owner, "stream": placeholder}}
	}
	got := make([]any, len(ev.Raw))
	for i, r := range ev.Raw {
		if err := json.Unmarshal(r, &got[i]); err != nil {
			t.Fatalf("%s: arg %d %s: %v", who, i, r, err)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s: %s's %s args %v, want %v", who, s.owner, s.event, got, want)
	}
}

// mediaKey names a received track by its stream and kind.
type mediaKey struct{ msid, kind string }

type rtpCount struct {
	packets int
	bytes   int
	last    time.Time
	gaps    frameGaps // video: frames and freezes, as a browser counts them
	// readers counts the track's reading goroutines still running, ended
	// the errors that stopped the others (a reader that stops silently
	// would look like a subscriber that receives nothing).
	readers int
	ended   []error
}

// removal is one track-removed a Go participant saw.
type removal struct {
	msid, kind, trackID string
	at                  time.Time
}

// goPeer is a Go rtc.io participant that records what it receives (stream
// events, removed tracks, ctrl and "chat" channel traffic, RTP per track)
// so a test can wait on any of it.
type goPeer struct {
	*rtcio.Socket
	name  string
	chat  *rtcio.BroadcastChannel
	socks *bigBufferNet

	mu       sync.Mutex
	changed  chan struct{}
	streams  []*rtcio.Event
	removed  []removal
	ctrl     []string // name(args JSON), in arrival order
	chatLog  []string // say(args JSON) or bin:<hex>
	chatOpen bool
	rtp      map[mediaKey]*rtpCount
	// left holds when the server told of each departed socket
	// (user-disconnected).
	left map[string]time.Time
}

// newGoPeer connects a Go participant that records the stream events named
// in events; it joins no room yet, so nothing can arrive before it listens.
func newGoPeer(t *testing.T, url, name string, events ...string) *goPeer {
	t.Helper()
	std, err := stdnet.NewNet()
	if err != nil {
		t.Fatal(err)
	}
	socks := &bigBufferNet{Net: std}
	api, err := rtcio.LoopbackAPI(func(se *webrtc.SettingEngine) { se.SetNet(socks) })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	s, err := rtcio.Dial(ctx, url, rtcio.Options{API: api})
	if err != nil {
		t.Fatalf("dial %s: %v", name, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	g := &goPeer{Socket: s, name: name, socks: socks, changed: make(chan struct{}), rtp: make(map[mediaKey]*rtpCount), left: make(map[string]time.Time)}
	s.SetHooks(rtcio.Hooks{
		RemoteTrack: g.onTrack,
		Ctrl: func(_, ev string, raw []json.RawMessage) {
			g.update(func() { g.ctrl = append(g.ctrl, ev+rawJSON(raw)) })
		},
		ChannelMessage: func(_, channel string, msg rtcio.ChannelMessage) {
			if channel != "chat" {
				return
			}
			entry := fmt.Sprintf("bin:%x", msg.Binary)
			if msg.Binary == nil {
				entry = msg.Name + rawJSON(msg.Raw)
			}
			g.update(func() { g.chatLog = append(g.chatLog, entry) })
		},
	})
	for _, ev := range events {
		s.On(ev, func(e *rtcio.Event) { g.update(func() { g.streams = append(g.streams, e) }) })
	}
	s.On(rtcio.EventTrackRemoved, func(e *rtcio.Event) {
		r := removal{at: time.Now()}
		if e.Stream != nil {
			r.msid = e.Stream.MediaStreamID()
		}
		if e.Track != nil {
			r.kind, r.trackID = e.Track.Kind().String(), e.Track.ID()
		}
		g.update(func() { g.removed = append(g.removed, r) })
	})
	s.Server().On("user-disconnected", func(e *rtcio.Event) {
		var who struct {
			ID string `json:"id"`
		}
		if e.Decode(0, &who) == nil && who.ID != "" {
			at := time.Now()
			g.update(func() { g.left[who.ID] = at })
		}
	})
	chat, err := s.CreateChannel("chat", rtcio.ChannelOptions{})
	if err != nil {
		t.Fatal(err)
	}
	chat.On(rtcio.ChannelEventOpen, func(*rtcio.Event) { g.update(func() { g.chatOpen = true }) })
	g.chat = chat
	return g
}

func rawJSON(raw []json.RawMessage) string {
	b, _ := json.Marshal(raw)
	return string(b)
}

func (g *goPeer) onTrack(_ string, rs *rtcio.RemoteStream, tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
	key := mediaKey{rs.MediaStreamID(), tr.Kind().String()}
	video := tr.Kind() == webrtc.RTPCodecTypeVideo
	// The loop only reads and counts: a reader that falls behind (race
	// detector, two Chromiums on two cores) would itself look like a
	// freeze. Waiters are woken for every early packet (a test may wait
	// for a handful) and for every 16th after that.
	g.mu.Lock()
	if g.rtp[key] == nil {
		g.rtp[key] = &rtpCount{}
	}
	g.rtp[key].readers++
	g.mu.Unlock()
	go func() {
		buf := make([]byte, 1500)
		var h rtp.Header
		for {
			n, _, err := tr.Read(buf)
			if err != nil {
				g.mu.Lock()
				c := g.rtp[key]
				c.readers--
				c.ended = append(c.ended, err)
				g.mu.Unlock()
				return
			}
			now := time.Now()
			parsed := video && func() bool { _, err := h.Unmarshal(buf[:n]); return err == nil }()
			g.mu.Lock()
			c := g.rtp[key]
			if c == nil {
				c = &rtpCount{}
				g.rtp[key] = c
			}
			c.packets++
			c.bytes += n
			c.last = now
			if parsed {
				c.gaps.packet(h.Timestamp, h.Marker, now)
			}
			if c.packets <= 256 || c.packets%16 == 0 {
				close(g.changed)
				g.changed = make(chan struct{})
			}
			g.mu.Unlock()
		}
	}()
}

// update changes the record under the lock and wakes waiters.
func (g *goPeer) update(f func()) {
	g.mu.Lock()
	defer g.mu.Unlock()
	f()
	close(g.changed)
	g.changed = make(chan struct{})
}

// until waits up to d for cond, which runs with the record locked.
func (g *goPeer) until(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		g.mu.Lock()
		ok := cond()
		changed := g.changed
		g.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("%s: %s not within %v (%s)", g.name, what, d, g.describe())
		}
	}
}

func (g *goPeer) describe() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	var b strings.Builder
	for _, e := range g.streams {
		msid := ""
		if e.Stream != nil {
			msid = e.Stream.MediaStreamID()
		}
		fmt.Fprintf(&b, "event %s %s; ", e.Name, msid)
	}
	keys := make([]string, 0, len(g.rtp))
	for k, c := range g.rtp {
		keys = append(keys, fmt.Sprintf("%s/%s=%d", k.msid, k.kind, c.packets))
	}
	sort.Strings(keys)
	fmt.Fprintf(&b, "rtp %v; removed %v; ctrl %v; chat %v", keys, g.removed, g.ctrl, g.chatLog)
	return b.String()
}

// join joins room and waits for the server's join-ok.
func (g *goPeer) join(t *testing.T, room string) {
	t.Helper()
	ok := make(chan struct{}, 1)
	g.Server().Once("join-ok", func(*rtcio.Event) { ok <- struct{}{} })
	if err := g.Server().Emit("join-room", map[string]any{"roomId": room, "name": g.name}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ok:
	case <-time.After(waitFor):
		t.Fatalf("%s: no join-ok", g.name)
	}
}

// streamEvent waits for the stream event named event of MediaStream msid.
func (g *goPeer) streamEvent(t *testing.T, event, msid string) *rtcio.Event {
	t.Helper()
	var got *rtcio.Event
	g.until(t, waitFor, event+" of "+msid, func() bool {
		got = g.findStream(event, msid)
		return got != nil
	})
	return got
}

func (g *goPeer) findStream(event, msid string) *rtcio.Event {
	for _, e := range g.streams {
		if e.Name == event && e.Stream != nil && e.Stream.MediaStreamID() == msid {
			return e
		}
	}
	return nil
}

// hasStream reports whether any stream event or track of msid arrived.
func (g *goPeer) hasStream(msid string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, e := range g.streams {
		if e.Stream != nil && e.Stream.MediaStreamID() == msid {
			return true
		}
	}
	for k := range g.rtp {
		if k.msid == msid {
			return true
		}
	}
	return false
}

// waitRTP waits until each kind of msid delivered n more packets than in
// base (nil: from zero).
func (g *goPeer) waitRTP(t *testing.T, n int, base map[mediaKey]int, msid string, kinds ...string) {
	t.Helper()
	g.until(t, waitFor, fmt.Sprintf("%d packets of %s %v", n, msid, kinds), func() bool {
		for _, k := range kinds {
			key := mediaKey{msid, k}
			c := g.rtp[key]
			if c == nil || c.packets < base[key]+n {
				return false
			}
		}
		return true
	})
}

// packets snapshots the packet counts.
func (g *goPeer) packets() map[mediaKey]int {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make(map[mediaKey]int, len(g.rtp))
	for k, c := range g.rtp {
		out[k] = c.packets
	}
	return out
}

// removedOf returns the track-removed records of msid.
func (g *goPeer) removedOf(msid string) []removal {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []removal
	for _, r := range g.removed {
		if r.msid == msid {
			out = append(out, r)
		}
	}
	return out
}

// waitRemoved waits for track-removed of every kind of msid within d and
// returns when the last one fired.
func (g *goPeer) waitRemoved(t *testing.T, d time.Duration, msid string, kinds ...string) time.Time {
	t.Helper()
	var last time.Time
	g.until(t, d, fmt.Sprintf("track-removed of %s %v", msid, kinds), func() bool {
		last = time.Time{}
		for _, k := range kinds {
			i := slices.IndexFunc(g.removed, func(r removal) bool { return r.msid == msid && r.kind == k })
			if i < 0 {
				return false
			}
			if g.removed[i].at.After(last) {
				last = g.removed[i].at
			}
		}
		return true
	})
	return last
}

// gatewayPeerOf waits for the page's first peer-connect: in an SFU room
// its only peer is the gateway's.
func gatewayPeerOf(t *testing.T, ctx context.Context, p *testenv.ConformancePeer) string {
	t.Helper()
	ev, err := p.WaitFor(ctx, `e.type === 'peer-connect'`, 0)
	if err != nil {
		t.Fatal(err)
	}
	return ev.PeerID
}

// pageVideoTrack waits for the page to receive the video track of msid and
// returns its id (the inbound-rtp trackIdentifier).
func pageVideoTrack(t *testing.T, ctx context.Context, p *testenv.ConformancePeer, msid string) string {
	t.Helper()
	ev, err := p.WaitFor(ctx, fmt.Sprintf(`e.type === 'track' && e.kind === 'video' && e.mediaStreamId === %q`, msid), 0)
	if err != nil {
		t.Fatal(err)
	}
	var rec struct {
		TrackID string `json:"trackId"`
	}
	if err := json.Unmarshal(ev.Raw, &rec); err != nil || rec.TrackID == "" {
		t.Fatalf("page %s: track record %s without a track id (%v)", p.ID, ev.Raw, err)
	}
	return rec.TrackID
}

// waitDecoded waits until the page decoded more than min frames on every
// video track in ids, received from gwPeer.
func waitDecoded(t *testing.T, ctx context.Context, p *testenv.ConformancePeer, gwPeer string, min uint64, ids ...string) {
	t.Helper()
	list, _ := json.Marshal(ids)
	pred := fmt.Sprintf(`((p, ids) => !!p && ids.every((id) => p.inbound.some((x) => x.kind === 'video' && x.trackIdentifier === id && x.framesDecoded > %d)))(s[%q], %s)`, min, gwPeer, list)
	if _, err := p.WaitForStats(ctx, pred); err != nil {
		t.Fatalf("page %s: frames of %v: %v", p.ID, ids, err)
	}
}

// framesDecoded is the page's decoded frame count on video track id.
func framesDecoded(t *testing.T, ctx context.Context, p *testenv.ConformancePeer, gwPeer, id string) uint64 {
	t.Helper()
	stats, err := p.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range stats[gwPeer].Inbound {
		if in.Kind == "video" && in.TrackIdentifier == id {
			return in.FramesDecoded
		}
	}
	t.Fatalf("page %s has no inbound video %s: %+v", p.ID, id, stats)
	return 0
}

// waitPageRemoved waits for the page's track-removed of msid's kind track
// (after seq since) and returns when it was seen.
func waitPageRemoved(t *testing.T, ctx context.Context, p *testenv.ConformancePeer, since int, msid, kind string) time.Time {
	t.Helper()
	_, err := p.WaitFor(ctx, fmt.Sprintf(`e.type === 'track-removed' && e.stream && e.stream.mediaStreamId === %q && e.track && e.track.kind === %q`, msid, kind), since)
	if err != nil {
		t.Fatalf("page %s: %v", p.ID, err)
	}
	return time.Now()
}

// goPeerReadBuffer is the receive buffer of a Go peer's UDP sockets. The
// Go peers share the test process, and its race-detector slowdown, with
// the gateway: with the default buffer (208 KiB here) a stall of about a
// second on a loaded machine drops a 1.7 Mbit/s video's datagrams at the
// peer's own socket. Such a peer then reports loss the gateway did not
// cause (pion's receiver reports), and the bandwidth adaptation rightly
// takes a subscriber that loses a third of its packets for congested:
// a test's "good link" subscriber must not lose packets to its own
// process. The kernel caps the request at net.core.rmem_max (4 MiB here).
const goPeerReadBuffer = 4 << 20

// bigBufferNet opens a Go peer's UDP sockets with goPeerReadBuffer and
// remembers their local ports (for the tests' drop counts).
type bigBufferNet struct {
	transport.Net
	mu    sync.Mutex
	ports []int
}

// ListenUDP implements transport.Net.
func (n *bigBufferNet) ListenUDP(network string, laddr *net.UDPAddr) (transport.UDPConn, error) {
	c, err := n.Net.ListenUDP(network, laddr)
	if err != nil {
		return nil, err
	}
	_ = c.SetReadBuffer(goPeerReadBuffer) // best effort: the default still works
	if a, ok := c.LocalAddr().(*net.UDPAddr); ok {
		n.mu.Lock()
		n.ports = append(n.ports, a.Port)
		n.mu.Unlock()
	}
	return c, nil
}

// localPorts lists the UDP ports the peer's sockets were bound to.
func (n *bigBufferNet) localPorts() []int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.ports)
}
