package recorder

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4/pkg/media/ivfreader"
	"github.com/pion/webrtc/v4/pkg/media/oggreader"
	"go.uber.org/goleak"

	"github.com/rtcio-gateway/rtcio-gateway/codec"
	"github.com/rtcio-gateway/rtcio-gateway/forwarding"
	"github.com/rtcio-gateway/rtcio-gateway/internal/mediafixture"
)

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		os.Exit(runHelper())
	}
	goleak.VerifyTestMain(m)
}

// testLogger logs through t so failures show the recorder's view.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

// mediaFrame is one frame of a fixture with its media time.
type mediaFrame struct {
	data []byte
	at   time.Duration // presentation time from the start of the fixture
	key  bool
}

func readIVFFrames(t testing.TB, path string) []mediaFrame {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, hdr, err := ivfreader.NewWith(f)
	if err != nil {
		t.Fatal(err)
	}
	var out []mediaFrame
	for {
		b, _, err := r.ParseNextFrame()
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		// The fixtures have a constant frame rate of one frame per
		// timebase unit (pion's frame Timestamp is not in seconds).
		at := time.Duration(len(out)) * time.Second * time.Duration(hdr.TimebaseNumerator) / time.Duration(hdr.TimebaseDenominator)
		out = append(out, mediaFrame{data: b, at: at, key: len(b) > 0 && b[0]&1 == 0})
	}
}

func readOpusFrames(t testing.TB, path string) []mediaFrame {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, _, err := oggreader.NewWith(f)
	if err != nil {
		t.Fatal(err)
	}
	var out []mediaFrame
	var at time.Duration
	for {
		page, _, err := r.ParseNextPage()
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if bytes.HasPrefix(page, []byte("OpusTags")) {
			continue
		}
		// The fixture holds one 20 ms packet per page.
		out = append(out, mediaFrame{data: page, at: at, key: true})
		at += 20 * time.Millisecond
	}
}

// readH264Frames returns the fixture's access units (Annex-B), 15 fps.
func readH264Frames(t testing.TB, path string) []mediaFrame {
	t.Helper()
	units, err := mediafixture.ReadAnnexB(path)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]mediaFrame, len(units))
	for i, u := range units {
		out[i] = mediaFrame{data: u, at: time.Duration(i) * time.Second / 15, key: mediafixture.AnnexBHasIDR(u)}
	}
	return out
}

// loopFrames repeats frames until total media time is at least d.
func loopFrames(frames []mediaFrame, d time.Duration) []mediaFrame {
	n := len(frames)
	period := frames[n-1].at + (frames[n-1].at - frames[n-2].at)
	var out []mediaFrame
	for loop := time.Duration(0); ; loop += period {
		for _, f := range frames {
			f.at += loop
			if f.at >= d {
				return out
			}
			out = append(out, f)
		}
	}
}

// stream is one fixture track packetized as a publisher would send it.
type stream struct {
	pub       *forwarding.Publication
	clock     uint32
	ssrc      uint32
	offset    time.Duration // media start relative to the stream's zero
	frames    []mediaFrame
	pkts      [][]*rtp.Packet // per frame
	firstTS   uint32
	sentFirst bool
	handle    *forwarding.SinkHandle // the recording's sink, once attached
}

// attach adds the stream to a recording.
func (s *stream) attach(t testing.TB, rec *Recording, id string) {
	t.Helper()
	_, h, err := rec.Attach(s.pub, id)
	if err != nil {
		t.Fatal(err)
	}
	s.handle = h
}

// end closes the publication once the recording's sink has taken every
// packet: a closing publication drops what its sinks have not taken yet.
func (s *stream) end(t testing.TB) {
	t.Helper()
	eventually(t, 10*time.Second, func() bool {
		st := s.handle.Stats()
		return st.Delivered+st.DropsQueueFull+st.WriteErrors >= s.pub.Stats().PacketsIn
	})
	_ = s.pub.Close()
}

func newStream(t testing.TB, codec forwarding.Codec, payloader rtp.Payloader, frames []mediaFrame, ssrc uint32, offset time.Duration) *stream {
	t.Helper()
	pub, err := forwarding.NewPublication(context.Background(), forwarding.PublicationConfig{Codec: codec, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pub.Close() })
	s := &stream{pub: pub, clock: codec.ClockRate, ssrc: ssrc, offset: offset, frames: frames, firstTS: 0x7000_0000 + ssrc}
	pz := rtp.NewPacketizer(1200, codec.PayloadType, ssrc, payloader, rtp.NewRandomSequencer(), codec.ClockRate)
	for _, f := range frames {
		pk := pz.Packetize(f.data, 0)
		ts := s.tsAt(f.at)
		for _, p := range pk {
			p.Timestamp = ts
		}
		s.pkts = append(s.pkts, pk)
	}
	return s
}

func (s *stream) tsAt(at time.Duration) uint32 {
	return s.firstTS + uint32(int64(at)*int64(s.clock)/int64(time.Second))
}

// senderReport is what the publisher would report: NTP time of the
// stream's zero is ntp0, and this track's media starts offset later.
func (s *stream) senderReport(ntp0 time.Time, at time.Duration) *rtcp.SenderReport {
	wall := ntp0.Add(s.offset + at)
	sec := uint64(wall.Unix() + 2208988800)
	frac := uint64(wall.Nanosecond()) << 32 / uint64(time.Second)
	return &rtcp.SenderReport{SSRC: s.ssrc, NTPTime: sec<<32 | frac, RTPTime: s.tsAt(at)}
}

func vp8Stream(t testing.TB, frames []mediaFrame, offset time.Duration) *stream {
	return newStream(t, forwarding.Codec{MimeType: codec.MimeTypeVP8, ClockRate: 90000, PayloadType: 96},
		&codecs.VP8Payloader{EnablePictureID: true}, frames, 1111, offset)
}

func opusStream(t testing.TB, frames []mediaFrame, offset time.Duration) *stream {
	return newStream(t, forwarding.Codec{MimeType: codec.MimeTypeOpus, ClockRate: 48000, PayloadType: 111},
		&codecs.OpusPayloader{}, frames, 2222, offset)
}

func h264Stream(t testing.TB, frames []mediaFrame, offset time.Duration) *stream {
	return newStream(t, forwarding.Codec{MimeType: codec.MimeTypeH264, ClockRate: 90000, PayloadType: 102},
		&codecs.H264Payloader{}, frames, 3333, offset)
}

// event is one packet to send, in the publisher's time order.
type event struct {
	s     *stream
	frame int
	at    time.Duration // on the stream's common timeline
}

// schedule merges the streams' frames in time order.
func schedule(streams ...*stream) []event {
	var evs []event
	for _, s := range streams {
		for i, f := range s.frames {
			evs = append(evs, event{s: s, frame: i, at: s.offset + f.at})
		}
	}
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].at < evs[j].at })
	return evs
}

// publishOptions shapes how publish feeds packets.
type publishOptions struct {
	ntp0 time.Time // sender report clock; zero: no sender reports
	loss float64   // fraction of packets dropped before the publication
	rng  *rand.Rand
	// keep reports whether a packet must survive the loss (nil: none must).
	keep func(s *stream, frame, pkt int) bool
	// lost receives the packets dropped, per stream and frame.
	lost map[*stream]map[int]bool
}

// publish feeds the streams' packets into their publications in time order,
// faster than real time: timestamps, not arrival, carry the timing.
func publish(t testing.TB, o publishOptions, streams ...*stream) {
	t.Helper()
	for _, ev := range schedule(streams...) {
		s := ev.s
		for i, p := range s.pkts[ev.frame] {
			if o.loss > 0 && o.rng.Float64() < o.loss && (o.keep == nil || !o.keep(s, ev.frame, i)) {
				if o.lost != nil {
					if o.lost[s] == nil {
						o.lost[s] = map[int]bool{}
					}
					o.lost[s][ev.frame] = true
				}
				continue
			}
			if err := s.pub.WriteRTP(p); err != nil {
				t.Fatal(err)
			}
			if !s.sentFirst && !o.ntp0.IsZero() {
				// The publication takes reports for a source it knows.
				s.pub.HandleSenderReport(s.senderReport(o.ntp0, s.frames[ev.frame].at))
			}
			s.sentFirst = true
		}
		if ev.frame%30 == 29 && !o.ntp0.IsZero() {
			s.pub.HandleSenderReport(s.senderReport(o.ntp0, s.frames[ev.frame].at))
		}
	}
}

// newTestRecorder returns a recorder into a fresh directory.
func newTestRecorder(t testing.TB, cfg Config) *Recorder {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

func testInfo() StreamInfo {
	return StreamInfo{
		Room: "room-1", PublisherID: "pubSocketId0123456789abc", PublisherName: "alice",
		StreamID: "5f0c7f2e-8a0e-4d39-9d51-0e6f2f1c0a11", MediaStreamID: "{ms-id}",
		Events: map[string][]json.RawMessage{
			"camera": {json.RawMessage(`"[RTCIOStream] 5f0c7f2e-8a0e-4d39-9d51-0e6f2f1c0a11"`), json.RawMessage(`{"label":"cam"}`)},
		},
		ExpectedTracks: 2,
	}
}

// waitDone waits for a recording to finish.
func waitDone(t testing.TB, rec *Recording) {
	t.Helper()
	select {
	case <-rec.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("recording did not finish")
	}
}

// waitFiles waits until the recording has started n files.
func waitFiles(t testing.TB, rec *Recording, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for len(rec.Status().Files) < n {
		select {
		case <-tick.C:
		case <-rec.Done():
			if len(rec.Status().Files) < n {
				t.Fatalf("recording ended with files %v, want %d", rec.Status().Files, n)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("recording has files %v, want %d", rec.Status().Files, n)
		}
	}
}

// probe is ffprobe's view of a file.
type probe struct {
	Streams []struct {
		Index     int    `json:"index"`
		CodecType string `json:"codec_type"`
		CodecName string `json:"codec_name"`
		Width     int    `json:"width"`
		Height    int    `json:"height"`
		StartTime string `json:"start_time"`
	} `json:"streams"`
	Format struct {
		FormatName string `json:"format_name"`
		Duration   string `json:"duration"`
	} `json:"format"`
}

func requireFFmpeg(t testing.TB) {
	t.Helper()
	for _, tool := range []string{"ffprobe", "ffmpeg"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (apt-get install -y ffmpeg): %v", tool, err)
		}
	}
}

func ffprobe(t testing.TB, path string) probe {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", path).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe %s: %v\n%s", path, err, out)
	}
	var p probe
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatalf("ffprobe output: %v\n%s", err, out)
	}
	return p
}

// ffmpegDecodeErrors decodes the whole file and returns what ffmpeg reports
// at level error.
func ffmpegDecodeErrors(t testing.TB, path string) string {
	t.Helper()
	out, err := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-i", path, "-f", "null", "-").CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg %s: %v\n%s", path, err, out)
	}
	return strings.TrimSpace(string(out))
}

// packetTimes returns the pts (seconds) of every packet of one stream
// (selected like "v:0" or "a:0").
func packetTimes(t testing.TB, path, sel string) []float64 {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", sel, "-show_entries", "packet=pts_time",
		"-of", "csv=p=0", path).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe packets %s: %v\n%s", path, err, out)
	}
	var ts []float64
	for _, line := range strings.Fields(string(out)) {
		v, err := strconv.ParseFloat(strings.TrimSuffix(line, ","), 64)
		if err != nil {
			t.Fatalf("ffprobe packet time %q: %v", line, err)
		}
		ts = append(ts, v)
	}
	return ts
}

func parseSeconds(t testing.TB, s string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatalf("not a number of seconds: %q", s)
	}
	return v
}

func fixture(name string) string { return mediafixture.Path(name) }

// eventually polls cond until it holds or the timeout passes, for state
// that has no change notification (another package's counters).
func eventually(t testing.TB, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline.C:
			t.Fatalf("condition not met within %v", timeout)
		}
	}
}
