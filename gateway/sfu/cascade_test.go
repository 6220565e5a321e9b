package sfu_test

import (
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/pion/webrtc/v4"

	"github.com/rtcio-gateway/rtcio-gateway/gateway/sfu"
	"github.com/rtcio-gateway/rtcio-gateway/gateway/signaling"
	"github.com/rtcio-gateway/rtcio-gateway/internal/gatewaytest"
	"github.com/rtcio-gateway/rtcio-gateway/rtcio"
)

// edges fills in each member's edge (Member.Media) from a table the test
// writes before the member joins, and pairs like signaling.SFU: what the
// cluster's directory will do from its edge assignment.
type edges struct {
	mu       sync.Mutex
	edge     map[string]string
	gateways map[string]bool
}

// link tells the gateway peers which of their peers is another gateway
// peer (sfu.Config.IsLink).
func (e *edges) link(id string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.gateways[id]
}

func (e *edges) set(id, edge string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.edge[id] = edge
}

func (e *edges) fill(m signaling.Member) signaling.Member {
	e.mu.Lock()
	defer e.mu.Unlock()
	m.Media = e.edge[m.ID]
	return m
}

func (e *edges) Name() string { return (signaling.SFU{}).Name() }

func (e *edges) InitOffers(existing []signaling.Member, newcomer signaling.Member) []signaling.InitOffer {
	filled := make([]signaling.Member, len(existing))
	for i, m := range existing {
		filled[i] = e.fill(m)
	}
	return signaling.SFU{}.InitOffers(filled, e.fill(newcomer))
}

func (e *edges) Visible(m signaling.Member) bool { return signaling.SFU{}.Visible(m) }

func (e *edges) MayRelay(from, to signaling.Member) bool {
	return signaling.SFU{}.MayRelay(e.fill(from), e.fill(to))
}

// TestCascadeOfTwoGatewayPeers is the media half of a cascaded room, in
// one process: an origin gateway peer and an edge gateway peer in one SFU
// room, paired by edge, with two clients each. The edge is one more peer
// of the origin and the origin one more of the edge, so each relays to
// every peer but a stream's publisher: every client receives the three
// others' streams with their ids and event, over one connection to its
// own gateway peer, and the two gateway peers share one connection.
// cascadePair is an origin and an edge gateway peer of one SFU room on
// one signaling server, paired by edge ("n2") as the cluster pairs them.
type cascadePair struct {
	url                  string
	pairing              *edges
	origin, edge         *sfu.Room
	originConn, edgeConn *signaling.LocalConn
}

// startCascadePair starts a cascade pair in room with cfg (its API,
// Binder and IsLink are filled in).
func startCascadePair(t *testing.T, room string, cfg sfu.Config) *cascadePair {
	t.Helper()
	binder := sfu.NewBinder()
	api, err := sfu.NewAPI(binder, func(se *webrtc.SettingEngine) { se.SetIncludeLoopbackCandidate(true) })
	if err != nil {
		t.Fatal(err)
	}
	c := &cascadePair{pairing: &edges{edge: map[string]string{}, gateways: map[string]bool{}}}
	sig, err := signaling.New(signaling.Options{
		Topology: func(string) signaling.Topology { return c.pairing },
		Logger:   slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	c.url = gatewaytest.ServeSignaling(t, sig)
	cfg.API, cfg.Binder, cfg.IsLink = api, binder, c.pairing.link
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	c.originConn = sig.AttachLocal(signaling.RoleGateway)
	c.pairing.gateways[c.originConn.ID()] = true
	if c.origin, err = sfu.Join(c.originConn, room, "origin", cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.origin.Close)
	c.edgeConn = sig.AttachLocal(signaling.RoleGateway)
	c.pairing.set(c.edgeConn.ID(), "n2")
	c.pairing.gateways[c.edgeConn.ID()] = true
	if c.edge, err = sfu.Join(c.edgeConn, room, "edge", cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.edge.Close)
	return c
}

func TestCascadeOfTwoGatewayPeers(t *testing.T) {
	const room = "big"
	notes := newNotices()
	cp := startCascadePair(t, room, sfu.Config{Notify: notes.add})
	url, pairing, origin, edge, originConn, edgeConn := cp.url, cp.pairing, cp.origin, cp.edge, cp.originConn, cp.edgeConn

	var clients []*client
	var cams []*mailbox
	for i := range 4 {
		c := dialNoJoin(t, url)
		if i >= 2 {
			pairing.set(c.ID(), "n2")
		}
		cams = append(cams, collect(c.Socket, "camera"))
		join(t, c.Socket, room)
		clients = append(clients, c)
	}
	streams := make([]*rtcio.Stream, len(clients))
	for i, c := range clients {
		streams[i] = publishFixture(t, c.Socket, "camera", "cam-"+c.ID(), map[string]any{"name": c.ID()})
	}
	for i, c := range clients {
		for range len(clients) - 1 {
			ev := cams[i].next(t, "camera on "+c.ID())
			var meta cameraMeta
			if err := ev.Decode(0, &meta); err != nil {
				t.Fatal(err)
			}
			j := slices.IndexFunc(clients, func(x *client) bool { return x.ID() == meta.Name })
			if j < 0 || j == i {
				t.Fatalf("%s got camera %q", c.ID(), meta.Name)
			}
			checkCamera(t, c.ID(), ev, streams[j], clients[j].ID())
		}
		for j, st := range streams {
			if j != i {
				c.waitRTP(t, 20, trackIDs(st)...)
			}
		}
		want := originConn.ID()
		if i >= 2 {
			want = edgeConn.ID()
		}
		if peers := c.Peers(); !slices.Equal(peers, []string{want}) {
			t.Errorf("%s has peers %v, want only its gateway peer %s", c.ID(), peers, want)
		}
	}
	// No stream came back where it came from: each client got exactly
	// three camera events; each gateway peer has its two clients and the
	// other gateway peer, receives the four streams once, and forwards
	// each to its peers but the one it came from (2 tracks x 2 peers).
	for i, m := range cams {
		if !m.empty() {
			t.Errorf("%s got a fourth camera", clients[i].ID())
		}
	}
	for _, gw := range []*sfu.Room{origin, edge} {
		if st := gw.Stats(); st.Peers != 3 || st.Streams != 4 || st.DownTracks != 16 {
			t.Errorf("gateway peer stats %+v, want 3 peers, 4 streams, 16 down-tracks", st)
		}
	}

	// A late joiner on the edge gets every live stream: the edge asks the
	// origin for the streams it relays, the origin answers.
	late := dialNoJoin(t, url)
	pairing.set(late.ID(), "n2")
	lateCams := collect(late.Socket, "camera")
	join(t, late.Socket, room)
	got := map[string]bool{}
	for range streams {
		ev := lateCams.next(t, "camera on the late joiner")
		var meta cameraMeta
		if err := ev.Decode(0, &meta); err != nil {
			t.Fatal(err)
		}
		got[meta.Name] = true
	}
	for j, st := range streams {
		if !got[clients[j].ID()] {
			t.Errorf("late joiner did not get %s's camera (got %v)", clients[j].ID(), got)
		}
		late.waitRTP(t, 20, trackIDs(st)...)
	}

	// What a later joiner on the edge gets follows the publishers: the
	// edge asks the origin, which asks the publisher again. A stream its
	// publisher untracked is not replayed; one emitted again under a new
	// name arrives under it.
	clients[0].UntrackStream(streams[0])
	if err := clients[1].Emit("screen", map[string]any{"name": "renamed", "stream": streams[1]}); err != nil {
		t.Fatal(err)
	}
	later := dialNoJoin(t, url)
	pairing.set(later.ID(), "n2")
	laterCams := collect(later.Socket, "camera")
	laterScreens := collect(later.Socket, "screen")
	join(t, later.Socket, room)
	checkCamera(t, "later joiner", laterScreens.next(t, "screen on the later joiner"), streams[1], "renamed")
	notes.wait(t, "untracked stream not replayed at the edge", func(n sfu.Notice) bool {
		return n.Kind == sfu.StreamNotReplayed && n.Client == later.ID() && n.Stream == streams[0].ID()
	})
	for _, st := range streams[1:] {
		later.waitRTP(t, 20, trackIDs(st)...)
	}
	for !laterCams.empty() {
		ev := laterCams.next(t, "camera")
		var meta cameraMeta
		if err := ev.Decode(0, &meta); err != nil {
			t.Fatal(err)
		}
		if meta.Name == clients[0].ID() {
			t.Errorf("the later joiner on the edge got the untracked camera of %s", meta.Name)
		}
	}
}

// TestCascadeLinkNotRateLimited: the relay rate bounds each client, not a
// link, which carries every message of the clients behind it. With 3
// messages per sender at most (burst 3, 1 per second after), three edge
// clients send 3 each: all 9 reach the origin's client over the link
// (as one sender it would have been cut to 3), and nothing is dropped.
func TestCascadeLinkNotRateLimited(t *testing.T) {
	const room = "chatty"
	var drops atomic.Int64
	cp := startCascadePair(t, room, sfu.Config{RelayRate: 1, RelayBurst: 3, Dropped: func(string) { drops.Add(1) }})
	o := dialNoJoin(t, cp.url)
	chats := collect(o.Socket, "chat")
	join(t, o.Socket, room)
	oStream := publishFixture(t, o.Socket, "camera", "cam-o", map[string]any{"name": "o"})
	var senders []*client
	for range 3 {
		c := dialNoJoin(t, cp.url)
		cp.pairing.set(c.ID(), "n2")
		join(t, c.Socket, room)
		senders = append(senders, c)
	}
	// Connected end to end: each edge client receives the origin's
	// client's camera over the link.
	for _, c := range senders {
		c.waitRTP(t, 20, trackIDs(oStream)...)
	}
	for i, c := range senders {
		for k := range 3 {
			if err := c.Emit("chat", fmt.Sprintf("%d-%d", i, k)); err != nil {
				t.Fatal(err)
			}
		}
	}
	got := map[string]bool{}
	for range 9 {
		ev := chats.next(t, "chat at the origin's client")
		var s string
		if err := ev.Decode(0, &s); err != nil {
			t.Fatal(err)
		}
		got[s] = true
	}
	if len(got) != 9 || drops.Load() != 0 {
		t.Fatalf("the origin's client got %d distinct messages of 9, %d dropped", len(got), drops.Load())
	}
}
