package testenv

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// TestConformancePageNegotiation drives the page through the harder parts of
// docs/PROTOCOL.md sections 4 and 6 between two browsers: a forced offer
// collision (impolite ignores, polite rolls back, both streams still
// arrive), re-asking for stream metadata before and after untrackStream,
// track removal, restore and a renegotiation-free track swap.
func TestConformancePageNegotiation(t *testing.T) {
	sig := StartRefServer(t)
	b := StartBrowser(t)
	web := ServeWeb(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	alice, err := OpenConformancePage(ctx, t, b, sig, ConformanceOptions{WebURL: web, Name: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	bob, err := OpenConformancePage(ctx, t, b, sig, ConformanceOptions{WebURL: web, Name: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []*ConformancePeer{alice, bob} {
		if err := p.JoinRoom(ctx, "room-n", ""); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []*ConformancePeer{alice, bob} {
		if _, err := p.WaitFor(ctx, `e.type === 'peer-connect'`, 0); err != nil {
			t.Fatal(err)
		}
	}

	// Glare: both hold their signaling, both publish (so both make an
	// offer), then both release. Alice got the init-offer: she is polite.
	marks := map[*ConformancePeer]int{}
	for _, p := range []*ConformancePeer{alice, bob} {
		sum, err := p.Summary(ctx)
		if err != nil {
			t.Fatal(err)
		}
		marks[p] = sum.LastSeq
		if err := p.HoldSignals(ctx); err != nil {
			t.Fatal(err)
		}
	}
	screens := map[*ConformancePeer]StreamInfo{}
	for _, p := range []*ConformancePeer{alice, bob} {
		s, err := p.PublishCamera(ctx, "screen", []any{"$stream", map[string]any{"by": p.ID}}, MediaOptions{NoAudio: true, Source: "synthetic"})
		if err != nil {
			t.Fatal(err)
		}
		screens[p] = s
	}
	for _, p := range []*ConformancePeer{alice, bob} {
		if _, err := p.WaitFor(ctx, `e.type === 'signaling-state' && e.state === 'have-local-offer'`, marks[p]); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []*ConformancePeer{alice, bob} {
		if n, err := p.ReleaseSignals(ctx); err != nil || n == 0 {
			t.Fatalf("release signals: %d %v (want the held offer)", n, err)
		}
	}
	for _, tc := range []struct{ rx, tx *ConformancePeer }{{alice, bob}, {bob, alice}} {
		pred := fmt.Sprintf(`e.type === 'stream-event' && e.name === 'screen' && e.peerId === %q`, tc.tx.ID)
		ev, err := tc.rx.WaitFor(ctx, pred, marks[tc.rx])
		if err != nil {
			t.Fatal(err)
		}
		if got, ok := ev.StreamArg(); !ok || got.RTCIOStreamID != screens[tc.tx].RTCIOStreamID {
			t.Errorf("screen event %s: want stream %s first", ev.Raw, screens[tc.tx].RTCIOStreamID)
		}
		waitFrames(ctx, t, tc.rx, tc.tx.ID, 0)
	}
	sa, err := alice.Summary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sb, err := bob.Summary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if sa.Counters.Rollbacks < 1 || sb.Counters.IgnoredOffers < 1 || sa.Counters.IgnoredOffers != 0 {
		t.Errorf("collision handling: alice (polite) %+v, bob (impolite) %+v: want a rollback on alice and an ignored offer on bob", sa.Counters, sb.Counters)
	}

	screenA := screens[alice]
	t.Run("metadata re-request and untrack", func(t *testing.T) {
		mark := lastSeq(ctx, t, bob)
		if err := bob.RequestStreamEvents(ctx, alice.ID, screenA.MediaStreamID); err != nil {
			t.Fatal(err)
		}
		if _, err := bob.WaitFor(ctx, `e.type === 'stream-event' && e.name === 'screen'`, mark); err != nil {
			t.Fatalf("tracked stream, asked again: %v", err)
		}
		if had, err := alice.UntrackStream(ctx, screenA.RTCIOStreamID); err != nil || !had {
			t.Fatalf("untrack: %v %v", had, err)
		}
		markA := lastSeq(ctx, t, alice)
		if err := bob.RequestStreamEvents(ctx, alice.ID, screenA.MediaStreamID); err != nil {
			t.Fatal(err)
		}
		pred := fmt.Sprintf(`e.type === 'stream-request-unanswered' && e.mid === %q`, screenA.MediaStreamID)
		if _, err := alice.WaitFor(ctx, pred, markA); err != nil {
			t.Fatal(err)
		}
		evs, err := alice.Events(ctx, markA)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			if e.Type == "signal-out" && e.Kind == "mid-answer" {
				t.Errorf("alice answered after untrackStream: %s", e.Raw)
			}
		}
		// Untracking only affects later peers: Bob keeps receiving.
		waitFrames(ctx, t, bob, alice.ID, frames(ctx, t, bob, alice.ID))
	})

	t.Run("remove and restore track", func(t *testing.T) {
		mark := lastSeq(ctx, t, bob)
		if _, err := alice.RemoveTrack(ctx, screenA.RTCIOStreamID, "video"); err != nil {
			t.Fatal(err)
		}
		pred := fmt.Sprintf(`e.type === 'track-removed' && e.stream.mediaStreamId === %q && e.track.kind === 'video'`, screenA.MediaStreamID)
		if _, err := bob.WaitFor(ctx, pred, mark); err != nil {
			t.Fatal(err)
		}
		pcs, err := alice.PeerConnections(ctx)
		if err != nil || pcs.Count != 1 {
			t.Fatalf("alice connections %+v %v", pcs, err)
		}
		inactive := 0
		for _, tr := range pcs.Peers[0].Transceivers {
			if tr.Direction == "inactive" && !tr.Sending {
				inactive++
			}
		}
		if inactive != 1 {
			t.Errorf("alice transceivers %+v: want exactly one inactive without a track", pcs.Peers[0].Transceivers)
		}
		mark = lastSeq(ctx, t, bob)
		if _, err := alice.RestoreTrack(ctx, screenA.RTCIOStreamID, "video"); err != nil {
			t.Fatal(err)
		}
		pred = fmt.Sprintf(`e.type === 'track-added' && e.stream.mediaStreamId === %q && e.track.kind === 'video'`, screenA.MediaStreamID)
		if _, err := bob.WaitFor(ctx, pred, mark); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("swap without renegotiation", func(t *testing.T) {
		before, err := bob.Summary(ctx)
		if err != nil {
			t.Fatal(err)
		}
		old, fresh, err := bob.SwapTrack(ctx, screens[bob].RTCIOStreamID, "video")
		if err != nil || old == fresh {
			t.Fatalf("swap: %s -> %s %v", old, fresh, err)
		}
		waitFrames(ctx, t, alice, bob.ID, frames(ctx, t, alice, bob.ID))
		after, err := bob.Summary(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if after.Counters.OffersSent != before.Counters.OffersSent {
			t.Errorf("swap renegotiated: offers %d -> %d", before.Counters.OffersSent, after.Counters.OffersSent)
		}
	})
}

func lastSeq(ctx context.Context, t *testing.T, p *ConformancePeer) int {
	t.Helper()
	s, err := p.Summary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return s.LastSeq
}

// frames is the video frames p decoded so far from peer.
func frames(ctx context.Context, t *testing.T, p *ConformancePeer, peer string) uint64 {
	t.Helper()
	st, err := p.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, in := range st[peer].Inbound {
		if in.Kind == "video" {
			n += in.FramesDecoded
		}
	}
	return n
}

// waitFrames waits until p decoded more than after video frames from peer.
func waitFrames(ctx context.Context, t *testing.T, p *ConformancePeer, peer string, after uint64) {
	t.Helper()
	pred := fmt.Sprintf(`(s[%q] || {inbound: []}).inbound.filter((i) => i.kind === 'video').reduce((n, i) => n + i.framesDecoded, 0) > %d`, peer, after)
	if _, err := p.WaitForStats(ctx, pred); err != nil {
		t.Errorf("video from %s did not advance past %d frames: %v", peer, after, err)
	}
}
