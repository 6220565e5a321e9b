package rtcio

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"
)

// TestThreeSocketsChannelsAndLifecycle covers ctrl broadcast and per-peer
// events, a broadcast channel and a per-peer channel (text and binary),
// backpressure, and peer-connect/peer-disconnect pairing among three Sockets.
func TestThreeSocketsChannelsAndLifecycle(t *testing.T) {
	leakCheck(t)
	url := startGateway(t)
	a := dial(t, url, testOptions(t))
	b := dial(t, url, testOptions(t))
	c := dial(t, url, testOptions(t))
	conns := map[*Socket]*mailbox{}
	discs := map[*Socket]*mailbox{}
	for _, s := range []*Socket{a, b, c} {
		conns[s] = collect(s, EventPeerConnect)
		discs[s] = collect(s, EventPeerDisconnect)
	}
	// Broadcast channel created before any peer exists: replayed to all.
	chans := map[*Socket]*BroadcastChannel{}
	chats := map[*Socket]*mailbox{}
	for _, s := range []*Socket{a, b, c} {
		bc, err := s.CreateChannel("chat", ChannelOptions{})
		if err != nil {
			t.Fatal(err)
		}
		chans[s] = bc
		chats[s] = collect(bc, "msg")
	}
	for _, s := range []*Socket{a, b, c} {
		join(t, s, "three")
	}
	for _, s := range []*Socket{a, b, c} {
		seen := map[string]bool{}
		for range 2 {
			seen[conns[s].next(t, "peer-connect").PeerID] = true
		}
		if len(seen) != 2 || seen[s.ID()] {
			t.Fatalf("%s connected to %v", s.ID(), seen)
		}
	}

	// Ctrl broadcast reaches both others; per-peer emit only its target,
	// and per-peer listeners see only their peer.
	bPing := collect(b, "ping")
	cPing := collect(c, "ping")
	bFromA := collect(b.Peer(a.ID()), "ping")
	bFromC := collect(b.Peer(c.ID()), "ping")
	if err := a.Emit("ping", 1); err != nil {
		t.Fatal(err)
	}
	if e := bPing.next(t, "ping on b"); e.PeerID != a.ID() {
		t.Fatalf("ping from %s", e.PeerID)
	}
	cPing.next(t, "ping on c")
	bFromA.next(t, "per-peer ping on b")
	if err := c.Peer(b.ID()).Emit("ping", "only-b"); err != nil {
		t.Fatal(err)
	}
	if e := bFromC.next(t, "per-peer ping from c"); e.Args[0] != "only-b" {
		t.Fatalf("args %v", e.Args)
	}
	if e := bPing.next(t, "ping on b from c"); e.PeerID != c.ID() {
		t.Fatalf("from %s", e.PeerID)
	}
	// a's second broadcast is a barrier: c got no per-peer ping meant for b.
	if err := a.Emit("ping", 2); err != nil {
		t.Fatal(err)
	}
	if e := cPing.next(t, "second ping on c"); e.PeerID != a.ID() {
		t.Fatalf("c saw ping from %s: a per-peer emit leaked", e.PeerID)
	}
	bFromA.next(t, "second per-peer ping on b")
	bFromA.none(t, "stray per-peer event", 100*time.Millisecond)

	// Broadcast channel: text envelopes from a reach b and c.
	if err := chans[a].Emit("msg", "hi all"); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*Socket{b, c} {
		if e := chats[s].next(t, "broadcast channel msg"); e.PeerID != a.ID() || e.Args[0] != "hi all" {
			t.Fatalf("msg %+v", e)
		}
	}

	// Per-peer channel between a and b with binary data and backpressure.
	abA, err := a.Peer(b.ID()).CreateChannel("files", ChannelOptions{HighWatermark: 64 << 10, LowWatermark: 16 << 10})
	if err != nil {
		t.Fatal(err)
	}
	abB, err := b.Peer(a.ID()).CreateChannel("files", ChannelOptions{})
	if err != nil {
		t.Fatal(err)
	}
	data := collect(abB, ChannelEventData)
	texts := collect(abB, "meta")
	if err := abA.Emit("meta", map[string]any{"name": "x.bin"}); err != nil {
		t.Fatal(err)
	}
	chunk := bytes.Repeat([]byte{0xab}, 16<<10)
	sent, blocked := 0, false
	for sent < 64 {
		ok, err := abA.Send(chunk)
		if err != nil {
			t.Fatal(err)
		}
		sent++
		if !ok {
			blocked = true
			ctx, cancel := context.WithTimeout(context.Background(), waitFor)
			err := abA.WaitDrain(ctx)
			cancel()
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	if !blocked {
		t.Fatal("1 MiB through a 64 KiB high watermark never reported backpressure")
	}
	if e := texts.next(t, "meta on per-peer channel"); e.Args[0].(map[string]any)["name"] != "x.bin" {
		t.Fatalf("meta %+v", e.Args)
	}
	for i := range sent {
		e := data.next(t, "binary chunk")
		if b, ok := e.Args[0].([]byte); !ok || !bytes.Equal(b, chunk) {
			t.Fatalf("chunk %d mismatch", i)
		}
	}

	// Hash collision on one peer is an error.
	if _, err := a.Peer(b.ID()).CreateChannel(collidingName(t, "files"), ChannelOptions{}); !errors.Is(err, ErrHashCollision) {
		t.Fatalf("colliding channel: %v", err)
	}

	// c leaves: a and b each fire one peer-disconnect for c.
	cID := c.ID()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*Socket{a, b} {
		if e := discs[s].next(t, "peer-disconnect"); e.PeerID != cID {
			t.Fatalf("disconnect of %s, want %s", e.PeerID, cID)
		}
	}
	// c fired peer-disconnect for both of its peers when it closed.
	gone := map[string]bool{}
	for range 2 {
		gone[discs[c].next(t, "c's own peer-disconnect").PeerID] = true
	}
	if !gone[a.ID()] || !gone[b.ID()] {
		t.Fatalf("c disconnected from %v", gone)
	}
	// Exactly one disconnect per connect: nothing more arrives.
	for _, s := range []*Socket{a, b} {
		discs[s].none(t, "second peer-disconnect", 200*time.Millisecond)
	}
}

// collidingName finds another name with the same channel id.
func collidingName(t testing.TB, name string) string {
	want := ChannelID(name)
	for i := range 1 << 20 {
		n := "c" + string(rune('a'+i%26)) + string(rune('a'+(i/26)%26)) + string(rune('a'+(i/676)%26)) + string(rune('a'+(i/17576)%26))
		if n != name && ChannelID(n) == want {
			return n
		}
	}
	t.Fatal("no collision found")
	return ""
}
