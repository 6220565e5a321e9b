package forwarding_test

// This file wires forwarding to real pion peer connections on loopback, the
// way the gateway does: pion/webrtc is a test-only dependency here; the
// package itself never imports it.

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"runtime"
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

// pionWait bounds every wait of the pion tests: generous, because CI runs
// them beside every other package's tests on two cores, yet finite, so a
// failure fails instead of hanging until the test binary's timeout.
const pionWait = 30 * time.Second

// recv waits for a value from ch, failing the test after pionWait.
func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	timer := time.NewTimer(pionWait)
	defer timer.Stop()
	select {
	case v := <-ch:
		return v
	case <-timer.C:
		t.Fatalf("no %s within %v", what, pionWait)
		panic("unreachable")
	}
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
	recv(t, done, "complete ICE gathering of the offerer")
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
	recv(t, done, "complete ICE gathering of the answerer")
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
	// Never block pion's binding (it holds the sender's lock): only the
	// first binding is announced, and this test binds once.
	select {
	case f.bound <- d:
	default:
	}
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

// loops runs the test's read loops and lets cleanup wait for them. A loop
// that pion would start after cleanup began is not started at all, so the
// wait cannot race with a late Add.
type loops struct {
	mu      sync.Mutex
	stopped bool
	wg      sync.WaitGroup
}

// Go runs f in a new goroutine and reports whether it did.
func (l *loops) Go(f func()) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopped {
		return false
	}
	l.wg.Go(f)
	return true
}

// stop refuses new loops and returns a channel closed once the running ones
// have ended.
func (l *loops) stop() <-chan struct{} {
	l.mu.Lock()
	l.stopped = true
	l.mu.Unlock()
	done := make(chan struct{})
	go func() {
		l.wg.Wait()
		close(done)
	}()
	return done
}

// allStacks returns every goroutine's stack, for failures that would
// otherwise only say that something did not stop.
func allStacks() string {
	buf := make([]byte, 1<<20)
	return string(buf[:runtime.Stack(buf, true)])
}

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
	var readers loops
	// The read loops end only when their peer connections close. newPC's
	// own cleanups run after this one (cleanups run last-registered
	// first), so this one closes the peer connections itself before
	// waiting: waiting first is what once hung CI for 20 minutes. Closing
	// and waiting are bounded too, so a peer connection or loop that does
	// not stop fails the test with every stack instead of hanging it.
	t.Cleanup(func() {
		cancel()
		stopped := make(chan struct{})
		go func() {
			defer close(stopped)
			for _, pc := range []*webrtc.PeerConnection{pubPC, gwIn, gwOut, subPC} {
				_ = pc.Close()
			}
			<-readers.stop()
		}()
		timer := time.NewTimer(pionWait)
		defer timer.Stop()
		select {
		case <-stopped:
		case <-timer.C:
			t.Errorf("peer connections or read loops still running %v after close:\n%s", pionWait, allStacks())
		}
	})

	pubs := make(chan *forwarding.Publication, 1)
	gwIn.OnTrack(func(track *webrtc.TrackRemote, receiver *webrtc.RTPReceiver) {
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
		started := readers.Go(func() { // the gateway's read loop
			defer p.Close()
			buf := make([]byte, 1500)
			for {
				n, _, err := track.Read(buf)
				if err != nil {
					return
				}
				_ = p.WriteRaw(buf[:n])
			}
		})
		if !started { // the test is already over
			_ = p.Close()
			return
		}
		readers.Go(func() {
			for {
				pkts, _, err := receiver.ReadRTCP()
				if err != nil {
					return
				}
				for _, pk := range pkts {
					if sr, ok := pk.(*rtcp.SenderReport); ok {
						p.HandleSenderReport(sr)
					}
				}
			}
		})
		select {
		case pubs <- p:
		default:
			t.Error("the gateway received a second track")
		}
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
	// Packets sent before the publication exists carry ids below 10000,
	// which the subscriber does not count: at 2ms a packet, the deadline
	// comes long before the ids could reach it.
	noTrack := time.NewTimer(pionWait)
	defer noTrack.Stop()
	var pub *forwarding.Publication
	for seq := uint16(0); pub == nil; seq++ {
		select {
		case pub = <-pubs:
		case <-pace.C:
			send(seq)
		case <-noTrack.C:
			t.Fatalf("the gateway got no track within %v", pionWait)
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
		readers.Go(func() {
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
		})
	})
	connected := make(chan struct{})
	var once sync.Once
	subPC.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateConnected {
			once.Do(func() { close(connected) })
		}
	})
	connect(t, gwOut, subPC)
	down := recv(t, fwd.bound, "down-track bound by the subscriber's negotiation")
	readers.Go(func() { // the gateway's RTCP loop for the down-track
		for {
			pkts, _, err := sender.ReadRTCP()
			if err != nil {
				return
			}
			down.HandleRTCP(pkts)
		}
	})

	// Wait for the subscriber's connection before counting.
	recv(t, connected, "connection of the subscriber")

	for i := 0; i < total; i++ {
		<-pace.C
		send(uint16(10000 + i))
	}
	want := total
	deadline := time.NewTimer(pionWait)
	defer deadline.Stop()
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(received) }
	for count() < want*99/100 {
		select {
		case <-changed:
		case <-deadline.C:
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
