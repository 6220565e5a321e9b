package rtcio

import (
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
)

// dropConn is a loopback UDP socket that can be made to drop everything,
// which is how a peer dies without saying goodbye (tab killed, cable cut).
type dropConn struct {
	net.PacketConn
	drop atomic.Bool
}

func (c *dropConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, a, err := c.PacketConn.ReadFrom(b)
		if err != nil || !c.drop.Load() {
			return n, a, err
		}
	}
}

func (c *dropConn) WriteTo(b []byte, a net.Addr) (int, error) {
	if c.drop.Load() {
		return len(b), nil
	}
	return c.PacketConn.WriteTo(b, a)
}

// killablePeer dials a Socket whose media transport can be cut.
func killablePeer(t *testing.T, url string) (*Socket, *dropConn) {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dc := &dropConn{PacketConn: pc}
	mux := webrtc.NewICEUDPMux(nil, dc)
	// Registered before dial so it runs after the Socket closed.
	t.Cleanup(func() { _ = mux.Close() })
	s := dial(t, url, testOptions(t, func(se *webrtc.SettingEngine) { se.SetICEUDPMux(mux) }))
	return s, dc
}

func fastICE(se *webrtc.SettingEngine) {
	se.SetICETimeouts(time.Second, 3*time.Second, 200*time.Millisecond)
}

func TestWatchdogClosesDeadPeer(t *testing.T) {
	leakCheck(t)
	url := startGateway(t)
	opts := testOptions(t, fastICE)
	opts.Watchdog = Watchdog{Timeout: 2 * time.Second, HintTimeout: 300 * time.Millisecond}
	a := dial(t, url, opts)
	b, bNet := killablePeer(t, url)
	aConn := collect(a, EventPeerConnect)
	aDisc := collect(a, EventPeerDisconnect)
	join(t, a, "wd")
	join(t, b, "wd")
	aConn.next(t, "peer-connect")

	// b dies silently; its signaling stays up, so no hint arrives.
	killed := time.Now()
	bNet.drop.Store(true)
	e := aDisc.next(t, "watchdog peer-disconnect")
	took := time.Since(killed)
	if e.PeerID != b.ID() {
		t.Fatalf("disconnect of %s", e.PeerID)
	}
	// ICE reports disconnected after ~1 s; the watchdog then waits 2 s.
	if took < 2*time.Second || took > 6*time.Second {
		t.Fatalf("dead peer closed after %v, want within [2s, 6s]", took)
	}
	if len(a.Peers()) != 0 {
		t.Fatalf("peers left: %v", a.Peers())
	}
}

func TestWatchdogHintShortensWindow(t *testing.T) {
	leakCheck(t)
	url := startGateway(t)
	opts := testOptions(t, fastICE)
	opts.Watchdog = Watchdog{Timeout: 8 * time.Second, HintTimeout: 300 * time.Millisecond}
	a := dial(t, url, opts)
	b, bNet := killablePeer(t, url)
	aConn := collect(a, EventPeerConnect)
	aDisc := collect(a, EventPeerDisconnect)
	join(t, a, "wd-hint")
	join(t, b, "wd-hint")
	aConn.next(t, "peer-connect")

	// b dies and its signaling connection goes too: the server sends
	// #rtcio:peer-left, which shortens (never replaces) the watchdog.
	bID := b.ID()
	killed := time.Now()
	bNet.drop.Store(true)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	e := aDisc.next(t, "hinted peer-disconnect")
	took := time.Since(killed)
	if e.PeerID != bID {
		t.Fatalf("disconnect of %s", e.PeerID)
	}
	if took > 4*time.Second {
		t.Fatalf("hinted dead peer closed after %v, want well under the 8 s window", took)
	}
}

func TestPeerLeftHintKeepsHealthyPeer(t *testing.T) {
	leakCheck(t)
	url := startGateway(t)
	a := dial(t, url, testOptions(t))
	b := dial(t, url, testOptions(t))
	aConn := collect(a, EventPeerConnect)
	aPing := collect(a, "ping")
	join(t, a, "hint-healthy")
	join(t, b, "hint-healthy")
	aConn.next(t, "peer-connect")
	// A forged hint while the connection is healthy must not tear it down.
	for _, p := range a.Peers() {
		a.mu.Lock()
		pp := a.peers[p]
		a.mu.Unlock()
		pp.post(pp.peerLeftHint)
	}
	if err := b.Emit("ping"); err != nil {
		t.Fatal(err)
	}
	aPing.next(t, "ping after hint")
	if st, ok := a.Peer(b.ID()).State(); !ok || st.Connection != webrtc.PeerConnectionStateConnected {
		t.Fatalf("peer state after hint: %+v %v", st, ok)
	}
}
