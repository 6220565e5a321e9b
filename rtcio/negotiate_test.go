package rtcio

import (
	"context"
	"sync"
	"testing"

	"github.com/pion/webrtc/v4"
)

// gateSignaling holds a Socket's outgoing #rtcio:message traffic while
// closed, so a test can make two peers offer at the same time for certain.
type gateSignaling struct {
	Signaling
	mu     sync.Mutex
	hold   bool
	held   [][]any
	offers chan struct{} // one token per held offer
}

func (g *gateSignaling) Emit(ev string, args ...any) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.hold && ev == EventMessage {
		g.held = append(g.held, args)
		if isOfferMessage(args) {
			g.offers <- struct{}{}
		}
		return nil
	}
	return g.Signaling.Emit(ev, args...)
}

func isOfferMessage(args []any) bool {
	m, _ := args[0].(map[string]any)
	data, _ := m["data"].(map[string]any)
	d, ok := data["description"].(sessionDescription)
	return ok && d.Type == "offer"
}

func (g *gateSignaling) close() {
	g.mu.Lock()
	g.hold = true
	g.mu.Unlock()
}

// open sends what was held, in order, and lets later messages through.
func (g *gateSignaling) open(t testing.TB) {
	t.Helper()
	g.mu.Lock()
	defer g.mu.Unlock()
	g.hold = false
	for _, args := range g.held {
		if err := g.Signaling.Emit(EventMessage, args...); err != nil {
			t.Errorf("release held message: %v", err)
		}
	}
	g.held = nil
}

// dialGated dials like dial, with a gate between the Socket and signaling.
func dialGated(t testing.TB, url string, opts Options) (*Socket, *gateSignaling) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	sig, closeSig, err := DialSignaling(ctx, url, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	g := &gateSignaling{Signaling: sig, offers: make(chan struct{}, 64)}
	s, err := New(g, opts)
	if err != nil {
		closeSig()
		t.Fatal(err)
	}
	s.closeSig = closeSig
	t.Cleanup(func() { _ = s.Close() })
	return s, g
}

// joinInOrder joins a, waits for the server's join-ok, then joins b: a gets
// the init-offer and is the polite side.
func joinInOrder(t testing.TB, room string, a, b *Socket) {
	t.Helper()
	ok := collect(a.Server(), "join-ok")
	join(t, a, room)
	ok.next(t, "join-ok")
	join(t, b, room)
}

// TestOfferCollisionGoToGo makes both sides renegotiate at the same moment:
// each publishes a stream while its signaling is held, so both offers are
// out before either arrives. The impolite side must ignore the polite one's
// offer and the polite side must give its own up (pion cannot roll back;
// see negotiate.go) and answer; both streams then arrive with their events
// and media.
func TestOfferCollisionGoToGo(t *testing.T) {
	leakCheck(t)
	url := startGateway(t)
	a, ga := dialGated(t, url, testOptions(t))
	b, gb := dialGated(t, url, testOptions(t))
	aRTP, bRTP := newRTPCounter(a), newRTPCounter(b)
	aConn, bConn := collect(a, EventPeerConnect), collect(b, EventPeerConnect)
	aCam, bCam := collect(a, "cam"), collect(b, "cam")
	joinInOrder(t, "glare", a, b)
	aConn.next(t, "a peer-connect")
	bConn.next(t, "b peer-connect")
	if st, ok := a.Peer(b.ID()).State(); !ok || !st.Polite {
		t.Fatalf("a is not the polite side: %+v", st)
	}

	ga.close()
	gb.close()
	stA, _, _ := fixtureStream(t, "cam-a")
	stB, _, _ := fixtureStream(t, "cam-b")
	if err := a.Emit("cam", map[string]any{"by": "a"}, stA); err != nil {
		t.Fatal(err)
	}
	if err := b.Emit("cam", map[string]any{"by": "b"}, stB); err != nil {
		t.Fatal(err)
	}
	for _, g := range []*gateSignaling{ga, gb} {
		select {
		case <-g.offers:
		case <-timeout():
			t.Fatal("no offer made while signaling was held")
		}
	}
	ga.open(t)
	gb.open(t)

	for _, c := range []struct {
		name string
		rx   *mailbox
		rtp  *rtpCounter
		tx   *Stream
	}{{"a", aCam, aRTP, stB}, {"b", bCam, bRTP, stA}} {
		e := c.rx.next(t, "cam on "+c.name)
		if e.Stream == nil || e.Stream.ID() != c.tx.ID() || e.Stream.MediaStreamID() != c.tx.MediaStreamID() {
			t.Fatalf("%s got stream %+v, want %s", c.name, e.Stream, c.tx.ID())
		}
		for _, kind := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo} {
			c.rtp.waitPackets(t, waitTrack(t, c.rtp, e.Stream, kind), 20)
		}
	}
	sa, okA := a.Peer(b.ID()).State()
	sb, okB := b.Peer(a.ID()).State()
	if !okA || !okB {
		t.Fatalf("peers gone: a has b %v, b has a %v", okA, okB)
	}
	if sa.Rollbacks < 1 || sb.IgnoredOffers < 1 || sa.IgnoredOffers != 0 || sb.Rollbacks != 0 {
		t.Fatalf("collision handling: polite %d rollbacks %d ignored, impolite %d rollbacks %d ignored",
			sa.Rollbacks, sa.IgnoredOffers, sb.Rollbacks, sb.IgnoredOffers)
	}
}

// waitTrack waits until rs has a track of kind and returns it.
func waitTrack(t testing.TB, c *rtpCounter, rs *RemoteStream, kind webrtc.RTPCodecType) *webrtc.TrackRemote {
	t.Helper()
	deadline := timeout()
	for {
		for _, tr := range rs.Tracks() {
			if tr.Kind() == kind {
				return tr
			}
		}
		select {
		case <-c.cond:
		case <-deadline:
			t.Fatalf("stream %s: no %s track", rs.ID(), kind)
		}
	}
}
