package forwarding

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"

	"github.com/rtcio-gateway/rtcio-gateway/codec"
	"github.com/rtcio-gateway/rtcio-gateway/internal/mediafixture"
)

// A subscriber joining mid-GOP is started from the cached keyframe and the
// frames after it, rewritten, and then continues with live packets.
func TestKeyframeCacheReplayForLateSubscriber(t *testing.T) {
	up := newUpstream()
	pub := newTestPublication(t, PublicationConfig{Codec: vp8Codec, Keyframes: up})
	frames := vp8Frames(t, "vp8-gop10s.ivf", 77) // one keyframe, at frame 0

	early := newCaptureWriter()
	subscribe(t, pub, DownTrackConfig{SSRC: 1, PayloadType: 96, Writer: early})
	var all []*rtp.Packet
	for _, f := range frames[:60] {
		for _, pk := range f {
			mustWrite(t, pub, pk)
			all = append(all, pk)
		}
	}
	late := newCaptureWriter()
	subscribe(t, pub, DownTrackConfig{SSRC: 2, PayloadType: 96, Writer: late})
	for _, f := range frames[60:70] {
		for _, pk := range f {
			mustWrite(t, pub, pk)
			all = append(all, pk)
		}
	}

	got := late.waitCount(t, len(all))
	if len(got) != len(all) {
		t.Fatalf("late subscriber got %d packets, want %d", len(got), len(all))
	}
	if !codec.IsVP8Keyframe(got[0].payload) {
		t.Fatal("late subscriber did not start with the keyframe")
	}
	checkContinuous(t, got, 2)
	for i := range got {
		if !bytes.Equal(got[i].payload, all[i].Payload) {
			t.Fatalf("packet %d payload differs from upstream", i)
		}
		if got[i].hdr.Timestamp-got[0].hdr.Timestamp != all[i].Timestamp-all[0].Timestamp {
			t.Fatalf("packet %d: timestamps not rewritten by a constant offset", i)
		}
	}
	st := pub.Stats()
	if st.KeyframeCacheHits != 1 || st.KeyframeCacheMisses != 1 || st.KeyframesIn != 1 {
		t.Fatalf("publication stats: %+v", st)
	}
	lateStats := subscribeStats(t, pub, 2)
	if int(lateStats.ReplayedPackets) != len(all)-countPackets(frames[60:70]) {
		t.Fatalf("replayed %d packets", lateStats.ReplayedPackets)
	}
}

func countPackets(frames [][]*rtp.Packet) int {
	n := 0
	for _, f := range frames {
		n += len(f)
	}
	return n
}

func subscribeStats(t *testing.T, pub *Publication, ssrc uint32) DownTrackStats {
	t.Helper()
	for _, d := range *pub.subs.Load() {
		if d.SSRC() == ssrc {
			return d.Stats()
		}
	}
	t.Fatalf("no down-track with SSRC %d", ssrc)
	return DownTrackStats{}
}

// The cache starts at the first packet of the keyframe's frame (SPS/PPS
// before the IDR slice for H.264) and is dropped when a GOP outgrows it.
func TestKeyframeCacheBoundsAndFrameStart(t *testing.T) {
	units := readH264(t, "h264.h264")
	// The payloader puts SPS and PPS in their own STAP-A before the IDR
	// fragments; the cache must begin there.
	frames := mediafixture.Packetize(&codecs.H264Payloader{}, units, 5, 102, 3000)
	pub := newTestPublication(t, PublicationConfig{
		Codec: Codec{MimeType: codec.MimeTypeH264, ClockRate: 90000, PayloadType: 102},
	})
	lastIDR := -1
	for i, f := range frames[:len(frames)-1] {
		for _, pk := range f {
			mustWrite(t, pub, pk)
		}
		if mediafixture.AnnexBHasIDR(units[i]) {
			lastIDR = i
		}
	}
	w := newCaptureWriter()
	subscribe(t, pub, DownTrackConfig{SSRC: 3, PayloadType: 102, Writer: w})
	want := countPackets(frames[lastIDR : len(frames)-1])
	got := w.waitCount(t, want)
	if len(got) != want || !bytes.Equal(got[0].payload, frames[lastIDR][0].Payload) {
		t.Fatalf("replay: %d packets, want %d starting at the IDR unit", len(got), want)
	}

	small := newTestPublication(t, PublicationConfig{Codec: vp8Codec, KeyframeCacheMaxPackets: 8})
	for _, f := range vp8Frames(t, "vp8-gop10s.ivf", 1)[:30] {
		for _, pk := range f {
			mustWrite(t, small, pk)
		}
	}
	subscribe(t, small, DownTrackConfig{SSRC: 3, Writer: newCaptureWriter()})
	if st := small.Stats(); st.KeyframeCacheHits != 0 || st.KeyframeCacheMisses != 1 {
		t.Fatalf("overflowing cache still replayed: %+v", st)
	}
}

// A subscriber whose writer is stuck loses its own packets (counted) while
// the others get every packet.
func TestSlowSubscriberDoesNotSlowOthers(t *testing.T) {
	pub := newTestPublication(t, PublicationConfig{Codec: vp8Codec})
	fast1, fast2 := newCaptureWriter(), newCaptureWriter()
	slow := newCaptureWriter()
	slow.gate = make(chan struct{})
	subscribe(t, pub, DownTrackConfig{SSRC: 1, Writer: fast1})
	dSlow := subscribe(t, pub, DownTrackConfig{SSRC: 2, Writer: slow, QueueSize: 64})
	t.Cleanup(func() { close(slow.gate) }) // runs before the down-tracks close
	subscribe(t, pub, DownTrackConfig{SSRC: 3, Writer: fast2})

	// Batches paced by the fast subscribers (as a real publisher's rate
	// would be): the stuck one must not hold them back.
	const n, batch = 5000, 250
	for i := 0; i < n; i++ {
		mustWrite(t, pub, simplePacket(1, uint16(i), uint32(i)*90))
		if (i+1)%batch == 0 {
			fast1.waitCount(t, i+1)
			fast2.waitCount(t, i+1)
		}
	}
	for _, w := range []*captureWriter{fast1, fast2} {
		if got := w.waitCount(t, n); len(got) != n {
			t.Fatalf("fast subscriber got %d of %d", len(got), n)
		}
	}
	st := dSlow.Stats()
	// The stuck writer holds one packet and the queue 64 more.
	if st.DropsQueueFull < n-65 || st.PacketsOut != 0 {
		t.Fatalf("slow subscriber stats: %+v", st)
	}
	for _, ssrc := range []uint32{1, 3} {
		if s := subscribeStats(t, pub, ssrc); s.DropsQueueFull != 0 || s.PacketsOut != n {
			t.Fatalf("fast subscriber %d stats: %+v", ssrc, s)
		}
	}
}

// Keyframe requests from many subscribers are aggregated and throttled, and a
// pending request is dropped when a keyframe arrives first.
//
// Nothing here depends on how fast the test runs: the publication's clock is
// frozen (so a throttled request always waits the full interval) and only
// moves when the test moves it, and the upstream holds a request in flight
// while the test lines up the requests that must be aggregated behind it.
func TestKeyframeRequestAggregationAndThrottle(t *testing.T) {
	up := newUpstream()
	clk := newFakeClock()
	const interval = 100 * time.Millisecond
	pub := newTestPublication(t, PublicationConfig{Codec: vp8Codec, Keyframes: up, KeyframeRequestInterval: interval, Clock: clk.Now})
	mustWrite(t, pub, simplePacket(0x51, 1, 0))

	// The first subscriber's request goes out at once...
	release := up.holdKeyframeRequests(t)
	downs := []*DownTrack{subscribe(t, pub, DownTrackConfig{SSRC: 10, Writer: newCaptureWriter()})}
	receive(t, up.entered, "first keyframe request")
	// ...and everything asked while it is in flight, within the throttle
	// interval, becomes one more request, sent when the interval ends.
	for i := 1; i < 10; i++ {
		downs = append(downs, subscribe(t, pub, DownTrackConfig{SSRC: uint32(10 + i), Writer: newCaptureWriter()}))
	}
	for _, d := range downs {
		d.HandleRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: d.SSRC()}})
		d.HandleRTCP([]rtcp.Packet{&rtcp.FullIntraRequest{MediaSSRC: d.SSRC()}})
	}
	released := time.Now()
	release()
	waitFor(t, testWait, up.changed, func() bool { return up.pliCount() >= 2 })
	// A lower bound only: timers never fire early, however loaded the
	// machine.
	if elapsed := time.Since(released); elapsed < interval {
		t.Fatalf("throttled request sent %v after the first, throttle is %v", elapsed, interval)
	}
	// No third request: everything asked was aggregated into the second.
	// (Waiting for something not to happen can only miss a late extra
	// request on a slow machine, never fail a correct publication.)
	select {
	case <-up.changed:
		t.Fatalf("unexpected extra request, total %d", up.pliCount())
	case <-time.After(2 * interval):
	}
	up.mu.Lock()
	for _, ssrc := range up.plis {
		if ssrc != 0x51 {
			t.Fatalf("PLI for SSRC %x", ssrc)
		}
	}
	up.mu.Unlock()
	if st := pub.Stats(); st.KeyframeRequests != 30 || st.KeyframeRequestsSent != 2 || up.pliCount() != 2 {
		t.Fatalf("%d PLIs, stats: %+v", up.pliCount(), st)
	}

	// Once the interval has passed on the publication's clock a request
	// goes out at once; one made while it is in flight is throttled, and
	// dropped because a keyframe arrives before the throttle ends.
	clk.Advance(interval)
	release = up.holdKeyframeRequests(t)
	pub.RequestKeyframe()
	receive(t, up.entered, "keyframe request after the interval")
	pub.RequestKeyframe()
	clk.Advance(time.Millisecond) // the keyframe arrives after the request
	mustWrite(t, pub, vp8Frames(t, "vp8.ivf", 0x51)[0][0])
	release()
	eventually(t, testWait, func() bool { return pub.Stats().KeyframeRequestsSatisfied == 1 })
	if st := pub.Stats(); up.pliCount() != 3 || st.KeyframeRequestsSent != 3 {
		t.Fatalf("request sent although a keyframe arrived: %d PLIs, stats %+v", up.pliCount(), st)
	}
}

// Sender reports on down-tracks map the publisher's NTP<->RTP pairing through
// each down-track's timestamp offset: the NTP time of any forwarded packet is
// the same whether computed from the publisher's report or the down-track's,
// for audio and video alike, which is what keeps them in lip sync.
func TestSenderReportsKeepPublisherTimeline(t *testing.T) {
	clk := newFakeClock()
	type media struct {
		codec   Codec
		baseTS  uint32
		pub     *Publication
		rtcp    *rtcpCapture
		w       *captureWriter
		lastUp  uint32
		publish bool // whether the publisher sends sender reports
	}
	video := &media{codec: Codec{MimeType: codec.MimeTypeVP8, ClockRate: 90000}, baseTS: 123456, publish: true}
	audio := &media{codec: Codec{MimeType: codec.MimeTypeOpus, ClockRate: 48000}, baseTS: 4000000000, publish: true}
	silent := &media{codec: Codec{MimeType: codec.MimeTypeOpus, ClockRate: 48000}, baseTS: 99}
	all := []*media{video, audio, silent}
	for i, m := range all {
		m.pub = newTestPublication(t, PublicationConfig{Codec: m.codec, Clock: clk.Now})
		m.rtcp, m.w = newRTCPCapture(), newCaptureWriter()
		subscribe(t, m.pub, DownTrackConfig{SSRC: uint32(100 + i), Writer: m.w, RTCP: m.rtcp, SenderReportInterval: 5 * time.Millisecond})
	}
	// The publisher's clock: NTP at its t0 and RTP advancing with it.
	publisherNTP0 := toNTP(time.Unix(1_600_000_000, 0))
	upTS := func(m *media, d time.Duration) uint32 { return m.baseTS + durationToTicks(d, m.codec.ClockRate) }
	var elapsed time.Duration
	for i := 0; i < 20; i++ {
		for j, m := range all {
			m.lastUp = upTS(m, elapsed)
			mustWrite(t, m.pub, simplePacket(uint32(j+1), uint16(i), m.lastUp))
		}
		if i == 10 {
			for j, m := range all {
				if m.publish {
					m.pub.HandleSenderReport(&rtcp.SenderReport{
						SSRC:    uint32(j + 1),
						NTPTime: publisherNTP0 + durationToNTP(elapsed),
						RTPTime: upTS(m, elapsed),
					})
				}
			}
		}
		elapsed += 20 * time.Millisecond
		clk.Advance(20 * time.Millisecond)
	}
	// Use a report made after all packets were forwarded.
	reportAfterAll := func(m *media) rtcp.SenderReport {
		m.w.waitCount(t, 20)
		n := len(m.rtcp.reports())
		waitFor(t, testWait, m.rtcp.changed, func() bool { return len(m.rtcp.reports()) > n })
		return m.rtcp.reports()[n]
	}

	ntpSeconds := func(ntp uint64) float64 { return float64(ntp>>32) + float64(ntp&0xffffffff)/(1<<32) }
	for i, m := range []*media{video, audio} {
		sr := reportAfterAll(m)
		out := m.w.waitCount(t, 20)
		lastOut := out[19].hdr.Timestamp
		rate := float64(m.codec.ClockRate)
		// NTP of the last packet per the down-track's report...
		down := ntpSeconds(sr.NTPTime) + float64(int32(lastOut-sr.RTPTime))/rate
		// ...and per the publisher's timeline.
		upstream := ntpSeconds(publisherNTP0) + float64(int32(m.lastUp-m.baseTS))/rate
		if diff := down - upstream; diff > 1e-4 || diff < -1e-4 {
			t.Fatalf("media %d: down-track places the last packet %.6fs off the publisher's timeline", i, diff)
		}
		if sr.SSRC != uint32(100+i) || sr.PacketCount != 20 || sr.OctetCount != 80 {
			t.Fatalf("media %d: report %+v", i, sr)
		}
	}
	// Without a publisher report, the last packet's arrival on our clock
	// stands in: the report's RTP time is that packet's timestamp plus the
	// time since it arrived.
	sr := reportAfterAll(silent)
	out := silent.w.waitCount(t, 20)
	if sr.NTPTime != toNTP(clk.Now()) || sr.RTPTime != out[19].hdr.Timestamp+durationToTicks(20*time.Millisecond, 48000) {
		t.Fatalf("fallback report %+v, last packet ts %d", sr, out[19].hdr.Timestamp)
	}
}

// Upstream gaps are NACKed to the publisher, retried a bounded number of
// times, and forgotten once recovered. Retries fall due on the publication's
// clock, which only the test moves, so how many NACKs are sent does not
// depend on how fast the test runs.
func TestUpstreamNack(t *testing.T) {
	up := newUpstream()
	clk := newFakeClock()
	const interval = 20 * time.Millisecond
	pub := newTestPublication(t, PublicationConfig{
		Codec: vp8Codec, Nacks: up, Clock: clk.Now,
		NackInterval: interval, NackMaxRetries: 3, NackMaxAge: time.Minute,
	})
	countOf := func(seq uint16) int {
		n := 0
		for _, s := range up.nackedSeqs() {
			if s == seq {
				n++
			}
		}
		return n
	}
	for _, seq := range []uint16{65533, 65534, 1, 2} { // 65535 and 0 lost across the wrap
		mustWrite(t, pub, simplePacket(0x77, seq, uint32(seq)))
	}
	waitFor(t, testWait, up.changed, func() bool { return countOf(65535) == 1 && countOf(0) == 1 })
	mustWrite(t, pub, simplePacket(0x77, 65535, 65535)) // recovered
	for retry := 2; retry <= 3; retry++ {
		clk.Advance(interval)
		waitFor(t, testWait, up.changed, func() bool { return countOf(0) == retry })
	}
	clk.Advance(interval)
	eventually(t, testWait, func() bool { return pub.Stats().NackGiveUps == 1 })
	if countOf(0) != 3 {
		t.Fatalf("seq 0 NACKed %d times, want 3 (retry limit)", countOf(0))
	}
	if countOf(65535) != 1 {
		t.Fatalf("recovered packet NACKed %d times, want 1", countOf(65535))
	}
	st := pub.Stats()
	if st.UpstreamLost != 2 || st.UpstreamRecovered != 1 || st.NacksSent != uint64(len(up.nackedSeqs())) {
		t.Fatalf("stats: %+v", st)
	}
}

// A gap older than the age limit when it falls due is given up, not NACKed.
// Every reading of the clock advances it by more than the limit, so the gap
// is already too old at the first NACK round whenever that runs.
func TestUpstreamNackAgeLimit(t *testing.T) {
	up := newUpstream()
	clk := newFakeClock()
	clk.step = 2 * time.Second
	pub := newTestPublication(t, PublicationConfig{
		Codec: vp8Codec, Nacks: up, Clock: clk.Now,
		NackInterval: 50 * time.Millisecond, NackMaxAge: time.Second,
	})
	mustWrite(t, pub, simplePacket(1, 10, 0))
	mustWrite(t, pub, simplePacket(1, 12, 0))
	eventually(t, testWait, func() bool { return pub.Stats().NackGiveUps == 1 })
	if n := len(up.nackedSeqs()); n != 0 {
		t.Fatalf("%d NACKs sent for a packet too old to recover", n)
	}
}

func u16bytes(s []uint16) []byte {
	b := make([]byte, 0, 2*len(s))
	for _, v := range s {
		b = append(b, byte(v>>8), byte(v))
	}
	return b
}

// recordingSink captures what a sink receives.
type recordingSink struct {
	mu      sync.Mutex
	pkts    []*rtp.Packet
	closed  bool
	changed chan struct{}
}

func (s *recordingSink) WriteRTP(p *rtp.Packet) error {
	s.mu.Lock()
	s.pkts = append(s.pkts, p.Clone())
	s.mu.Unlock()
	wake(s.changed)
	return nil
}

func (s *recordingSink) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	wake(s.changed)
	return nil
}

func (s *recordingSink) snapshot() ([]*rtp.Packet, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*rtp.Packet(nil), s.pkts...), s.closed
}

func TestSinkGetsOriginalPacketsInOrder(t *testing.T) {
	pub := newTestPublication(t, PublicationConfig{Codec: vp8Codec})
	sink := &recordingSink{changed: make(chan struct{}, 1)}
	h, err := pub.AddSink(context.Background(), sink, SinkOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var want []*rtp.Packet
	for i, seq := range []uint16{7, 8, 10, 9, 11} { // one reordered
		pk := simplePacket(0xCAFE, seq, uint32(seq)*100)
		pk.Marker = i == 4
		mustWrite(t, pub, pk)
		want = append(want, pk)
	}
	mustWrite(t, pub, simplePacket(0xCAFE, 9, 900)) // duplicate: not delivered
	waitFor(t, testWait, sink.changed, func() bool { p, _ := sink.snapshot(); return len(p) >= len(want) })
	got, _ := sink.snapshot()
	if len(got) != len(want) {
		t.Fatalf("sink got %d packets, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].SSRC != want[i].SSRC || got[i].SequenceNumber != want[i].SequenceNumber ||
			got[i].Timestamp != want[i].Timestamp || got[i].Marker != want[i].Marker ||
			!bytes.Equal(got[i].Payload, want[i].Payload) {
			t.Fatalf("sink packet %d: %v, want %v", i, got[i], want[i])
		}
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if _, closed := sink.snapshot(); !closed || h.Stats().Delivered != 5 || pub.Stats().Sinks != 0 {
		t.Fatalf("after close: closed=%v stats=%+v sinks=%d", closed, h.Stats(), pub.Stats().Sinks)
	}
	if pub.Stats().DropsDuplicate != 1 {
		t.Fatal("duplicate not counted")
	}
}

func TestBadInputIsRejected(t *testing.T) {
	pub := newTestPublication(t, PublicationConfig{Codec: vp8Codec})
	w := newCaptureWriter()
	subscribe(t, pub, DownTrackConfig{SSRC: 1, Writer: w})
	cases := []struct {
		name string
		buf  []byte
		want error
	}{
		{"empty", nil, ErrMalformed},
		{"short header", []byte{0x80, 0x60, 0, 1}, ErrMalformed},
		{"version 1", append([]byte{0x40, 0x60, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1}, 1), ErrMalformed},
		{"padding larger than packet", []byte{0xa0, 0x60, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0xff}, ErrMalformed},
		{"zero padding", []byte{0xa0, 0x60, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0}, ErrMalformed},
		{"truncated extension", []byte{0x90, 0x60, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0xbe, 0xde, 0, 4}, ErrMalformed},
		{"too large", make([]byte, maxPacketSize+1), ErrPacketTooLarge},
	}
	for _, c := range cases {
		if err := pub.WriteRaw(c.buf); !errors.Is(err, c.want) {
			t.Errorf("%s: error %v, want %v", c.name, err, c.want)
		}
	}
	if err := pub.WriteRTP(nil); !errors.Is(err, ErrMalformed) {
		t.Errorf("nil packet: %v", err)
	}
	big := simplePacket(1, 1, 1)
	big.Payload = make([]byte, maxPacketSize)
	if err := pub.WriteRTP(big); !errors.Is(err, ErrPacketTooLarge) {
		t.Errorf("big packet: %v", err)
	}
	// A padded packet forwards its payload and padding length intact.
	padded := []byte{0xa0, 0x60, 0, 5, 0, 0, 0, 9, 0, 0, 0, 1, 0xaa, 0xbb, 0, 0, 3}
	if err := pub.WriteRaw(padded); err != nil {
		t.Fatal(err)
	}
	got := w.waitCount(t, 1)
	if st := pub.Stats(); st.DropsMalformed != uint64(len(cases)+2) || st.PacketsIn != 1 {
		t.Fatalf("stats: %+v", st)
	}
	if !bytes.Equal(got[0].payload, []byte{0xaa, 0xbb}) || !got[0].hdr.Padding || got[0].hdr.PaddingSize != 3 {
		t.Fatalf("padded packet forwarded as %+v %x", got[0].hdr, got[0].payload)
	}
}

// Cancelling the publication's context stops everything it started.
func TestPublicationContextStopsAll(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	pub, err := NewPublication(ctx, PublicationConfig{Codec: vp8Codec})
	if err != nil {
		t.Fatal(err)
	}
	d, err := pub.Subscribe(context.Background(), DownTrackConfig{SSRC: 1, Writer: newCaptureWriter()})
	if err != nil {
		t.Fatal(err)
	}
	sink := &recordingSink{changed: make(chan struct{}, 1)}
	if _, err := pub.AddSink(context.Background(), sink, SinkOptions{}); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, pub, simplePacket(1, 1, 1))
	cancel()
	receive(t, pub.Done(), "end of the publication")
	receive(t, d.Done(), "end of the down-track")
	if _, closed := sink.snapshot(); !closed {
		t.Fatal("sink not closed")
	}
	if err := pub.WriteRTP(simplePacket(1, 2, 2)); !errors.Is(err, ErrClosed) {
		t.Fatalf("write after close: %v", err)
	}
	if _, err := pub.Subscribe(context.Background(), DownTrackConfig{Writer: newCaptureWriter()}); !errors.Is(err, ErrClosed) {
		t.Fatalf("subscribe after close: %v", err)
	}
	if err := pub.Close(); err != nil { // idempotent
		t.Fatal(err)
	}
}

// A down-track whose context ends leaves the fan-out.
func TestDownTrackContextDetaches(t *testing.T) {
	pub := newTestPublication(t, PublicationConfig{Codec: vp8Codec})
	ctx, cancel := context.WithCancel(context.Background())
	d, err := pub.Subscribe(ctx, DownTrackConfig{SSRC: 1, Writer: newCaptureWriter()})
	if err != nil {
		t.Fatal(err)
	}
	if pub.Stats().Subscribers != 1 {
		t.Fatal("not subscribed")
	}
	cancel()
	receive(t, d.Done(), "end of the down-track")
	if pub.Stats().Subscribers != 0 {
		t.Fatal("down-track still in the fan-out")
	}
	mustWrite(t, pub, simplePacket(1, 1, 1))
}

// A subscriber whose writer fails counts the failures and keeps going.
func TestWriteErrorsAreCounted(t *testing.T) {
	pub := newTestPublication(t, PublicationConfig{Codec: vp8Codec})
	w := newCaptureWriter()
	w.fail = errors.New("closed pipe")
	d := subscribe(t, pub, DownTrackConfig{SSRC: 1, Writer: w})
	for i := 0; i < 10; i++ {
		mustWrite(t, pub, simplePacket(1, uint16(i), 0))
	}
	eventually(t, testWait, func() bool { return d.Stats().DropsWriteError == 10 })
}

// FuzzWriteRaw feeds arbitrary bytes to the ingest path with a subscriber and
// a sink attached: it must never panic, and whatever it accepts must reach
// the subscriber with the payload intact.
func FuzzWriteRaw(f *testing.F) {
	f.Add([]byte{0x80, 0x60, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0x10, 0x00})
	f.Add([]byte{0x90, 0x60, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0xbe, 0xde, 0, 1, 0x10, 0xff, 0, 0, 0xaa})
	f.Add([]byte{0xa0, 0x60, 0, 5, 0, 0, 0, 9, 0, 0, 0, 1, 0xaa, 0xbb, 0, 0, 3})
	f.Add([]byte{0x81, 0x60, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2, 0x7c, 0x85})
	f.Fuzz(func(t *testing.T, buf []byte) {
		pub, err := NewPublication(context.Background(), PublicationConfig{Codec: Codec{MimeType: codec.MimeTypeH264, ClockRate: 90000}})
		if err != nil {
			t.Fatal(err)
		}
		defer pub.Close()
		w := newCaptureWriter()
		if _, err := pub.Subscribe(context.Background(), DownTrackConfig{SSRC: 1, Writer: w}); err != nil {
			t.Fatal(err)
		}
		if err := pub.WriteRaw(buf); err != nil {
			return
		}
		var want rtp.Packet
		if err := want.Unmarshal(buf); err != nil {
			t.Fatalf("accepted a packet pion rejects: %v", err)
		}
		got := w.waitCount(t, 1)
		if !bytes.Equal(got[0].payload, want.Payload) {
			t.Fatalf("payload %x, want %x", got[0].payload, want.Payload)
		}
	})
}
