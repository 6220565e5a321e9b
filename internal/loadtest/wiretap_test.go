package loadtest

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"

	"github.com/rtcio-gateway/rtcio-gateway/rtcio"
)

// keyframeTap is the UDP socket of a publisher's ICE (through pion's UDP
// mux) that notes when keyframe requests arrive, as the kernel saw them
// where it can (SO_TIMESTAMPNS). A request's arrival as the publisher's
// RTCP callback sees it (Result.KeyframeRequests) comes after several
// goroutine hand-offs in the load generator, which with 60 peer
// connections under -race on two cores lag by 100 ms and more during a
// join burst: too much to judge a 600 ms throttle against a 500 ms bound.
// The kernel's receive time on loopback is the gateway's send time.
//
// SRTCP leaves a compound packet's first 8 bytes (the first RTCP header
// and sender SSRC) in the clear, and the gateway sends each PLI in a
// compound of its own, so the tap recognises PLI and FIR without the keys.
type keyframeTap struct {
	conn *net.UDPConn
	// kernel is whether receive times come from the kernel (else from the
	// clock as the read returns).
	kernel bool
	oob    []byte // used by the mux's one read goroutine only

	mu sync.Mutex
	at []int64 // Unix ns
}

// listenKeyframeTap opens a tap on a loopback port.
func listenKeyframeTap() (*keyframeTap, error) {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	return &keyframeTap{conn: c, kernel: enableRxTimestamps(c) == nil, oob: make([]byte, 128)}, nil
}

// isKeyframeRequest reports whether an SRTCP packet starts with a PLI or
// FIR: version 2, payload type 206 (payload-specific feedback), format 1
// (PLI) or 4 (FIR). RTP cannot look like it: WebRTC keeps RTP payload
// types out of 64-95, so a marker bit never makes byte 1 read 206, and
// the publisher receives no RTP anyway.
func isKeyframeRequest(b []byte) bool {
	if len(b) < 8 || b[0]>>6 != 2 || b[1] != 206 {
		return false
	}
	format := b[0] & 0x1f
	return format == 1 || format == 4
}

// ReadFrom implements net.PacketConn. It is deliberately the only read
// method (no ReadFromAddrPort), so the mux reads through it.
func (t *keyframeTap) ReadFrom(b []byte) (int, net.Addr, error) {
	n, oobn, _, addr, err := t.conn.ReadMsgUDP(b, t.oob)
	if err != nil {
		return n, nil, err
	}
	if isKeyframeRequest(b[:n]) {
		at, ok := rxTimestamp(t.oob[:oobn])
		if !ok {
			at = time.Now().UnixNano()
		}
		t.mu.Lock()
		t.at = append(t.at, at)
		t.mu.Unlock()
	}
	return n, addr, nil
}

// WriteTo implements net.PacketConn.
func (t *keyframeTap) WriteTo(b []byte, addr net.Addr) (int, error) { return t.conn.WriteTo(b, addr) }

// Close implements net.PacketConn.
func (t *keyframeTap) Close() error { return t.conn.Close() }

// LocalAddr implements net.PacketConn.
func (t *keyframeTap) LocalAddr() net.Addr { return t.conn.LocalAddr() }

// SetDeadline implements net.PacketConn.
func (t *keyframeTap) SetDeadline(d time.Time) error { return t.conn.SetDeadline(d) }

// SetReadDeadline implements net.PacketConn.
func (t *keyframeTap) SetReadDeadline(d time.Time) error { return t.conn.SetReadDeadline(d) }

// SetWriteDeadline implements net.PacketConn.
func (t *keyframeTap) SetWriteDeadline(d time.Time) error { return t.conn.SetWriteDeadline(d) }

// times copies the arrival times so far.
func (t *keyframeTap) times() []int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]int64(nil), t.at...)
}

// tappedTarget joins publishers through a peer connection API whose ICE
// runs on a keyframe tap, everyone else as GatewayTarget does.
type tappedTarget struct {
	*GatewayTarget
	publisher *webrtc.API
}

// Join implements Target.
func (t *tappedTarget) Join(ctx context.Context, p *Participant) (Conn, error) {
	if len(p.Tracks) == 0 {
		return t.GatewayTarget.Join(ctx, p)
	}
	g := *t.GatewayTarget
	g.API = t.publisher
	return g.Join(ctx, p)
}

// newTappedTarget puts the publishers of g on a keyframe tap; close stops
// the tap's mux (after the run closed every peer connection).
func newTappedTarget(g *GatewayTarget) (target *tappedTarget, tap *keyframeTap, close func(), err error) {
	tap, err = listenKeyframeTap()
	if err != nil {
		return nil, nil, nil, err
	}
	mux := webrtc.NewICEUDPMux(nil, tap)
	api, err := rtcio.LoopbackAPI(func(se *webrtc.SettingEngine) { se.SetICEUDPMux(mux) })
	if err != nil {
		_ = mux.Close()
		return nil, nil, nil, err
	}
	return &tappedTarget{GatewayTarget: g, publisher: api}, tap, func() { _ = mux.Close() }, nil
}

// The tap must tell keyframe requests from the other RTCP a publisher
// gets, from the first packet's header alone, as SRTCP leaves it.
func TestIsKeyframeRequest(t *testing.T) {
	for _, c := range []struct {
		name string
		pkts []rtcp.Packet
		want bool
	}{
		{"PLI", []rtcp.Packet{&rtcp.PictureLossIndication{SenderSSRC: 1, MediaSSRC: 2}}, true},
		{"FIR", []rtcp.Packet{&rtcp.FullIntraRequest{SenderSSRC: 1, MediaSSRC: 2, FIR: []rtcp.FIREntry{{SSRC: 2}}}}, true},
		{"receiver report", []rtcp.Packet{&rtcp.ReceiverReport{SSRC: 1}}, false},
		{"NACK", []rtcp.Packet{&rtcp.TransportLayerNack{SenderSSRC: 1, MediaSSRC: 2, Nacks: []rtcp.NackPair{{PacketID: 5}}}}, false},
		{"REMB", []rtcp.Packet{&rtcp.ReceiverEstimatedMaximumBitrate{Bitrate: 1e6, SSRCs: []uint32{2}}}, false},
		{"transport-cc", []rtcp.Packet{&rtcp.TransportLayerCC{SenderSSRC: 1, MediaSSRC: 2}}, false},
	} {
		b, err := rtcp.Marshal(c.pkts)
		if err != nil {
			t.Fatal(err)
		}
		if got := isKeyframeRequest(b); got != c.want {
			t.Errorf("%s: isKeyframeRequest %v, want %v", c.name, got, c.want)
		}
	}
	if isKeyframeRequest([]byte{0x16, 0xfe, 0xfd, 0, 0, 0, 0, 0}) {
		t.Error("a DTLS record taken for a keyframe request")
	}
}
