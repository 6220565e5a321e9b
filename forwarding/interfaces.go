package forwarding

import (
	"strings"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
)

// The contracts below are owned by this package and kept tiny on purpose: the
// gateway adapts pion's tracks and peer connections to them, so forwarding
// never learns about signaling or pion/webrtc.

// RTPWriter sends one RTP packet to a subscriber. It has the shape of pion's
// webrtc.TrackLocalWriter. header and payload are only valid during the call.
// A down-track calls its writer from a single goroutine.
type RTPWriter interface {
	WriteRTP(header *rtp.Header, payload []byte) (int, error)
}

// RTCPWriter sends RTCP to a subscriber (sender reports). It has the shape of
// pion's PeerConnection.WriteRTCP.
type RTCPWriter interface {
	WriteRTCP(pkts []rtcp.Packet) error
}

// KeyframeRequester asks the publisher for a keyframe, typically by sending a
// PLI for mediaSSRC on the publisher's peer connection. Calls are already
// aggregated and throttled by the publication.
type KeyframeRequester interface {
	RequestKeyframe(mediaSSRC uint32) error
}

// NackSender asks the publisher to retransmit lost packets, typically with a
// generic NACK (RFC 4585) for mediaSSRC. seqs is only valid during the call.
type NackSender interface {
	SendNack(mediaSSRC uint32, seqs []uint16) error
}

// Sink receives a publication's original upstream packets in arrival order,
// for example to record them. pkt and everything it points to are shared with
// other consumers and only valid during the call: a sink must copy what it
// keeps and must not modify the packet. A sink is fed from its own goroutine
// through a bounded queue, so a slow sink loses packets (counted) instead of
// slowing the publication.
type Sink interface {
	WriteRTP(pkt *rtp.Packet) error
	Close() error
}

// SenderReportSink is an optional interface of a Sink: a sink that
// implements it also receives the publisher's RTCP sender reports for the
// current source, to map RTP timestamps to the publisher's wall clock (a
// recorder aligns a stream's audio and video with them). It is called on the
// caller's goroutine of Publication.HandleSenderReport, outside the sink's
// queue: a report may overtake RTP packets still queued for the sink, and the
// sink must return at once (store the report, never block). sr is only valid
// during the call.
type SenderReportSink interface {
	WriteSenderReport(sr *rtcp.SenderReport)
}

// Codec describes the media of a publication.
type Codec struct {
	MimeType    string // e.g. "video/VP8", "audio/opus"
	ClockRate   uint32 // RTP clock rate in Hz
	PayloadType uint8  // the publisher's payload type
}

// IsVideo reports whether the codec is a video codec.
func (c Codec) IsVideo() bool {
	return len(c.MimeType) >= 6 && strings.EqualFold(c.MimeType[:6], "video/")
}
