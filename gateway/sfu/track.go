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
	binder   *Binder
	log      *slog.Logger
	observer Observer
	stats    trackStats
	// feedback, when set, also gets each subscriber's RTCP about its
	// down-track, with the subscriber's connection (bandwidth adaptation).
	feedback func(pc string, ssrc uint32, pkts []rtcp.Packet)

	mu    sync.Mutex
	downs map[string]*binding // by sender id (TrackLocalContext.ID)
}

// binding is one subscriber's down-track and the sender it is bound to.
type binding struct {
	down   *forwarding.DownTrack
	sender *senderBinding
}

func newForwardTrack(pub *forwarding.Publication, codec webrtc.RTPCodecParameters, id, streamID string, kind webrtc.RTPCodecType, binder *Binder, observer Observer, log *slog.Logger) *forwardTrack {
	f := &forwardTrack{
		pub: pub, codec: codec, id: id, streamID: streamID, kind: kind, binder: binder, observer: observer, log: log,
		downs: make(map[string]*binding),
	}
	f.observe(observer)
	return f
}

// Bind implements webrtc.TrackLocal: it picks the subscriber's payload type
// for the publisher's codec (no transcoding: a subscriber that cannot take
// the codec does not get the track) and subscribes a down-track, joined to
// its sender's peer connection by the binder (never by SSRC).
func (f *forwardTrack) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	codec, rtxPT, ok := matchCodec(f.codec, ctx.CodecParameters())
	if !ok {
		return webrtc.RTPCodecParameters{}, fmt.Errorf("sfu: subscriber did not negotiate %s", f.codec.MimeType)
	}
	sb, err := f.binder.bind(ctx)
	if err != nil {
		return webrtc.RTPCodecParameters{}, err
	}
	ssrc := uint32(ctx.SSRC())
	var onFirst func()
	if f.observer != nil {
		bound := time.Now()
		onFirst = func() { f.observer.FirstKeyframe(time.Since(bound)) }
	}
	d, err := f.pub.Subscribe(context.Background(), forwarding.DownTrackConfig{
		OnFirstKeyframe: onFirst,
		SSRC:            ssrc,
		PayloadType:     uint8(codec.PayloadType),
		RTXSSRC:         uint32(ctx.SSRCRetransmission()),
		RTXPayloadType:  rtxPT,
		Writer:          sb.rtp,
		RTCP:            sb.rtcp,
		Group:           sb.writers,
		Logger:          f.log,
	})
	if err != nil {
		sb.release()
		return webrtc.RTPCodecParameters{}, fmt.Errorf("sfu: subscribe: %w", err)
	}
	deliver := d.HandleRTCP
	if fb := f.feedback; fb != nil {
		pc := sb.conn.pc
		deliver = func(pkts []rtcp.Packet) {
			d.HandleRTCP(pkts)
			fb(pc, ssrc, pkts)
		}
	}
	sb.deliver(ssrc, deliver)
	f.mu.Lock()
	f.downs[ctx.ID()] = &binding{down: d, sender: sb}
	f.mu.Unlock()
	return codec, nil
}

// Unbind implements webrtc.TrackLocal.
func (f *forwardTrack) Unbind(ctx webrtc.TrackLocalContext) error {
	f.mu.Lock()
	b := f.downs[ctx.ID()]
	delete(f.downs, ctx.ID())
	f.mu.Unlock()
	if b == nil {
		return nil
	}
	// A write still waiting for pion must not hold up Close.
	b.sender.release()
	err := b.down.Close()
	f.stats.retire(b.down.Stats())
	return err
}

// abortWrites unblocks the down-tracks' writes that still wait for pion to
// bind their stream. It runs before the publication closes: pion does not
// always unbind a track it never connected (a peer connection closed
// between Bind and the start of its sender), and a writer left waiting
// would hold the publication's teardown, and the room's, for ever.
func (f *forwardTrack) abortWrites() {
	f.mu.Lock()
	senders := make([]*senderBinding, 0, len(f.downs))
	for _, b := range f.downs {
		senders = append(senders, b.sender)
	}
	f.mu.Unlock()
	for _, sb := range senders {
		sb.release()
	}
}

// subscriptions returns the current bindings.
func (f *forwardTrack) subscriptions() []*binding {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]*binding, 0, len(f.downs))
	for _, b := range f.downs {
		out = append(out, b)
	}
	return out
}

// downTracks returns the current down-tracks.
func (f *forwardTrack) downTracks() []*forwarding.DownTrack {
	subs := f.subscriptions()
	out := make([]*forwarding.DownTrack, len(subs))
	for i, b := range subs {
		out[i] = b.down
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
