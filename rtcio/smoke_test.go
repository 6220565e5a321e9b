package rtcio

import "testing"

func TestTwoSocketsCtrl(t *testing.T) {
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
