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
	tr, sub := rawPublication(t, gw, "bad-pt", 20*time.Millisecond)

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

// rawPublication joins a publisher of a RawTrack played every interval and
// a subscriber to room, and returns once the subscriber receives it.
func rawPublication(t *testing.T, gw *gatewaytest.Gateway, room string, interval time.Duration) (*mediafixture.RawTrack, *client) {
	t.Helper()
	pub := dial(t, gw.URL, room)
	sub := dial(t, gw.URL, room)
	cams := collect(sub.Socket, "camera")
	tr, _ := publishRaw(t, pub.Socket, room+"-cam")
	playRaw(t, tr, interval)
	cams.next(t, "camera on the subscriber")
	sub.waitRTP(t, 20, tr.ID())
	return tr, sub
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
	tr, _ := rawPublication(t, gw, "ssrc-cycle", 2*time.Millisecond)

	tr.CycleSSRC.Store(true)
	waitDropped(t, gw, sfu.DropUnknownSSRCs, 1)
	by.checkGap(t, mark)
}
