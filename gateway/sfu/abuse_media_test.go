package sfu_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/rtcio-gateway/rtcio-gateway/gateway/sfu"
	"github.com/rtcio-gateway/rtcio-gateway/internal/gatewaytest"
	"github.com/rtcio-gateway/rtcio-gateway/rtcio"
)

// rawTrack is an Opus track whose RTP the test writes itself, header and
// all, so it can send what a hostile publisher would: a payload type never
// negotiated, a new SSRC on every packet.
type rawTrack struct {
	id, streamID string

	mu     sync.Mutex
	writer webrtc.TrackLocalWriter
	ssrc   uint32
	pt     uint8
	bound  chan struct{}
	once   sync.Once
	seq    uint16
	ts     uint32
	badPTs atomic.Int32 // packets still to send with an unknown payload type
	// cycle, when set, gives every packet a new SSRC.
	cycle atomic.Bool
	// mark is the first payload byte of every packet: whose media a
	// receiver got.
	mark byte
}

func newRawTrack(id, streamID string) *rawTrack {
	return &rawTrack{id: id, streamID: streamID, bound: make(chan struct{}), mark: 0xfc}
}

func (r *rawTrack) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	for _, c := range ctx.CodecParameters() {
		if c.MimeType == webrtc.MimeTypeOpus {
			r.mu.Lock()
			r.writer, r.ssrc, r.pt = ctx.WriteStream(), uint32(ctx.SSRC()), uint8(c.PayloadType)
			r.mu.Unlock()
			r.once.Do(func() { close(r.bound) })
			return c, nil
		}
	}
	return webrtc.RTPCodecParameters{}, webrtc.ErrUnsupportedCodec
}

func (r *rawTrack) Unbind(webrtc.TrackLocalContext) error { return nil }
func (r *rawTrack) ID() string                            { return r.id }
func (r *rawTrack) RID() string                           { return "" }
func (r *rawTrack) StreamID() string                      { return r.streamID }
func (r *rawTrack) Kind() webrtc.RTPCodecType             { return webrtc.RTPCodecTypeAudio }

// writeOne sends the next 20 ms Opus packet.
func (r *rawTrack) writeOne() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.writer == nil {
		return
	}
	r.seq++
	r.ts += 960
	h := rtp.Header{Version: 2, PayloadType: r.pt, SequenceNumber: r.seq, Timestamp: r.ts, SSRC: r.ssrc}
	if r.badPTs.Load() > 0 {
		r.badPTs.Add(-1)
		h.PayloadType = 123
	}
	if r.cycle.Load() {
		r.ssrc++
		h.SSRC = r.ssrc
	}
	_, _ = r.writer.WriteRTP(&h, []byte{r.mark, 0xff, 0xfe})
}

// play writes a packet every interval until the test ends.
func (r *rawTrack) play(t *testing.T, interval time.Duration) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				r.writeOne()
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
}

// publishRaw publishes a stream of one rawTrack under "camera".
func publishRaw(t *testing.T, s *rtcio.Socket, msid string) (*rawTrack, *rtcio.Stream) {
	t.Helper()
	tr := newRawTrack("raw-"+msid, msid)
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
	tr.play(t, 20*time.Millisecond)
	cams.next(t, "camera on the subscriber")
	sub.waitRTP(t, 20, tr.ID())

	tr.badPTs.Store(1)
	sub.mu.Lock()
	before := sub.packets[tr.ID()]
	sub.mu.Unlock()
	// 50 more packets (a second of audio) must arrive after the bad one.
	sub.waitRTP(t, before+50, tr.ID())
	if tr.badPTs.Load() != 0 {
		t.Fatal("the bad packet was never sent")
	}
	if n := dropped(gw, sfu.DropUnknownPayload); n == 0 {
		t.Errorf("the dropped packet was not counted")
	}
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
	tr.play(t, 2*time.Millisecond)
	cams.next(t, "camera on the subscriber")
	sub.waitRTP(t, 20, tr.ID())

	tr.cycle.Store(true)
	waitDropped(t, gw, sfu.DropUnknownSSRCs, 1)
	by.checkGap(t, mark)
}
