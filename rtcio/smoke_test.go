package rtcio

import (
	"strings"
	"testing"
	"time"
)

func TestTwoSocketsCtrl(t *testing.T) {
	leakCheck(t)
	url := startGateway(t)
	a := dial(t, url, testOptions(t))
	b := dial(t, url, testOptions(t))
	ac := collect(a, EventPeerConnect)
	bc := collect(b, EventPeerConnect)
	bchat := collect(b, "chat")
	join(t, a, "r1")
	join(t, b, "r1")
	if e := ac.next(t, "a peer-connect"); e.PeerID != b.ID() {
		t.Fatalf("a connected to %q, want %q", e.PeerID, b.ID())
	}
	if e := bc.next(t, "b peer-connect"); e.PeerID != a.ID() {
		t.Fatalf("b connected to %q, want %q", e.PeerID, a.ID())
	}
	if err := a.Emit("chat", "hello", map[string]any{"n": 1}); err != nil {
		t.Fatal(err)
	}
	e := bchat.next(t, "chat")
	var s string
	var m struct{ N int }
	if err := e.DecodeArgs(&s, &m); err != nil || s != "hello" || m.N != 1 || e.PeerID != a.ID() {
		t.Fatalf("chat = %q %+v from %s (%v)", s, m, e.PeerID, err)
	}
}

// TestHostileCtrlFramesGoToGo sends frames the ctrl filters must drop,
// including a 2 MiB text frame (Chromium refuses to send one, pion does not).
func TestHostileCtrlFramesGoToGo(t *testing.T) {
	leakCheck(t)
	url := startGateway(t)
	a := dial(t, url, testOptions(t))
	b := dial(t, url, testOptions(t))
	aConn := collect(a, EventPeerConnect)
	bConn := collect(b, EventPeerConnect)
	bOK := collect(b, "ok")
	bBad := collect(b, "big")
	join(t, a, "hostile")
	join(t, b, "hostile")
	// a writes on its own ctrl channel below: its open (a's peer-connect),
	// not b's, says it can.
	aConn.next(t, "a peer-connect")
	bConn.next(t, "b peer-connect")
	a.mu.Lock()
	p := a.peers[b.ID()]
	a.mu.Unlock()
	big := `{"e":"big","d":["` + strings.Repeat("x", 2<<20) + `"]}`
	for _, f := range []string{`{"e":"peer-disconnect","d":[{"id":"x"}]}`, `{"e":"#rtcio:init-offer"}`, `nope`, big} {
		if err := p.ctrl.SendText(f); err != nil {
			t.Fatalf("send %d bytes: %v", len(f), err)
		}
	}
	if err := p.ctrl.Send([]byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	if err := a.Emit("ok"); err != nil {
		t.Fatal(err)
	}
	bOK.next(t, "ok after hostile frames")
	bBad.none(t, "oversized event", 100*time.Millisecond)
	bConn.none(t, "second peer-connect", 10*time.Millisecond)
	if st, ok := b.Peer(a.ID()).State(); !ok || !st.Connected {
		t.Fatalf("b lost a: %+v", st)
	}
}
