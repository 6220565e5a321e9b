package forwarding_test

// This file wires forwarding to real pion peer connections on loopback, the
// way the gateway does: pion/webrtc is a test-only dependency here; the
// package itself never imports it.

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/rtcio-gateway/rtcio-gateway/forwarding"
)

// newAPI builds a loopback-only pion API with VP8 and RTX. withNack adds
// pion's NACK generator/responder (for the endpoints; the gateway side uses
// forwarding's own).
func newAPI(t *testing.T, withNack bool) *webrtc.API {
	t.Helper()
	m := &webrtc.MediaEngine{}
	fb := []webrtc.RTCPFeedback{{Type: "nack"}, {Type: "nack", Parameter: "pli"}}
	for _, c := range []webrtc.RTPCodecParameters{
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000, RTCPFeedback: fb}, PayloadType: 96},
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeRTX, ClockRate: 90000, SDPFmtpLine: "apt=96"}, PayloadType: 97},
	} {
		if err := m.RegisterCodec(c, webrtc.RTPCodecTypeVideo); err != nil {
			t.Fatal(err)
		}
	}
	reg := &interceptor.Registry{}
	if withNack {
		if err := webrtc.ConfigureNack(m, reg); err != nil {
			t.Fatal(err)
		}
	}
	s := webrtc.SettingEngine{}
	s.SetIncludeLoopbackCandidate(true)
	s.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	s.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	s.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(reg), webrtc.WithSettingEngine(s))
}

func newPC(t *testing.T, api *webrtc.API) *webrtc.PeerConnection {
	t.Helper()
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	return pc
}

// connect runs a non-trickle offer/answer between two peer connections.
func connect(t *testing.T, offerer, answerer *webrtc.PeerConnection) {
	t.Helper()
	offer, err := offerer.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	done := webrtc.GatheringCompletePromise(offerer)
	if err := offerer.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	<-done
	if err := answerer.SetRemoteDescription(*offerer.LocalDescription()); err != nil {
		t.Fatal(err)
	}
	answer, err := answerer.CreateAnswer(nil)
	if err != nil {
		t.Fatal(err)
	}
	done = webrtc.GatheringCompletePromise(answerer)
	if err := answerer.SetLocalDescription(answer); err != nil {
		t.Fatal(err)
	}
	<-done
	if err := offerer.SetRemoteDescription(*answerer.LocalDescription()); err != nil {
		t.Fatal(err)
	}
}

// lossyWriter drops a share of the packets on their way to the subscriber,
// retransmissions included, as a lossy link would.
type lossyWriter struct {
	w       forwarding.RTPWriter
	mu      sync.Mutex
	rng     *rand.Rand
	rate    float64
	dropped atomic.Int64
}

func (l *lossyWriter) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	l.mu.Lock()
	drop := l.rng.Float64() < l.rate
	l.mu.Unlock()
	if drop {
		l.dropped.Add(1)
		return len(payload), nil
	}
	return l.w.WriteRTP(h, payload)
}

// forwardedTrack is the gateway's adapter: a pion TrackLocal whose binding
// becomes a forwarding down-track.
type forwardedTrack struct {
	pub      *forwarding.Publication
	pc       *webrtc.PeerConnection
	lossRate float64
	lossy    *lossyWriter
	bound    chan *forwarding.DownTrack
	down     *forwarding.DownTrack
}

func (f *forwardedTrack) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	var codec webrtc.RTPCodecParameters
	var rtxPT uint8
	for _, c := range ctx.CodecParameters() {
		switch {
		case strings.EqualFold(c.MimeType, webrtc.MimeTypeVP8):
			codec = c
		case strings.EqualFold(c.MimeType, webrtc.MimeTypeRTX) && c.SDPFmtpLine == "apt=96":
			rtxPT = uint8(c.PayloadType)
		}
	}
	if codec.MimeType == "" {
		return codec, errors.New("VP8 not negotiated")
	}
	f.lossy = &lossyWriter{w: ctx.WriteStream(), rng: rand.New(rand.NewPCG(1, 2)), rate: f.lossRate}
	d, err := f.pub.Subscribe(context.Background(), forwarding.DownTrackConfig{
		SSRC:           uint32(ctx.SSRC()),
		PayloadType:    uint8(codec.PayloadType),
		RTXSSRC:        uint32(ctx.SSRCRetransmission()),
		RTXPayloadType: rtxPT,
		Writer:         f.lossy,
		RTCP:           f.pc,
	})
	if err != nil {
		return codec, err
	}
	f.down = d
	f.bound <- d
	return codec, nil
}

func (f *forwardedTrack) Unbind(webrtc.TrackLocalContext) error {
	if f.down != nil {
		return f.down.Close()
	}
	return nil
}

func (f *forwardedTrack) ID() string                { return "video" }
func (f *forwardedTrack) RID() string               { return "" }
func (f *forwardedTrack) StreamID() string          { return "stream" }
func (f *forwardedTrack) Kind() webrtc.RTPCodecType { return webrtc.RTPCodecTypeVideo }

// upstreamRTCP sends the publication's keyframe requests and NACKs on the
// gateway's receiving peer connection.
type upstreamRTCP struct{ pc *webrtc.PeerConnection }

func (u upstreamRTCP) RequestKeyframe(ssrc uint32) error {
	return u.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: ssrc}})
}

func (u upstreamRTCP) SendNack(ssrc uint32, seqs []uint16) error {
	return u.pc.WriteRTCP([]rtcp.Packet{&rtcp.TransportLayerNack{MediaSSRC: ssrc, Nacks: rtcp.NackPairsFromSequenceNumbers(seqs)}})
}

// With real pion peers on both sides and 5% loss injected between the
// gateway and the subscriber, NACKs answered by RTX from the publication's
// history recover at least 99% of the packets (issue acceptance 6, at the
// forwarding level).
func TestPionLossRecoveryThroughRTX(t *testing.T) {
	endpointAPI, gatewayAPI := newAPI(t, true), newAPI(t, false)
	pubPC, gwIn := newPC(t, endpointAPI), newPC(t, gatewayAPI)
	gwOut, subPC := newPC(t, gatewayAPI), newPC(t, endpointAPI)

	src, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "video", "stream")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pubPC.AddTrack(src); err != nil {
		t.Fatal(err)
	}
	if _, err := gwIn.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	var readers sync.WaitGroup
	t.Cleanup(func() {
		// Closing the peer connections ends the read loops.
		cancel()
		for _, pc := range []*webrtc.PeerConnection{pubPC, gwIn, gwOut, subPC} {
			_ = pc.Close()
		}
		readers.Wait()
	})

	pubs := make(chan *forwarding.Publication, 1)
	gwIn.OnTrack(func(track *webrtc.TrackRemote, recv *webrtc.RTPReceiver) {
		codec := track.Codec()
		p, err := forwarding.NewPublication(ctx, forwarding.PublicationConfig{
			Codec:     forwarding.Codec{MimeType: codec.MimeType, ClockRate: codec.ClockRate, PayloadType: uint8(codec.PayloadType)},
			Keyframes: upstreamRTCP{gwIn},
			Nacks:     upstreamRTCP{gwIn},
		})
		if err != nil {
			t.Error(err)
			return
		}
		readers.Add(2)
		go func() { // the gateway's read loop
			defer readers.Done()
			defer p.Close()
			buf := make([]byte, 1500)
			for {
				n, _, err := track.Read(buf)
				if err != nil {
					return
				}
				_ = p.WriteRaw(buf[:n])
			}
		}()
		go func() {
			defer readers.Done()
			for {
				pkts, _, err := recv.ReadRTCP()
				if err != nil {
					return
				}
				for _, pk := range pkts {
					if sr, ok := pk.(*rtcp.SenderReport); ok {
						p.HandleSenderReport(sr)
					}
				}
			}
		}()
		pubs <- p
	})
	connect(t, pubPC, gwIn)

	// Send until the gateway has a publication.
	const total = 1500
	payload := make([]byte, 900)
	payload[0] = 0x10 // VP8 descriptor: start of partition 0
	// The payload carries the upstream sequence number, so the subscriber
	// can tell which upstream packets it got whatever the rewriting.
	send := func(seq uint16) {
		pl := append([]byte(nil), payload...)
		pl[1], pl[2] = byte(seq>>8), byte(seq)
		if err := src.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: uint32(seq/4) * 3000}, Payload: pl}); err != nil {
			t.Fatal(err)
		}
	}
	pace := time.NewTicker(2 * time.Millisecond)
	defer pace.Stop()
	var pub *forwarding.Publication
	for seq := uint16(0); pub == nil; seq++ {
		select {
		case pub = <-pubs:
		case <-pace.C:
			send(seq)
		}
	}

	fwd := &forwardedTrack{pub: pub, pc: gwOut, lossRate: 0.05, bound: make(chan *forwarding.DownTrack, 1)}
	sender, err := gwOut.AddTrack(fwd)
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu       sync.Mutex
		received = map[uint16]bool{}
		changed  = make(chan struct{}, 1)
	)
	subPC.OnTrack(func(track *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				pk, _, err := track.ReadRTP()
				if err != nil {
					return
				}
				if len(pk.Payload) < 3 {
					continue
				}
				if id := uint16(pk.Payload[1])<<8 | uint16(pk.Payload[2]); id >= 10000 {
					mu.Lock()
					received[id] = true
					mu.Unlock()
				}
				select {
				case changed <- struct{}{}:
				default:
				}
			}
		}()
	})
	connect(t, gwOut, subPC)
	down := <-fwd.bound
	readers.Add(1)
	go func() { // the gateway's RTCP loop for the down-track
		defer readers.Done()
		for {
			pkts, _, err := sender.ReadRTCP()
			if err != nil {
				return
			}
			down.HandleRTCP(pkts)
		}
	}()

	// Wait for the subscriber's connection before counting.
	connected := make(chan struct{})
	var once sync.Once
	subPC.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateConnected {
			once.Do(func() { close(connected) })
		}
	})
	if subPC.ConnectionState() == webrtc.PeerConnectionStateConnected {
		once.Do(func() { close(connected) })
	}
	select {
	case <-connected:
	case <-time.After(10 * time.Second):
		t.Fatal("subscriber did not connect")
	}

	for i := 0; i < total; i++ {
		<-pace.C
		send(uint16(10000 + i))
	}
	want := total
	deadline := time.After(10 * time.Second)
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(received) }
	for count() < want*99/100 {
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("subscriber got %d of %d packets; dropped %d, stats %+v",
				count(), want, fwd.lossy.dropped.Load(), down.Stats())
		}
	}
	st := down.Stats()
	if fwd.lossy.dropped.Load() < int64(total)/50 || st.Retransmissions == 0 || st.NacksReceived == 0 {
		t.Fatalf("loss was not exercised: dropped %d, stats %+v", fwd.lossy.dropped.Load(), st)
	}
	t.Logf("sent %d, dropped %d, received %d unique; %s", want, fwd.lossy.dropped.Load(), count(), strconv.Quote(statsLine(st)))
}

func statsLine(s forwarding.DownTrackStats) string {
	return "nacks=" + strconv.FormatUint(s.NacksReceived, 10) +
		" rtx=" + strconv.FormatUint(s.Retransmissions, 10) +
		" misses=" + strconv.FormatUint(s.RetransmitMisses, 10) +
		" srs=" + strconv.FormatUint(s.SenderReports, 10)
}
