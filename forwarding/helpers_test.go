package forwarding

import (
	"bytes"
	"context"
	"errors"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"go.uber.org/goleak"

	"github.com/rtcio-gateway/rtcio-gateway/codec"
	"github.com/rtcio-gateway/rtcio-gateway/internal/mediafixture"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// readIVF returns the frames of a shared IVF fixture.
func readIVF(t testing.TB, name string) [][]byte {
	t.Helper()
	frames, err := mediafixture.ReadIVF(mediafixture.Path(name))
	if err != nil {
		t.Fatal(err)
	}
	return frames
}

// readH264 returns the access units of the shared Annex-B fixture.
func readH264(t testing.TB, name string) [][]byte {
	t.Helper()
	units, err := mediafixture.ReadAnnexB(mediafixture.Path(name))
	if err != nil {
		t.Fatal(err)
	}
	return units
}

func vp8Frames(t testing.TB, name string, ssrc uint32) [][]*rtp.Packet {
	t.Helper()
	return mediafixture.Packetize(&codecs.VP8Payloader{EnablePictureID: true}, readIVF(t, name), ssrc, 96, 3000)
}

// testWait bounds every wait in this package's tests: long enough for a
// loaded CI machine, short enough that a failure fails rather than hangs.
const testWait = 10 * time.Second

// fakeClock is a settable clock for rewriting tests. With step set, every
// reading advances it by step, which orders events by reading rather than by
// scheduling.
type fakeClock struct {
	mu   sync.Mutex
	now  time.Time
	step time.Duration
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now
	c.now = c.now.Add(c.step)
	return now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// sent is one packet a captureWriter received, deep-copied.
type sent struct {
	hdr     rtp.Header
	payload []byte
}

// captureWriter records what a down-track writes and lets tests wait for it.
type captureWriter struct {
	mu      sync.Mutex
	pkts    []sent
	changed chan struct{}
	gate    chan struct{} // when non-nil, every write waits for it to close
	fail    error
}

func newCaptureWriter() *captureWriter {
	return &captureWriter{changed: make(chan struct{}, 1)}
}

func (w *captureWriter) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	if w.gate != nil {
		<-w.gate
	}
	if w.fail != nil {
		return 0, w.fail
	}
	w.mu.Lock()
	w.pkts = append(w.pkts, sent{hdr: h.Clone(), payload: bytes.Clone(payload)})
	w.mu.Unlock()
	wake(w.changed)
	return len(payload), nil
}

func (w *captureWriter) packets() []sent {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]sent(nil), w.pkts...)
}

func (w *captureWriter) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.pkts)
}

// waitCount waits until at least n packets were written.
func (w *captureWriter) waitCount(t testing.TB, n int) []sent {
	t.Helper()
	waitFor(t, testWait, w.changed, func() bool { return w.count() >= n })
	return w.packets()
}

// receive waits for a value from ch, failing the test after testWait.
func receive[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	timer := time.NewTimer(testWait)
	defer timer.Stop()
	select {
	case v := <-ch:
		return v
	case <-timer.C:
		t.Fatalf("no %s within %v", what, testWait)
		panic("unreachable")
	}
}

// spinUntil yields until cond holds, for loops that must not allocate or
// block (allocation counts, benchmarks), failing after testWait.
func spinUntil(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testWait)
	for i := 0; !cond(); i++ {
		if i%1024 == 0 && time.Now().After(deadline) {
			t.Fatalf("condition not met within %v", testWait)
		}
		runtime.Gosched()
	}
}

// waitFor re-checks cond every time changed fires, until the deadline.
func waitFor[T any](t testing.TB, timeout time.Duration, changed <-chan T, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for !cond() {
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("condition not met within %v", timeout)
		}
	}
}

// eventually polls cond until it holds or the deadline passes, for state
// that has no change notification (counters updated by another goroutine).
func eventually(t testing.TB, timeout time.Duration, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	waitFor(t, timeout, tick.C, cond)
}

// rtcpCapture records RTCP written to a subscriber.
type rtcpCapture struct {
	mu      sync.Mutex
	srs     []rtcp.SenderReport
	changed chan struct{}
}

func newRTCPCapture() *rtcpCapture { return &rtcpCapture{changed: make(chan struct{}, 1)} }

func (c *rtcpCapture) WriteRTCP(pkts []rtcp.Packet) error {
	c.mu.Lock()
	for _, p := range pkts {
		if sr, ok := p.(*rtcp.SenderReport); ok {
			c.srs = append(c.srs, *sr)
		}
	}
	c.mu.Unlock()
	wake(c.changed)
	return nil
}

func (c *rtcpCapture) reports() []rtcp.SenderReport {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]rtcp.SenderReport(nil), c.srs...)
}

// upstream records keyframe requests and NACKs sent to the publisher.
type upstream struct {
	mu       sync.Mutex
	plis     []uint32
	nacks    [][]uint16
	changed  chan struct{}
	failNack bool

	// With hold set, RequestKeyframe signals entered and then waits for
	// hold to close, keeping the publication's timer goroutine busy so a
	// test can line up what happens meanwhile.
	hold    chan struct{}
	entered chan struct{}
}

func newUpstream() *upstream {
	return &upstream{changed: make(chan struct{}, 1), entered: make(chan struct{}, 1)}
}

func (u *upstream) RequestKeyframe(ssrc uint32) error {
	u.mu.Lock()
	hold := u.hold
	u.mu.Unlock()
	if hold != nil {
		wake(u.entered)
		<-hold
	}
	u.mu.Lock()
	u.plis = append(u.plis, ssrc)
	u.mu.Unlock()
	wake(u.changed)
	return nil
}

// holdKeyframeRequests makes the next keyframe requests wait until the
// returned release is called (at the latest when the test ends, so a failed
// test never leaves the publication stuck).
func (u *upstream) holdKeyframeRequests(t testing.TB) (release func()) {
	hold := make(chan struct{})
	u.mu.Lock()
	u.hold = hold
	u.mu.Unlock()
	var once sync.Once
	release = func() {
		once.Do(func() {
			u.mu.Lock()
			u.hold = nil
			u.mu.Unlock()
			close(hold)
		})
	}
	t.Cleanup(release)
	return release
}

func (u *upstream) SendNack(ssrc uint32, seqs []uint16) error {
	u.mu.Lock()
	u.nacks = append(u.nacks, append([]uint16(nil), seqs...))
	fail := u.failNack
	u.mu.Unlock()
	wake(u.changed)
	if fail {
		return errors.New("nack failed")
	}
	return nil
}

func (u *upstream) pliCount() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.plis)
}

func (u *upstream) nackedSeqs() []uint16 {
	u.mu.Lock()
	defer u.mu.Unlock()
	var all []uint16
	for _, n := range u.nacks {
		all = append(all, n...)
	}
	return all
}

// newTestPublication creates a publication closed at the end of the test.
func newTestPublication(t testing.TB, cfg PublicationConfig) *Publication {
	t.Helper()
	p, err := NewPublication(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func subscribe(t testing.TB, p *Publication, cfg DownTrackConfig) *DownTrack {
	t.Helper()
	d, err := p.Subscribe(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

var vp8Codec = Codec{MimeType: codec.MimeTypeVP8, ClockRate: 90000, PayloadType: 96}

// simplePacket builds a small RTP packet with a recognisable payload.
func simplePacket(ssrc uint32, seq uint16, ts uint32) *rtp.Packet {
	return &rtp.Packet{
		Header:  rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: seq, Timestamp: ts, SSRC: ssrc},
		Payload: []byte{0x00, byte(seq >> 8), byte(seq), byte(ssrc)},
	}
}

func mustWrite(t testing.TB, p *Publication, pkt *rtp.Packet) {
	t.Helper()
	if err := p.WriteRTP(pkt); err != nil {
		t.Fatal(err)
	}
}
