package sfu_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"maps"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/logging"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"

	"github.com/rtcio-gateway/rtcio-gateway/gateway/sfu"
	"github.com/rtcio-gateway/rtcio-gateway/internal/mediafixture"
	"github.com/rtcio-gateway/rtcio-gateway/rtcio"
)

// lossRate is the share of incoming RTP the lossy subscribers drop.
const lossRate = 0.05

// lossConn is the UDP socket of a lossy subscriber: it drops a share of the
// RTP packets that arrive, before SRTP and every interceptor see them, as a
// lossy link would. Dropping later (in an interceptor) would be wrong for
// plain retransmissions: SRTP's replay check would already have seen the
// original's sequence number and would discard the retransmitted copy.
type lossConn struct {
	net.PacketConn
	rate float64

	mu      sync.Mutex
	rng     *rand.Rand
	seen    map[uint32]int // RTP packets by SSRC
	dropped map[uint32]int
}

func (c *lossConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.PacketConn.ReadFrom(b)
		if err != nil || !isRTP(b[:n]) {
			return n, addr, err
		}
		// The SRTP header is in the clear.
		ssrc := binary.BigEndian.Uint32(b[8:12])
		c.mu.Lock()
		c.seen[ssrc]++
		drop := c.rng.Float64() < c.rate
		if drop {
			c.dropped[ssrc]++
		}
		c.mu.Unlock()
		if !drop {
			return n, addr, nil
		}
	}
}

// isRTP tells (S)RTP from STUN, DTLS and (S)RTCP on a shared socket
// (RFC 7983, RFC 5761: RTCP packet types 192 to 223).
func isRTP(b []byte) bool {
	return len(b) >= 12 && b[0] >= 128 && b[0] <= 191 && (b[1] < 192 || b[1] > 223)
}

// lossObserver is the first interceptor of a lossy subscriber: it learns
// which SSRC is the video and which its RTX stream, and counts the NACKs
// pion's generator sends and the RTX packets that got through.
type lossObserver struct {
	mu   sync.Mutex
	mime map[uint32]string

	nacks, nackedSeqs, rtxKept atomic.Int64
}

func (o *lossObserver) NewInterceptor(string) (interceptor.Interceptor, error) {
	return &lossObserverInterceptor{o: o}, nil
}

type lossObserverInterceptor struct {
	interceptor.NoOp
	o *lossObserver
}

func (i *lossObserverInterceptor) BindRemoteStream(info *interceptor.StreamInfo, reader interceptor.RTPReader) interceptor.RTPReader {
	i.o.mu.Lock()
	i.o.mime[info.SSRC] = strings.ToLower(info.MimeType)
	i.o.mu.Unlock()
	if !strings.EqualFold(info.MimeType, webrtc.MimeTypeRTX) {
		return reader
	}
	return interceptor.RTPReaderFunc(func(b []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
		n, attr, err := reader.Read(b, a)
		if err == nil {
			i.o.rtxKept.Add(1)
		}
		return n, attr, err
	})
}

func (i *lossObserverInterceptor) BindRTCPWriter(w interceptor.RTCPWriter) interceptor.RTCPWriter {
	return interceptor.RTCPWriterFunc(func(pkts []rtcp.Packet, a interceptor.Attributes) (int, error) {
		for _, p := range pkts {
			if nack, ok := p.(*rtcp.TransportLayerNack); ok {
				i.o.nacks.Add(1)
				for _, pair := range nack.Nacks {
					i.o.nackedSeqs.Add(int64(len(pair.PacketList())))
				}
			}
		}
		return w.Write(pkts, a)
	})
}

// lossLink is what a lossy subscriber's link did.
type lossLink struct {
	seed uint64
	conn *lossConn
	obs  *lossObserver
}

// counts returns the RTP packets seen and dropped on the video stream and
// on its RTX stream.
func (l *lossLink) counts() (videoSeen, videoDropped, rtxSeen, rtxDropped int) {
	l.obs.mu.Lock()
	mime := maps.Clone(l.obs.mime)
	l.obs.mu.Unlock()
	l.conn.mu.Lock()
	defer l.conn.mu.Unlock()
	for ssrc, n := range l.conn.seen {
		switch {
		case mime[ssrc] == strings.ToLower(webrtc.MimeTypeRTX):
			rtxSeen += n
			rtxDropped += l.conn.dropped[ssrc]
		case strings.HasPrefix(mime[ssrc], "video/"):
			videoSeen += n
			videoDropped += l.conn.dropped[ssrc]
		}
	}
	return videoSeen, videoDropped, rtxSeen, rtxDropped
}

// lossyAPI is a loopback-only pion API like rtcio.LoopbackAPI whose
// connections share one UDP socket that loses rate of the RTP it receives,
// with pion's NACK generator and responder and RTCP reports. With rtx the
// default codecs are registered, RTX included, so the gateway retransmits
// on the RTX stream; without, only VP8 and Opus, so it resends packets as
// they were.
func lossyAPI(t *testing.T, rate float64, rtx bool) (*webrtc.API, *lossLink) {
	t.Helper()
	udp, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	seed := rand.Uint64()
	conn := &lossConn{PacketConn: udp, rate: rate, rng: rand.New(rand.NewPCG(seed, seed>>1)),
		seen: make(map[uint32]int), dropped: make(map[uint32]int)}
	// The mux logs an error for every packet the gateway still sends to a
	// connection closed at the end of the test; nothing it says bears on
	// the test.
	quiet := logging.NewDefaultLoggerFactory()
	quiet.DefaultLogLevel = logging.LogLevelDisabled
	mux := ice.NewUDPMuxDefault(ice.UDPMuxParams{UDPConn: conn, Logger: quiet.NewLogger("ice")})
	// Registered before the subscriber's own cleanup, so it runs after
	// the peer connections closed.
	t.Cleanup(func() { _ = mux.Close() })

	var se webrtc.SettingEngine
	se.SetICEUDPMux(mux)
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetInterfaceFilter(func(name string) bool { return name == "lo" || name == "lo0" })
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	// pion's default SRTP replay window is 64 packets: a plain
	// retransmission arriving later than that (a slow NACK round trip on a
	// busy machine) would be refused as a replay. Browsers keep a far
	// larger window; so does this subscriber.
	se.SetSRTPReplayProtectionWindow(1024)
	me := &webrtc.MediaEngine{}
	if rtx {
		if err := me.RegisterDefaultCodecs(); err != nil {
			t.Fatal(err)
		}
	} else {
		for _, c := range []struct {
			p    webrtc.RTPCodecParameters
			kind webrtc.RTPCodecType
		}{
			{webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, PayloadType: 96}, webrtc.RTPCodecTypeVideo},
			{webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1"}, PayloadType: 111}, webrtc.RTPCodecTypeAudio},
		} {
			if err := me.RegisterCodec(c.p, c.kind); err != nil {
				t.Fatal(err)
			}
		}
	}
	obs := &lossObserver{mime: make(map[uint32]string)}
	reg := &interceptor.Registry{}
	// First, so its RTCP writer sees what pion's NACK generator sends.
	reg.Add(obs)
	// ConfigureNack also adds the nack feedback to the video codecs.
	if err := webrtc.ConfigureNack(me, reg); err != nil {
		t.Fatal(err)
	}
	if err := webrtc.ConfigureRTCPReports(reg); err != nil {
		t.Fatal(err)
	}
	api := webrtc.NewAPI(webrtc.WithSettingEngine(se), webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(reg))
	return api, &lossLink{seed: seed, conn: conn, obs: obs}
}

// seqTrack records the distinct sequence numbers of the video a subscriber
// got, unwrapped to 64 bits, after pion's RTX repair: a packet recovered
// through a retransmission counts once, like the original.
type seqTrack struct {
	drops *signalDrops

	mu      sync.Mutex
	started bool
	first   uint64
	highest uint64
	got     map[uint64]bool
	dups    int
	changed chan struct{}
}

func newSeqTrack(drops *signalDrops) *seqTrack {
	return &seqTrack{drops: drops, got: make(map[uint64]bool), changed: make(chan struct{})}
}

// signalDrops records participants whose socket.io connection dropped. The
// gateway then drops them from the room (and a publisher's media with
// them), so waiting on media would only time out with a misleading
// message.
type signalDrops struct {
	mu    sync.Mutex
	who   []string
	first chan struct{}
}

func newSignalDrops() *signalDrops { return &signalDrops{first: make(chan struct{})} }

func (d *signalDrops) add(who string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.who) == 0 {
		close(d.first)
	}
	d.who = append(d.who, who)
}

func (d *signalDrops) names() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.who)
}

func (s *seqTrack) add(seq uint16) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ext uint64
	if !s.started {
		// Far from zero so a late packet from before the first cannot
		// wrap below it.
		ext = 1<<32 + uint64(seq)
		s.started, s.first, s.highest = true, ext, ext
	} else {
		ext = uint64(int64(s.highest) + int64(int16(seq-uint16(s.highest))))
		s.highest = max(s.highest, ext)
	}
	if s.got[ext] {
		s.dups++
	} else {
		s.got[ext] = true
	}
	close(s.changed)
	s.changed = make(chan struct{})
}

// window waits until the packets [first+skip, first+skip+n) are followed
// by margin more (so retransmissions of the window's last packets had
// time to land) and returns how many distinct ones of the window arrived.
func (s *seqTrack) window(t *testing.T, who string, skip, n, margin uint64, d time.Duration) int {
	t.Helper()
	deadline := time.After(d)
	for {
		s.mu.Lock()
		if s.started && s.highest >= s.first+skip+n+margin {
			got := 0
			for ext := s.first + skip; ext < s.first+skip+n; ext++ {
				if s.got[ext] {
					got++
				}
			}
			s.mu.Unlock()
			return got
		}
		var span uint64
		if s.started {
			span = s.highest - s.first
		}
		changed := s.changed
		s.mu.Unlock()
		select {
		case <-changed:
		case <-s.drops.first:
			t.Fatalf("%s: sequence span %d when the socket.io connection of %v dropped: a signaling failure, not a media one", who, span, s.drops.names())
		case <-deadline:
			t.Fatalf("%s: sequence span %d after %v, want %d", who, span, d, skip+n+margin)
		}
	}
}

func (s *seqTrack) duplicates() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dups
}

// dialSeq joins room as a Go rtc.io client on api and records the
// sequence numbers of the video it receives and whether its signaling
// dropped.
func dialSeq(t *testing.T, url, room, name string, api *webrtc.API, drops *signalDrops) (*rtcio.Socket, *seqTrack) {
	t.Helper()
	s := dialSocketAPI(t, url, api)
	seqs := newSeqTrack(drops)
	s.Server().On("disconnect", func(*rtcio.Event) { drops.add(name) })
	s.SetHooks(rtcio.Hooks{RemoteTrack: func(_ string, _ *rtcio.RemoteStream, tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		if tr.Kind() != webrtc.RTPCodecTypeVideo {
			return
		}
		go func() {
			for {
				p, _, err := tr.ReadRTP()
				if err != nil {
					return
				}
				seqs.add(p.SequenceNumber)
			}
		}()
	}})
	if err := s.Server().Emit("join-room", map[string]any{"roomId": room, "name": s.ID()}); err != nil {
		t.Fatal(err)
	}
	return s, seqs
}

// smallPacketWriter packetizes VP8 frames into small RTP packets, so the
// fixture's modest bitrate still makes well over a hundred packets a
// second: enough for a 1% bound to be measured on a few seconds of media.
type smallPacketWriter struct {
	track *webrtc.TrackLocalStaticRTP
	pk    rtp.Packetizer
}

func (w *smallPacketWriter) WriteSample(s media.Sample) error {
	for _, p := range w.pk.Packetize(s.Data, uint32(s.Duration.Seconds()*90000)) {
		if err := w.track.WriteRTP(p); err != nil {
			return fmt.Errorf("write rtp: %w", err)
		}
	}
	return nil
}

// publishSmallPackets publishes a video-only stream of the VP8 fixture in
// small packets under event, until the test ends.
func publishSmallPackets(t *testing.T, s *rtcio.Socket, event, msid string) *rtcio.Stream {
	t.Helper()
	video, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8}, "video-"+msid, msid)
	if err != nil {
		t.Fatal(err)
	}
	w := &smallPacketWriter{track: video, pk: rtp.NewPacketizer(80, 0, 0, &codecs.VP8Payloader{}, rtp.NewRandomSequencer(), 90000)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := mediafixture.PlayIVF(ctx, mediafixture.Path(mediafixture.VP8), w); err != nil {
			t.Errorf("play: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	st, err := rtcio.NewStream(video)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Emit(event, map[string]any{"name": msid, "stream": st}); err != nil {
		t.Fatal(err)
	}
	return st
}

// TestLossSubscriberRecoversThroughNACK: two of four subscribers of an SFU
// room lose 5% of the RTP packets that reach them (retransmissions
// included); one negotiated RTX, the other did not. Each NACKs, the gateway
// retransmits from its packet history (over RTX when negotiated, else as
// the original packet), and each still gets at least 99% of the packets;
// the two subscribers without loss are unaffected (at least 99.9%).
func TestLossSubscriberRecoversThroughNACK(t *testing.T) {
	gw, notes := startSFU(t)
	const room = "loss"
	pubAPI, err := rtcio.LoopbackAPI()
	if err != nil {
		t.Fatal(err)
	}
	drops := newSignalDrops()
	pub, _ := dialSeq(t, gw.URL, room, "publisher", pubAPI, drops)
	st := publishSmallPackets(t, pub, "camera", "loss-cam")
	notes.wait(t, "stream published", func(n sfu.Notice) bool {
		return n.Kind == sfu.StreamPublished && n.Stream == st.ID()
	})

	type sub struct {
		name  string
		id    string
		lossy bool
		rtx   bool
		link  *lossLink
		seqs  *seqTrack
		count int
	}
	subs := []*sub{
		{name: "lossy-rtx", lossy: true, rtx: true},
		{name: "lossy-plain", lossy: true},
		{name: "clean-1"},
		{name: "clean-2"},
	}
	for _, s := range subs {
		var api *webrtc.API
		if s.lossy {
			api, s.link = lossyAPI(t, lossRate, s.rtx)
		} else if api, err = rtcio.LoopbackAPI(); err != nil {
			t.Fatal(err)
		}
		var sock *rtcio.Socket
		sock, s.seqs = dialSeq(t, gw.URL, room, s.name, api, drops)
		s.id = sock.ID()
	}
	// A late joiner gets the stream only if the publisher confirms it in
	// time; on a starved machine it may not, and then no media comes.
	for _, s := range subs {
		n := notes.wait(t, "replay decision for "+s.name, func(n sfu.Notice) bool {
			return n.Client == s.id && n.Stream == st.ID() && (n.Kind == sfu.StreamReplayed || n.Kind == sfu.StreamNotReplayed)
		})
		if n.Kind != sfu.StreamReplayed {
			t.Fatalf("the gateway did not replay the stream to %s: the publisher did not confirm it in time (signaling, not media)", s.name)
		}
	}

	// A window of 1000 packets (about 8 s), after the first 20 (the start
	// of a subscription is not what is measured), then 200 more so that
	// the window's last losses had time to be repaired.
	const skip, window, margin = 20, 1000, 200
	start := time.Now()
	for _, s := range subs {
		s.count = s.seqs.window(t, s.name, skip, window, margin, 60*time.Second)
	}
	elapsed := time.Since(start)
	fams := scrape(t, gw.URL)
	retransmitted := value(t, fams, "rtcio_retransmitted_packets_total")
	t.Logf("gateway: %v NACKs received, %v packets retransmitted", value(t, fams, "rtcio_nacks_received_total"), retransmitted)
	if retransmitted < 1 {
		t.Errorf("the gateway counted no retransmission")
	}
	for _, s := range subs {
		t.Logf("%s: %d of %d packets (%.2f%%), %d duplicates; measured over %v", s.name, s.count, window,
			100*float64(s.count)/window, s.seqs.duplicates(), elapsed.Round(time.Millisecond))
		if !s.lossy {
			if s.count < window*999/1000 {
				t.Errorf("%s (no loss) received %d of %d packets, want at least 99.9%%", s.name, s.count, window)
			}
			continue
		}
		seen, dropped, rtxSeen, rtxDropped := s.link.counts()
		obs := s.link.obs
		t.Logf("%s: loss seed %d; dropped %d of %d video packets (%.1f%%) and %d of %d RTX packets; sent %d NACKs for %d sequence numbers",
			s.name, s.link.seed, dropped, seen, 100*float64(dropped)/float64(max(seen, 1)),
			rtxDropped, rtxSeen, obs.nacks.Load(), obs.nackedSeqs.Load())
		// The loss was real: without recovery the subscriber would miss
		// several times the 1% it may lose.
		if seen == 0 || float64(dropped)/float64(seen) < 0.025 {
			t.Errorf("%s: %d of %d video packets dropped, not the 5%% loss the test is about", s.name, dropped, seen)
		}
		if obs.nacks.Load() == 0 {
			t.Errorf("%s sent no NACK", s.name)
		}
		if kept := obs.rtxKept.Load(); s.rtx != (kept > 0) {
			t.Errorf("%s (RTX negotiated: %v) received %d RTX packets", s.name, s.rtx, kept)
		}
		if s.count < window*99/100 {
			t.Errorf("%s received %d of %d packets, want at least 99%%", s.name, s.count, window)
		}
	}
}
