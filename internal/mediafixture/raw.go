package mediafixture

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// RawTrack is an Opus track whose RTP packets it writes itself, header and
// all, so that a test can send what a hostile publisher would: a payload
// type never negotiated, a new SSRC on every packet. Its payload is three
// bytes starting with Mark, so a receiver can tell whose packets it got.
type RawTrack struct {
	id, streamID string
	// Mark is the first payload byte of every packet.
	Mark byte
	// BadPayloadTypes is how many of the next packets carry payload type
	// 123, which no session negotiates.
	BadPayloadTypes atomic.Int32
	// CycleSSRC, when set, gives every packet a new SSRC.
	CycleSSRC atomic.Bool

	mu     sync.Mutex
	writer webrtc.TrackLocalWriter
	ssrc   uint32
	pt     uint8
	seq    uint16
	ts     uint32
}

// NewRawTrack makes a RawTrack with the given track and stream ids.
func NewRawTrack(id, streamID string) *RawTrack {
	return &RawTrack{id: id, streamID: streamID, Mark: 0xfc}
}

// Bind implements webrtc.TrackLocal.
func (r *RawTrack) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	for _, c := range ctx.CodecParameters() {
		if c.MimeType == webrtc.MimeTypeOpus {
			r.mu.Lock()
			r.writer, r.ssrc, r.pt = ctx.WriteStream(), uint32(ctx.SSRC()), uint8(c.PayloadType)
			r.mu.Unlock()
			return c, nil
		}
	}
	return webrtc.RTPCodecParameters{}, webrtc.ErrUnsupportedCodec
}

// Unbind implements webrtc.TrackLocal.
func (r *RawTrack) Unbind(webrtc.TrackLocalContext) error { return nil }

// ID implements webrtc.TrackLocal.
func (r *RawTrack) ID() string { return r.id }

// RID implements webrtc.TrackLocal.
func (r *RawTrack) RID() string { return "" }

// StreamID implements webrtc.TrackLocal.
func (r *RawTrack) StreamID() string { return r.streamID }

// Kind implements webrtc.TrackLocal.
func (r *RawTrack) Kind() webrtc.RTPCodecType { return webrtc.RTPCodecTypeAudio }

// WriteOne sends the next 20 ms packet (nothing before the track is bound).
func (r *RawTrack) WriteOne() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.writer == nil {
		return
	}
	r.seq++
	r.ts += 960
	h := rtp.Header{Version: 2, PayloadType: r.pt, SequenceNumber: r.seq, Timestamp: r.ts, SSRC: r.ssrc}
	if r.BadPayloadTypes.Load() > 0 {
		r.BadPayloadTypes.Add(-1)
		h.PayloadType = 123
	}
	if r.CycleSSRC.Load() {
		r.ssrc++
		h.SSRC = r.ssrc
	}
	_, _ = r.writer.WriteRTP(&h, []byte{r.Mark, 0xff, 0xfe})
}

// Play writes a packet every interval until ctx ends.
func (r *RawTrack) Play(ctx context.Context, interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			r.WriteOne()
		}
	}
}

// PlayVP8AndOpus loops the VP8 and Opus fixtures into video and audio
// until ctx ends; wait returns once both players stopped.
func PlayVP8AndOpus(ctx context.Context, video, audio SampleWriter) (wait func()) {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = PlayIVF(ctx, Path(VP8), video) }()
	go func() { defer wg.Done(); _ = PlayOgg(ctx, Path(Opus), audio) }()
	return wg.Wait
}
