package sfu

import (
	"context"
	"errors"
	"io"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"

	"github.com/rtcio-gateway/rtcio-gateway/forwarding"
)

// inbound is one track a client publishes: its publication in the
// forwarding plane, the loops that feed it, and the TrackLocal that carries
// it to subscribers.
type inbound struct {
	track    *webrtc.TrackRemote
	receiver *webrtc.RTPReceiver
	// pub is the publication the track feeds: its own, or, after the
	// publisher reconnected, the one its previous connection fed (adopt).
	pub atomic.Pointer[forwarding.Publication]
	up  *upstream
	// fwd is the track that forwards it to the subscribers.
	fwd *forwardTrack
	// lastPacket is the unix-nano time of the last RTP packet, so the room
	// can tell a publisher whose media stopped from one that merely lost
	// its signaling connection.
	lastPacket atomic.Int64
	// superseded is set when a newer connection of the same publisher
	// took this track's publication over: its packets no longer count.
	superseded atomic.Bool
	done       chan struct{}
}

// upstream sends a publication's keyframe requests and NACKs to the
// publisher over the transport the track arrives on; the transport changes
// when a reconnected publisher's new track adopts the publication.
type upstream struct {
	transport atomic.Pointer[webrtc.DTLSTransport]
}

func newUpstream(t *webrtc.DTLSTransport) *upstream {
	u := &upstream{}
	u.transport.Store(t)
	return u
}

func (u *upstream) RequestKeyframe(ssrc uint32) error {
	_, err := u.transport.Load().WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: ssrc}})
	return err
}

func (u *upstream) SendNack(ssrc uint32, seqs []uint16) error {
	_, err := u.transport.Load().WriteRTCP([]rtcp.Packet{&rtcp.TransportLayerNack{MediaSSRC: ssrc, Nacks: rtcp.NackPairsFromSequenceNumbers(seqs)}})
	return err
}

// startInbound creates the publication of a received track and starts its
// read loops; they end when the track ends or ctx is cancelled.
func (r *Room) startInbound(ctx context.Context, key streamKey, track *webrtc.TrackRemote, receiver *webrtc.RTPReceiver) (*inbound, error) {
	codec := track.Codec()
	up := newUpstream(receiver.Transport())
	pub, err := forwarding.NewPublication(ctx, forwarding.PublicationConfig{
		Codec:     forwarding.Codec{MimeType: codec.MimeType, ClockRate: codec.ClockRate, PayloadType: uint8(codec.PayloadType)},
		Keyframes: up,
		Nacks:     up,
		Logger:    r.log,
	})
	if err != nil {
		return nil, err
	}
	in := &inbound{track: track, receiver: receiver, up: up, done: make(chan struct{})}
	in.pub.Store(pub)
	in.lastPacket.Store(time.Now().UnixNano())
	in.fwd = newForwardTrack(pub, codec, track.ID(), track.StreamID(), track.Kind(), r.cfg.Binder, r.cfg.Observer, r.log)
	if r.adapt != nil {
		in.fwd.feedback = r.adapt.feedback
	}
	levels, onLevel := r.levelsFor(key, track, receiver)
	r.loops.Add(2)
	go func() {
		defer r.loops.Done()
		defer close(in.done)
		buf := make([]byte, 1500)
		for {
			n, _, err := track.Read(buf)
			if err != nil {
				if n == 0 || errors.Is(err, io.EOF) {
					return
				}
				// A packet pion could read but not accept (a payload type
				// the session never negotiated, a truncated header): it is
				// the sender's packet that is bad, not the track, so it is
				// dropped and the track goes on.
				r.dropped(DropUnknownPayload)
				r.badPacketLog.Do(func(suppressed int) {
					r.log.Warn("sfu: dropped a packet the track cannot carry", "track", track.ID(), "err", err, "suppressed", suppressed)
				})
				continue
			}
			in.lastPacket.Store(time.Now().UnixNano())
			if in.superseded.Load() {
				continue
			}
			if levels != nil {
				if level, ok := levels.level(buf[:n]); ok {
					onLevel(level)
				}
			}
			if err := in.pub.Load().WriteRaw(buf[:n]); err != nil && !errors.Is(err, forwarding.ErrClosed) {
				r.log.Debug("sfu: dropped upstream packet", "track", track.ID(), "err", err)
			}
		}
	}()
	go func() {
		defer r.loops.Done()
		for {
			pkts, _, err := receiver.ReadRTCP()
			if err != nil {
				return
			}
			for _, p := range pkts {
				if sr, ok := p.(*rtcp.SenderReport); ok {
					in.pub.Load().HandleSenderReport(sr)
				}
			}
		}
	}()
	// The first subscriber of a video track wants a keyframe at once.
	pub.RequestKeyframe()
	return in, nil
}

// idleFor reports how long the track has gone without a packet.
func (in *inbound) idleFor(now time.Time) time.Duration {
	return now.Sub(time.Unix(0, in.lastPacket.Load()))
}

func (in *inbound) close() {
	in.fwd.abortWrites()
	_ = in.pub.Load().Close()
	in.fwd.stats.finish()
}

// adopt makes this track, which a reconnected publisher sends, feed the
// publication (and so the subscribers' down-tracks) that old fed: the
// forwarding plane sees a new SSRC on the same publication and keeps every
// down-track continuous, without renegotiating with the subscribers.
func (in *inbound) adopt(old *inbound) {
	own := in.pub.Load()
	in.fwd.stats.finish()
	oldPub := old.pub.Load()
	old.up.transport.Store(in.receiver.Transport())
	in.up = old.up
	in.fwd = old.fwd
	in.pub.Store(oldPub)
	_ = own.Close()
	oldPub.RequestKeyframe()
}
