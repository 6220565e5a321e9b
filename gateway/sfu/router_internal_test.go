package sfu

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/rtcio-gateway/rtcio-gateway/forwarding"
)

// TestRouterSameSSRCOnTwoConnections forces what random SSRCs make rare:
// two peer connections whose senders use the same SSRC, each carrying a
// different publication. pion cannot be told which SSRC to pick, so the
// test plays pion's part of the contract with the router's real
// interceptors, exactly in pion's order (RTCP writer, per sender its RTCP
// reader, Bind with a TrackLocalContext carrying the sender id and that
// reader, then the local stream with the same id). Each connection must
// get only its own publication's RTP and sender reports, and a NACK read
// on one connection must be answered on that connection only.
func TestRouterSameSSRCOnTwoConnections(t *testing.T) {
	const ssrc = 0x1234
	router := NewBinder()
	opus := webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, PayloadType: 111}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	type conn struct {
		icpt  interceptor.Interceptor
		rtpW  *rtpLog
		rtcpW *rtcpLog
		fb    *feedback
		pub   *forwarding.Publication
		track *forwardTrack
		tctx  *fakeContext
		tag   []byte
		sent  int
	}
	conns := []*conn{{tag: []byte("room-A"), sent: 5}, {tag: []byte("room-B"), sent: 9}}
	for i, c := range conns {
		icpt, err := router.NewInterceptor(fmt.Sprint("pc", i))
		if err != nil {
			t.Fatal(err)
		}
		c.icpt, c.rtpW, c.rtcpW, c.fb = icpt, newRTPLog(), newRTCPLog(), newFeedback()
		icpt.BindRTCPWriter(c.rtcpW)
		reader := icpt.BindRTCPReader(c.fb)
		c.pub, err = forwarding.NewPublication(ctx, forwarding.PublicationConfig{Codec: forwarding.Codec{MimeType: opus.MimeType, ClockRate: opus.ClockRate, PayloadType: 111}})
		if err != nil {
			t.Fatal(err)
		}
		c.track = newForwardTrack(c.pub, opus, "audio", "stream", webrtc.RTPCodecTypeAudio, router, nil, nil)
		c.tctx = &fakeContext{id: fmt.Sprint("sender-", i), ssrc: ssrc, codecs: []webrtc.RTPCodecParameters{opus}, reader: reader}
		if _, err := c.track.Bind(c.tctx); err != nil {
			t.Fatalf("bind %d: %v", i, err)
		}
		icpt.BindLocalStream(&interceptor.StreamInfo{ID: c.tctx.id, SSRC: ssrc}, c.rtpW)
	}
	defer func() {
		for _, c := range conns {
			_ = c.track.Unbind(c.tctx)
			_ = c.pub.Close()
			_ = c.icpt.Close()
		}
	}()

	for _, c := range conns {
		for n := range c.sent {
			pkt := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: uint16(100 + n), Timestamp: uint32(960 * n), SSRC: 0xabc}, Payload: c.tag}
			if err := c.pub.WriteRTP(pkt); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i, c := range conns {
		got := c.rtpW.wait(t, c.sent)
		for _, p := range got {
			if !bytes.Equal(p.payload, c.tag) || p.ssrc != ssrc {
				t.Fatalf("connection %d got payload %q on SSRC %#x, want only its own %q", i, p.payload, p.ssrc, c.tag)
			}
		}
	}

	// A NACK the subscriber of connection 0 sends is answered there, and
	// only there.
	first := conns[0].rtpW.wait(t, conns[0].sent)[0]
	conns[0].fb.push(t, &rtcp.TransportLayerNack{MediaSSRC: ssrc, Nacks: []rtcp.NackPair{{PacketID: first.seq}}})
	// rtc.io's peer reads every sender's RTCP; here the test does.
	if _, _, err := conns[0].tctx.reader.Read(make([]byte, 1500), nil); err != nil {
		t.Fatal(err)
	}
	rtx := conns[0].rtpW.wait(t, conns[0].sent+1)[conns[0].sent]
	if rtx.seq != first.seq || !bytes.Equal(rtx.payload, conns[0].tag) {
		t.Fatalf("retransmission seq %d payload %q, want seq %d %q", rtx.seq, rtx.payload, first.seq, conns[0].tag)
	}

	// Sender reports: each connection's count only its own packets.
	for i, c := range conns {
		sr := c.rtcpW.waitSR(t)
		if sr.SSRC != ssrc || sr.PacketCount != uint32(c.sent) {
			t.Fatalf("connection %d sender report SSRC %#x packets %d, want %#x and its own %d", i, sr.SSRC, sr.PacketCount, uint32(ssrc), c.sent)
		}
	}
	if n := len(conns[1].rtpW.snapshot()); n != conns[1].sent {
		t.Fatalf("connection 1 wrote %d packets, want its own %d (no retransmission of the other's NACK)", n, conns[1].sent)
	}
}

type fakeContext struct {
	id     string
	ssrc   webrtc.SSRC
	codecs []webrtc.RTPCodecParameters
	reader interceptor.RTCPReader
}

func (c *fakeContext) CodecParameters() []webrtc.RTPCodecParameters { return c.codecs }
func (c *fakeContext) HeaderExtensions() []webrtc.RTPHeaderExtensionParameter {
	return nil
}
func (c *fakeContext) SSRC() webrtc.SSRC                       { return c.ssrc }
func (c *fakeContext) SSRCRetransmission() webrtc.SSRC         { return 0 }
func (c *fakeContext) SSRCForwardErrorCorrection() webrtc.SSRC { return 0 }
func (c *fakeContext) WriteStream() webrtc.TrackLocalWriter    { return nil }
func (c *fakeContext) ID() string                              { return c.id }
func (c *fakeContext) RTCPReader() interceptor.RTCPReader      { return c.reader }

type written struct {
	ssrc    uint32
	seq     uint16
	payload []byte
}

// rtpLog is the RTP writer pion would connect a sender's stream to.
type rtpLog struct {
	mu      sync.Mutex
	pkts    []written
	changed chan struct{}
}

func newRTPLog() *rtpLog { return &rtpLog{changed: make(chan struct{})} }

func (l *rtpLog) Write(h *rtp.Header, payload []byte, _ interceptor.Attributes) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pkts = append(l.pkts, written{ssrc: h.SSRC, seq: h.SequenceNumber, payload: bytes.Clone(payload)})
	close(l.changed)
	l.changed = make(chan struct{})
	return len(payload), nil
}

func (l *rtpLog) snapshot() []written {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]written(nil), l.pkts...)
}

func (l *rtpLog) wait(t *testing.T, n int) []written {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		l.mu.Lock()
		got, changed := append([]written(nil), l.pkts...), l.changed
		l.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("%d RTP packets written, want %d", len(got), n)
		}
	}
}

// rtcpLog is a peer connection's RTCP writer.
type rtcpLog struct {
	mu  sync.Mutex
	srs chan *rtcp.SenderReport
}

func newRTCPLog() *rtcpLog { return &rtcpLog{srs: make(chan *rtcp.SenderReport, 64)} }

func (l *rtcpLog) Write(pkts []rtcp.Packet, _ interceptor.Attributes) (int, error) {
	for _, p := range pkts {
		if sr, ok := p.(*rtcp.SenderReport); ok {
			select {
			case l.srs <- sr:
			default:
			}
		}
	}
	return 0, nil
}

func (l *rtcpLog) waitSR(t *testing.T) *rtcp.SenderReport {
	t.Helper()
	select {
	case sr := <-l.srs:
		return sr
	case <-time.After(10 * time.Second):
		t.Fatal("no sender report")
		return nil
	}
}

// feedback is the RTCP a subscriber sends about one sender, as pion's
// SRTCP stream of that sender would deliver it.
type feedback struct{ in chan []byte }

func newFeedback() *feedback { return &feedback{in: make(chan []byte, 4)} }

func (f *feedback) push(t *testing.T, p rtcp.Packet) {
	t.Helper()
	b, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	f.in <- b
}

func (f *feedback) Read(b []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
	return copy(b, <-f.in), a, nil
}

func TestWholeCopies(t *testing.T) {
	for _, c := range []struct {
		kinds map[string]int
		want  bool
	}{
		{map[string]int{"audio": 2, "video": 2}, true},
		{map[string]int{"audio": 3, "video": 3}, true},
		{map[string]int{"audio": 1, "video": 1}, false},
		{map[string]int{"audio": 1, "video": 2}, false},
		{map[string]int{"video": 2}, false},
		{nil, false},
	} {
		if got := wholeCopies(c.kinds); got != c.want {
			t.Errorf("wholeCopies(%v) = %v, want %v", c.kinds, got, c.want)
		}
	}
}
