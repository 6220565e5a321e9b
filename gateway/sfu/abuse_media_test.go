package sfu_test

import (
	"context"
	"testing"
	"time"

	"github.com/rtcio-gateway/rtcio-gateway/gateway/sfu"
	"github.com/rtcio-gateway/rtcio-gateway/internal/gatewaytest"
	"github.com/rtcio-gateway/rtcio-gateway/internal/mediafixture"
	"github.com/rtcio-gateway/rtcio-gateway/rtcio"
)

// publishRaw publishes a stream of one rawTrack under "camera".
func publishRaw(t *testing.T, s *rtcio.Socket, msid string) (*mediafixture.RawTrack, *rtcio.Stream) {
	t.Helper()
	tr := mediafixture.NewRawTrack("raw-"+msid, msid)
	st, err := rtcio.NewStream(tr)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Emit("camera", map[string]any{"name": msid, "stream": st}); err != nil {
		t.Fatal(err)
	}
	return tr, st
}

// TestAbuseUnknownPayloadTypeDoesNotEndTrack (finding 7): one RTP packet
// with a payload type the session never negotiated is dropped and counted;
// the publication keeps forwarding what follows.
func TestAbuseUnknownPayloadTypeDoesNotEndTrack(t *testing.T) {
	gw, _ := startSFU(t)
	const room = "bad-pt"
	pub := dial(t, gw.URL, room)
	sub := dial(t, gw.URL, room)
	cams := collect(sub.Socket, "camera")
	tr, _ := publishRaw(t, pub.Socket, "bad-pt-cam")
	playRaw(t, tr, 20*time.Millisecond)
	cams.next(t, "camera on the subscriber")
	sub.waitRTP(t, 20, tr.ID())

	tr.BadPayloadTypes.Store(1)
	sub.mu.Lock()
	before := sub.packets[tr.ID()]
	sub.mu.Unlock()
	// 50 more packets (a second of audio) must arrive after the bad one.
	sub.waitRTP(t, before+50, tr.ID())
	if tr.BadPayloadTypes.Load() != 0 {
		t.Fatal("the bad packet was never sent")
	}
	if n := dropped(gw, sfu.DropUnknownPayload); n == 0 {
		t.Errorf("the dropped packet was not counted")
	}
}

// playRaw plays tr every interval until the test ends.
func playRaw(t *testing.T, tr *mediafixture.RawTrack, interval time.Duration) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); tr.Play(ctx, interval) }()
	t.Cleanup(func() { cancel(); <-done })
}

// dropped reads one drop counter of the gateway.
func dropped(gw *gatewaytest.Gateway, reason string) uint64 {
	return gw.Server.Metrics().Snapshot().Dropped[reason]
}

// TestAbuseSSRCCyclingPublisherIsClosed (finding 4): a publisher that puts
// a new SSRC on every packet has its peer connection closed once it passes
// media.max_unknown_ssrcs, the closure is counted, and a bystander room's
// media does not pause.
func TestAbuseSSRCCyclingPublisherIsClosed(t *testing.T) {
	gw, _ := startSFU(t)
	by := startBystander(t, gw.URL)
	mark := by.mark()
	const room = "ssrc-cycle"
	pub := dial(t, gw.URL, room)
	sub := dial(t, gw.URL, room)
	cams := collect(sub.Socket, "camera")
	tr, _ := publishRaw(t, pub.Socket, "cycle-cam")
	playRaw(t, tr, 2*time.Millisecond)
	cams.next(t, "camera on the subscriber")
	sub.waitRTP(t, 20, tr.ID())

	tr.CycleSSRC.Store(true)
	waitDropped(t, gw, sfu.DropUnknownSSRCs, 1)
	by.checkGap(t, mark)
}
