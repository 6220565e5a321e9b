package recorder

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"

	"github.com/rtcio-gateway/rtcio-gateway/codec"
	"github.com/rtcio-gateway/rtcio-gateway/forwarding"
	"github.com/rtcio-gateway/rtcio-gateway/internal/mediafixture"
)

// recordAV publishes VP8 and Opus fixtures into a recording and returns the
// finished recording's first file.
func recordAV(t *testing.T, r *Recorder, video, audio *stream, o publishOptions) (*Recording, string) {
	t.Helper()
	rec, err := r.Start(t.Context(), testInfo())
	if err != nil {
		t.Fatal(err)
	}
	video.attach(t, rec, "video-track")
	audio.attach(t, rec, "audio-track")
	publish(t, o, video, audio)
	// Closing the publications ends the tracks, which ends the recording
	// once everything queued is written.
	video.end(t)
	audio.end(t)
	waitDone(t, rec)
	st := rec.Status()
	if st.State != StateDone || st.EndReason != ReasonTracksEnded || len(st.Files) == 0 {
		t.Fatalf("recording status %+v", st)
	}
	return rec, filepath.Join(r.Dir(), st.Files[0])
}

func TestRecordVP8OpusToWebM(t *testing.T) {
	requireFFmpeg(t)
	const published = 8 * time.Second
	video := vp8Stream(t, loopFrames(readIVFFrames(t, fixture(mediafixture.VP8)), published), 0)
	audio := opusStream(t, loopFrames(readOpusFrames(t, fixture(mediafixture.Opus)), published), 0)
	r := newTestRecorder(t, Config{})
	_, file := recordAV(t, r, video, audio, publishOptions{ntp0: time.Now()})

	if !strings.HasSuffix(file, ".webm") {
		t.Fatalf("file %s is not WebM", file)
	}
	p := ffprobe(t, file)
	var nv, na int
	for _, s := range p.Streams {
		switch {
		case s.CodecType == "video" && s.CodecName == "vp8":
			nv++
			if s.Width != 320 || s.Height != 240 {
				t.Errorf("video is %dx%d, want 320x240", s.Width, s.Height)
			}
		case s.CodecType == "audio" && s.CodecName == "opus":
			na++
		}
	}
	if nv != 1 || na != 1 || !strings.Contains(p.Format.FormatName, "webm") {
		t.Fatalf("ffprobe: %+v", p)
	}
	if d := parseSeconds(t, p.Format.Duration); math.Abs(d-published.Seconds()) > 0.5 {
		t.Fatalf("duration %.3fs, published %v", d, published)
	}
	if errs := ffmpegDecodeErrors(t, file); errs != "" {
		t.Fatalf("ffmpeg decode errors:\n%s", errs)
	}
	m, err := ReadManifest(strings.TrimSuffix(file, ".webm") + ".json")
	if err != nil {
		t.Fatal(err)
	}
	if m.State != StateDone || m.EndReason != ReasonTracksEnded || len(m.Tracks) != 2 || m.PacketsReceived == 0 ||
		m.PacketsLost != 0 || m.Room != "room-1" || m.Publisher.Name != "alice" || m.Event != "camera" ||
		string(m.Args[0]) != `"[RTCIOStream] 5f0c7f2e-8a0e-4d39-9d51-0e6f2f1c0a11"` || m.End == nil ||
		math.Abs(float64(m.DurationMs)-float64(published.Milliseconds())) > 500 {
		t.Fatalf("manifest %+v", m)
	}
	// Without loss every frame is in the file.
	if v, a := m.Tracks[0], m.Tracks[1]; v.Frames != uint64(len(video.frames)) || a.Frames != uint64(len(audio.frames)) ||
		v.FramesDropped != 0 || v.Width != 320 || v.Kind != "video" || a.Kind != "audio" {
		t.Fatalf("manifest tracks %+v, want %d video and %d audio frames", m.Tracks, len(video.frames), len(audio.frames))
	}
}

// TestLossAndStartOffset drops 3% of the packets and starts video 800 ms
// after audio: the file decodes cleanly and keeps the real offset between
// the first audio and video frames it holds.
//
// The offset is a whole number of 15 fps frames on purpose. ffmpeg 5.1's
// "-f null" output passes timestamps through in a 1/r_frame_rate time
// base, and for a perfectly regular synthetic stream sitting half a frame
// off that grid (700 ms is 10.5 frames) it reports its own rounded
// timestamps as "non monotonically increasing dts" errors, although the
// file's timestamps are strictly increasing ("-fps_mode vfr" decodes the
// same file without a message).
func TestLossAndStartOffset(t *testing.T) {
	requireFFmpeg(t)
	// Seed 2 keeps the first frames; with seed 46 the first audio packet
	// and a packet of the first video keyframe are lost, so the file starts
	// later on both tracks. LOSS_SEED runs another seed.
	seeds := []uint64{2, 46}
	if v, err := strconv.ParseUint(os.Getenv("LOSS_SEED"), 10, 64); err == nil {
		seeds = []uint64{v}
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) { testLossAndStartOffset(t, seed) })
	}
}

func testLossAndStartOffset(t *testing.T, lossSeed uint64) {
	const published = 6 * time.Second
	const videoDelay = 800 * time.Millisecond
	video := vp8Stream(t, loopFrames(readIVFFrames(t, fixture(mediafixture.VP8)), published-videoDelay), videoDelay)
	audio := opusStream(t, loopFrames(readOpusFrames(t, fixture(mediafixture.Opus)), published), 0)
	lost := map[*stream]map[int]bool{}
	r := newTestRecorder(t, Config{})
	_, file := recordAV(t, r, video, audio, publishOptions{
		ntp0: time.Now(), loss: 0.03, rng: rand.New(rand.NewPCG(lossSeed, lossSeed)), lost: lost,
	})
	if len(lost[video]) < 2 || len(lost[audio]) < 2 {
		t.Fatalf("loss hit %d video and %d audio frames; the seed should hit both", len(lost[video]), len(lost[audio]))
	}
	if errs := ffmpegDecodeErrors(t, file); errs != "" {
		t.Fatalf("ffmpeg decode errors with 3%% loss:\n%s", errs)
	}
	// The first frames the file can hold: the first audio frame that
	// arrived, and the first video keyframe that arrived whole.
	firstAudio := -1
	for i := range audio.frames {
		if !lost[audio][i] {
			firstAudio = i
			break
		}
	}
	firstVideo := -1
	for i, f := range video.frames {
		if f.key && !lost[video][i] {
			firstVideo = i
			break
		}
	}
	want := (video.offset + video.frames[firstVideo].at - audio.offset - audio.frames[firstAudio].at).Seconds()
	vt, at := packetTimes(t, file, "v:0"), packetTimes(t, file, "a:0")
	if len(vt) == 0 || len(at) == 0 {
		t.Fatalf("file has %d video and %d audio packets", len(vt), len(at))
	}
	got := vt[0] - at[0]
	t.Logf("first frames in file: video %d, audio %d; lost frames: video %d, audio %d; first recorded video %.3fs, audio %.3fs; offset %.3fs, want %.3fs",
		firstVideo, firstAudio, len(lost[video]), len(lost[audio]), vt[0], at[0], got, want)
	if math.Abs(got-want) > 0.050 {
		t.Fatalf("audio/video start offset %.3fs, want %.3fs", got, want)
	}
	m, err := ReadManifest(strings.TrimSuffix(file, ".webm") + ".json")
	if err != nil {
		t.Fatal(err)
	}
	if m.PacketsLost == 0 {
		t.Fatalf("manifest counts no loss: %+v", m)
	}
}

func TestRecordH264ToMatroska(t *testing.T) {
	requireFFmpeg(t)
	const published = 4 * time.Second
	video := h264Stream(t, loopFrames(readH264Frames(t, fixture(mediafixture.H264)), published), 0)
	audio := opusStream(t, loopFrames(readOpusFrames(t, fixture(mediafixture.Opus)), published), 0)
	r := newTestRecorder(t, Config{})
	_, file := recordAV(t, r, video, audio, publishOptions{ntp0: time.Now()})
	if !strings.HasSuffix(file, ".mkv") {
		t.Fatalf("H.264 file %s is not Matroska", file)
	}
	p := ffprobe(t, file)
	if len(p.Streams) != 2 || p.Streams[0].CodecName != "h264" || p.Streams[0].Width != 320 || p.Streams[0].Height != 240 ||
		p.Streams[1].CodecName != "opus" || !strings.Contains(p.Format.FormatName, "matroska") {
		t.Fatalf("ffprobe: %+v", p)
	}
	if d := parseSeconds(t, p.Format.Duration); math.Abs(d-published.Seconds()) > 0.5 {
		t.Fatalf("duration %.3fs, published %v", d, published)
	}
	if errs := ffmpegDecodeErrors(t, file); errs != "" {
		t.Fatalf("ffmpeg decode errors:\n%s", errs)
	}
	m, err := ReadManifest(strings.TrimSuffix(file, ".mkv") + ".json")
	if err != nil {
		t.Fatal(err)
	}
	if m.Container != "matroska" || m.Tracks[0].CodecID != "V_MPEG4/ISO/AVC" || m.Tracks[0].Frames != uint64(len(video.frames)) {
		t.Fatalf("manifest %+v", m)
	}
}

// TestRecordVP9AndAV1 records video-only streams of the other WebM codecs.
func TestRecordVP9AndAV1(t *testing.T) {
	requireFFmpeg(t)
	for _, c := range []struct {
		name, mime, ffname string
		payloader          rtp.Payloader
	}{
		{"vp9", codec.MimeTypeVP9, "vp9", &codecs.VP9Payloader{}},
		{"av1", codec.MimeTypeAV1, "av1", &codecs.AV1Payloader{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			const published = 2400 * time.Millisecond
			frames := loopFrames(readIVFFrames(t, mediafixture.Path(c.name+".ivf")), published)
			video := newStream(t, forwarding.Codec{MimeType: c.mime, ClockRate: 90000, PayloadType: 98}, c.payloader, frames, 4444, 0)
			r := newTestRecorder(t, Config{})
			info := testInfo()
			info.ExpectedTracks = 1
			rec, err := r.Start(t.Context(), info)
			if err != nil {
				t.Fatal(err)
			}
			video.attach(t, rec, "video")
			publish(t, publishOptions{ntp0: time.Now()}, video)
			video.end(t)
			waitDone(t, rec)
			file := filepath.Join(r.Dir(), rec.Status().Files[0])
			p := ffprobe(t, file)
			if len(p.Streams) != 1 || p.Streams[0].CodecName != c.ffname || p.Streams[0].Width != 160 ||
				!strings.HasSuffix(file, ".webm") {
				t.Fatalf("%s: ffprobe %+v", file, p)
			}
			if d := parseSeconds(t, p.Format.Duration); math.Abs(d-published.Seconds()) > 0.5 {
				t.Fatalf("duration %.3fs, published %v", d, published)
			}
			if errs := ffmpegDecodeErrors(t, file); errs != "" {
				t.Fatalf("ffmpeg decode errors:\n%s", errs)
			}
			if n := len(packetTimes(t, file, "v:0")); n != len(frames) {
				t.Fatalf("file has %d frames, published %d", n, len(frames))
			}
		})
	}
}

// TestTimestampJumpIsNotAGap: a sender whose RTP clock jumps an hour ahead
// (a restarted encoder keeping its SSRC) does not make an hour-long file.
func TestTimestampJumpIsNotAGap(t *testing.T) {
	requireFFmpeg(t)
	audio := opusStream(t, loopFrames(readOpusFrames(t, fixture(mediafixture.Opus)), 2*time.Second), 0)
	for _, pk := range audio.pkts[50:] {
		for _, p := range pk {
			p.Timestamp += 3600 * 48000
		}
	}
	r := newTestRecorder(t, Config{})
	info := testInfo()
	info.ExpectedTracks = 1
	rec, err := r.Start(t.Context(), info)
	if err != nil {
		t.Fatal(err)
	}
	audio.attach(t, rec, "audio")
	publish(t, publishOptions{}, audio)
	audio.end(t)
	waitDone(t, rec)
	file := filepath.Join(r.Dir(), rec.Status().Files[0])
	if d := parseSeconds(t, ffprobe(t, file).Format.Duration); d > 2.5 {
		t.Fatalf("file lasts %.3fs for 2s of audio", d)
	}
	if errs := ffmpegDecodeErrors(t, file); errs != "" {
		t.Fatalf("ffmpeg decode errors:\n%s", errs)
	}
	if n := len(packetTimes(t, file, "a:0")); n != len(audio.frames) {
		t.Fatalf("file has %d frames, published %d", n, len(audio.frames))
	}
}

// TestSourceSwitchContinuesTrack: the publisher replaces its track (a new
// SSRC, new sequence numbers and timestamps) in the middle of a recording;
// the file goes on without a gap or a step back.
func TestSourceSwitchContinuesTrack(t *testing.T) {
	requireFFmpeg(t)
	frames := readIVFFrames(t, fixture(mediafixture.VP8)) // keyframes every 15 frames
	before := vp8Stream(t, frames[:30], 0)
	after := newStream(t, forwarding.Codec{MimeType: codec.MimeTypeVP8, ClockRate: 90000, PayloadType: 96},
		&codecs.VP8Payloader{EnablePictureID: true}, frames[30:], 5555, 0)
	after.pub = before.pub
	r := newTestRecorder(t, Config{})
	info := testInfo()
	info.ExpectedTracks = 1
	rec, err := r.Start(t.Context(), info)
	if err != nil {
		t.Fatal(err)
	}
	before.attach(t, rec, "video")
	publish(t, publishOptions{}, before)
	publish(t, publishOptions{}, after)
	before.end(t)
	waitDone(t, rec)
	file := filepath.Join(r.Dir(), rec.Status().Files[0])
	pts := packetTimes(t, file, "v:0")
	if len(pts) != len(frames) {
		t.Fatalf("file has %d frames, published %d", len(pts), len(frames))
	}
	for i := 1; i < len(pts); i++ {
		if d := pts[i] - pts[i-1]; d <= 0 || d > 0.1 {
			t.Fatalf("frame %d: step of %.3fs", i, d)
		}
	}
	if errs := ffmpegDecodeErrors(t, file); errs != "" {
		t.Fatalf("ffmpeg decode errors:\n%s", errs)
	}
}
