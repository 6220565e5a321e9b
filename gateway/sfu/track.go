package sfu

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"

	"github.com/rtcio-gateway/rtcio-gateway/forwarding"
)

// forwardTrack is the pion TrackLocal that carries one publication to
// subscribers: every peer connection it is added to binds it once, and each
// binding becomes a forwarding down-track writing to that connection. It
// carries the publisher's track id and MediaStream id, so a subscriber's
// SDP msid matches the publisher's stream.
type forwardTrack struct {
	pub      *forwarding.Publication
	codec    webrtc.RTPCodecParameters // the publisher's codec
	id       string
	streamID string
	kind     webrtc.RTPCodecType
	router   *RTCPRouter
	log      *slog.Logger
	observer Observer
	stats    trackStats

	mu     sync.Mutex
	downs  map[string]*forwarding.DownTrack // by binding id
	outs   map[string]*streamWriter         // by binding id
	bySSRC map[uint32]*forwarding.DownTrack
}

func newForwardTrack(pub *forwarding.Publication, codec webrtc.RTPCodecParameters, id, streamID string, kind webrtc.RTPCodecType, router *RTCPRouter, observer Observer, log *slog.Logger) *forwardTrack {
	f := &forwardTrack{
		pub: pub, codec: codec, id: id, streamID: streamID, kind: kind, router: router, observer: observer, log: log,
		downs:  make(map[string]*forwarding.DownTrack),
		outs:   make(map[string]*streamWriter),
		bySSRC: make(map[uint32]*forwarding.DownTrack),
	}
	f.observe(observer)
	return f
}

// Bind implements webrtc.TrackLocal: it picks the subscriber's payload type
// for the publisher's codec (no transcoding: a subscriber that cannot take
// the codec does not get the track) and subscribes a down-track.
func (f *forwardTrack) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	codec, rtxPT, ok := matchCodec(f.codec, ctx.CodecParameters())
	if !ok {
		return webrtc.RTPCodecParameters{}, fmt.Errorf("sfu: subscriber did not negotiate %s", f.codec.MimeType)
	}
	ssrc := uint32(ctx.SSRC())
	var onFirst func()
	if f.observer != nil {
		bound := time.Now()
		onFirst = func() { f.observer.FirstKeyframe(time.Since(bound)) }
	}
	out := f.router.rtpWriter(ssrc)
	d, err := f.pub.Subscribe(context.Background(), forwarding.DownTrackConfig{
		OnFirstKeyframe: onFirst,
		SSRC:            ssrc,
		PayloadType:     uint8(codec.PayloadType),
		RTXSSRC:         uint32(ctx.SSRCRetransmission()),
		RTXPayloadType:  rtxPT,
		Writer:          out,
		RTCP:            f.router.Writer(ssrc),
		Logger:          f.log,
	})
	if err != nil {
		f.router.forget(ssrc, out)
		return webrtc.RTPCodecParameters{}, fmt.Errorf("sfu: subscribe: %w", err)
	}
	f.mu.Lock()
	f.downs[ctx.ID()] = d
	f.outs[ctx.ID()] = out
	f.bySSRC[ssrc] = d
	f.mu.Unlock()
	return codec, nil
}

// Unbind implements webrtc.TrackLocal.
func (f *forwardTrack) Unbind(ctx webrtc.TrackLocalContext) error {
	f.mu.Lock()
	d, out := f.downs[ctx.ID()], f.outs[ctx.ID()]
	delete(f.downs, ctx.ID())
	delete(f.outs, ctx.ID())
	if d != nil {
		delete(f.bySSRC, d.SSRC())
	}
	f.mu.Unlock()
	if out != nil {
		// A write still waiting for pion must not hold up Close.
		f.router.forget(d.SSRC(), out)
	}
	if d != nil {
		err := d.Close()
		f.stats.retire(d.Stats())
		return err
	}
	return nil
}

// abortWrites unblocks the down-tracks' writes that still wait for pion to
// bind their stream. It runs before the publication closes: pion does not
// always unbind a track it never connected (a peer connection closed
// between Bind and the start of its sender), and a writer left waiting
// would hold the publication's teardown, and the room's, for ever.
func (f *forwardTrack) abortWrites() {
	type pending struct {
		ssrc uint32
		out  *streamWriter
	}
	f.mu.Lock()
	ps := make([]pending, 0, len(f.outs))
	for id, out := range f.outs {
		if d := f.downs[id]; d != nil {
			ps = append(ps, pending{d.SSRC(), out})
		}
	}
	f.mu.Unlock()
	for _, p := range ps {
		f.router.forget(p.ssrc, p.out)
	}
}

// handleRTCP routes a subscriber's feedback (PLI, FIR, NACK) to the
// down-track it is about.
func (f *forwardTrack) handleRTCP(pkts []rtcp.Packet) {
	for _, p := range pkts {
		for _, ssrc := range p.DestinationSSRC() {
			f.mu.Lock()
			d := f.bySSRC[ssrc]
			f.mu.Unlock()
			if d != nil {
				d.HandleRTCP([]rtcp.Packet{p})
				break
			}
		}
	}
}

// downTracks returns the current down-tracks.
func (f *forwardTrack) downTracks() []*forwarding.DownTrack {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]*forwarding.DownTrack, 0, len(f.downs))
	for _, d := range f.downs {
		out = append(out, d)
	}
	return out
}

func (f *forwardTrack) ID() string                { return f.id }
func (f *forwardTrack) RID() string               { return "" }
func (f *forwardTrack) StreamID() string          { return f.streamID }
func (f *forwardTrack) Kind() webrtc.RTPCodecType { return f.kind }

// Codec makes a forwardTrack an rtcio.CodecTrack: a subscriber is offered
// only the publisher's codec (and its RTX), the one codec it can receive
// this track in.
func (f *forwardTrack) Codec() webrtc.RTPCodecCapability { return f.codec.RTPCodecCapability }

// matchCodec finds the subscriber's codec for the publisher's: same mime
// type and, for H.264, the same packetization mode and profile; plus the
// RTX payload type tied to it, if any.
func matchCodec(want webrtc.RTPCodecParameters, offered []webrtc.RTPCodecParameters) (webrtc.RTPCodecParameters, uint8, bool) {
	var best webrtc.RTPCodecParameters
	found := false
	for _, c := range offered {
		if !strings.EqualFold(c.MimeType, want.MimeType) || c.ClockRate != want.ClockRate {
			continue
		}
		if strings.EqualFold(want.MimeType, webrtc.MimeTypeH264) && !sameH264(c.SDPFmtpLine, want.SDPFmtpLine) {
			if !found {
				best, found = c, true // fall back to any H.264 if no exact match
			}
			continue
		}
		best, found = c, true
		break
	}
	if !found {
		return best, 0, false
	}
	apt := fmt.Sprintf("apt=%d", best.PayloadType)
	for _, c := range offered {
		if strings.EqualFold(c.MimeType, webrtc.MimeTypeRTX) && strings.Contains(c.SDPFmtpLine, apt) {
			return best, uint8(c.PayloadType), true
		}
	}
	return best, 0, true
}

func sameH264(a, b string) bool {
	return fmtpValue(a, "packetization-mode") == fmtpValue(b, "packetization-mode") &&
		strings.EqualFold(fmtpValue(a, "profile-level-id"), fmtpValue(b, "profile-level-id"))
}

func fmtpValue(line, key string) string {
	for _, part := range strings.Split(line, ";") {
		if k, v, ok := strings.Cut(strings.TrimSpace(part), "="); ok && k == key {
			return v
		}
	}
	return ""
}
