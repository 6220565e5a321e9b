package sfu_test

import (
	"log/slog"
	"slices"
	"sync"
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
func TestCascadeOfTwoGatewayPeers(t *testing.T) {
	binder := sfu.NewBinder()
	api, err := sfu.NewAPI(binder, func(se *webrtc.SettingEngine) { se.SetIncludeLoopbackCandidate(true) })
	if err != nil {
		t.Fatal(err)
	}
	pairing := &edges{edge: map[string]string{}, gateways: map[string]bool{}}
	sig, err := signaling.New(signaling.Options{
		Topology: func(string) signaling.Topology { return pairing },
		Logger:   slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	url := gatewaytest.ServeSignaling(t, sig)
	const room = "big"

	notes := newNotices()
	cfg := sfu.Config{API: api, Binder: binder, Logger: slog.New(slog.DiscardHandler), IsLink: pairing.link, Notify: notes.add}
	originConn := sig.AttachLocal(signaling.RoleGateway)
	pairing.gateways[originConn.ID()] = true
	origin, err := sfu.Join(originConn, room, "origin", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(origin.Close)
	edgeConn := sig.AttachLocal(signaling.RoleGateway)
	pairing.set(edgeConn.ID(), "n2")
	pairing.gateways[edgeConn.ID()] = true
	edge, err := sfu.Join(edgeConn, room, "edge", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(edge.Close)

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
