package recorder

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rtcio-gateway/rtcio-gateway/internal/mediafixture"
)

// checkFiles runs ffprobe and ffmpeg on every file of a recording and
// returns their manifests. streams gives each file's stream count (the last
// one repeats).
func checkFiles(t *testing.T, dir string, files []string, streams ...int) []*Manifest {
	t.Helper()
	var ms []*Manifest
	for i, f := range files {
		path := filepath.Join(dir, f)
		want := streams[min(i, len(streams)-1)]
		if p := ffprobe(t, path); len(p.Streams) != want {
			t.Fatalf("file %d (%s) has streams %+v, want %d", i+1, f, p.Streams, want)
		}
		if errs := ffmpegDecodeErrors(t, path); errs != "" {
			t.Fatalf("file %d (%s): ffmpeg decode errors:\n%s", i+1, f, errs)
		}
		m, err := ReadManifest(strings.TrimSuffix(path, filepath.Ext(path)) + ".json")
		if err != nil {
			t.Fatal(err)
		}
		if m.Part != i+1 || m.File != filepath.Base(f) || (i > 0 && m.Previous != filepath.Base(files[i-1])) {
			t.Fatalf("file %d: manifest part %d file %q previous %q", i+1, m.Part, m.File, m.Previous)
		}
		ms = append(ms, m)
	}
	return ms
}

func TestRollAtMaxDuration(t *testing.T) {
	requireFFmpeg(t)
	const published = 8 * time.Second
	video := vp8Stream(t, loopFrames(readIVFFrames(t, fixture(mediafixture.VP8)), published), 0)
	audio := opusStream(t, loopFrames(readOpusFrames(t, fixture(mediafixture.Opus)), published), 0)
	r := newTestRecorder(t, Config{MaxDuration: 3 * time.Second})
	rec, _ := recordAV(t, r, video, audio, publishOptions{ntp0: time.Now()})
	files := rec.Status().Files
	if len(files) != 3 {
		t.Fatalf("files %v, want 3 of at most 3s", files)
	}
	ms := checkFiles(t, r.Dir(), files, 2)
	var total int64
	for i, m := range ms {
		want := ReasonMaxDuration
		if i == len(ms)-1 {
			want = ReasonTracksEnded
		}
		if m.EndReason != want || m.DurationMs > 3000 || m.State != StateDone {
			t.Fatalf("file %d: %s after %d ms (%s)", i+1, m.EndReason, m.DurationMs, m.State)
		}
		total += m.DurationMs
	}
	// The files split the media, at keyframes: nothing is lost between them.
	if math.Abs(float64(total-published.Milliseconds())) > 100 {
		t.Fatalf("files hold %d ms in total, published %v", total, published)
	}
}

func TestRollAtMaxFileSize(t *testing.T) {
	requireFFmpeg(t)
	const published = 20 * time.Second
	const maxSize = 96 << 10
	video := vp8Stream(t, loopFrames(readIVFFrames(t, fixture(mediafixture.VP8)), published), 0)
	audio := opusStream(t, loopFrames(readOpusFrames(t, fixture(mediafixture.Opus)), published), 0)
	r := newTestRecorder(t, Config{MaxFileSize: maxSize})
	rec, _ := recordAV(t, r, video, audio, publishOptions{ntp0: time.Now()})
	files := rec.Status().Files
	if len(files) < 3 {
		t.Fatalf("files %v: 20 s of media should not fit in two files of %d bytes", files, maxSize)
	}
	for i, m := range checkFiles(t, r.Dir(), files, 2) {
		st, err := os.Stat(filepath.Join(r.Dir(), files[i]))
		if err != nil {
			t.Fatal(err)
		}
		// A file ends with the frame that reached the limit and the
		// closing cluster.
		if st.Size() > maxSize+8<<10 || m.Bytes != st.Size() {
			t.Fatalf("file %d is %d bytes (manifest %d), limit %d", i+1, st.Size(), m.Bytes, maxSize)
		}
	}
}

// TestStopAndStartMakesSecondFile stops a recording and starts another on
// the same publications.
func TestStopAndStartMakesSecondFile(t *testing.T) {
	requireFFmpeg(t)
	video := vp8Stream(t, loopFrames(readIVFFrames(t, fixture(mediafixture.VP8)), 6*time.Second), 0)
	audio := opusStream(t, loopFrames(readOpusFrames(t, fixture(mediafixture.Opus)), 6*time.Second), 0)
	first, second := *video, *audio
	first.frames, second.frames = video.frames[:45], audio.frames[:150] // 3 s
	r := newTestRecorder(t, Config{})
	var dirs []string
	for part, pair := range [][2]*stream{{&first, &second}, {video, audio}} {
		rec, err := r.Start(t.Context(), testInfo())
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range pair {
			if _, _, err := rec.Attach(s.pub, "t"); err != nil {
				t.Fatal(err)
			}
		}
		if part == 1 {
			// The rest of the media, from 3 s on.
			pair[0].frames, pair[0].pkts = video.frames[45:], video.pkts[45:]
			pair[1].frames, pair[1].pkts = audio.frames[150:], audio.pkts[150:]
		} else {
			pair[0].pkts, pair[1].pkts = video.pkts[:45], audio.pkts[:150]
		}
		publish(t, publishOptions{ntp0: time.Now()}, pair[0], pair[1])
		waitFiles(t, rec, 1)
		if err := rec.Stop(); err != nil {
			t.Fatal(err)
		}
		st := rec.Status()
		if st.State != StateDone || st.EndReason != ReasonStopped || len(st.Files) != 1 {
			t.Fatalf("recording %d: %+v", part+1, st)
		}
		dirs = append(dirs, st.Files[0])
	}
	if dirs[0] == dirs[1] {
		t.Fatalf("both recordings wrote %s", dirs[0])
	}
	for _, f := range dirs {
		checkFiles(t, r.Dir(), []string{f}, 2)
	}
}

// TestLateTrackRollsToNewFile starts with audio only; the video track added
// later goes into a second file that holds both.
func TestLateTrackRollsToNewFile(t *testing.T) {
	requireFFmpeg(t)
	video := vp8Stream(t, loopFrames(readIVFFrames(t, fixture(mediafixture.VP8)), 3*time.Second), 2*time.Second)
	audio := opusStream(t, loopFrames(readOpusFrames(t, fixture(mediafixture.Opus)), 5*time.Second), 0)
	r := newTestRecorder(t, Config{SyncWait: 100 * time.Millisecond})
	info := testInfo()
	info.ExpectedTracks = 0
	rec, err := r.Start(t.Context(), info)
	if err != nil {
		t.Fatal(err)
	}
	audio.attach(t, rec, "audio")
	early := *audio
	early.frames, early.pkts = audio.frames[:100], audio.pkts[:100] // 2 s
	publish(t, publishOptions{ntp0: time.Now()}, &early)
	waitFiles(t, rec, 1)
	video.attach(t, rec, "video")
	// One more second of both; the next file starts once the video is
	// there (the packets are fed faster than real time, so wait for it
	// before feeding the rest).
	mid, midVideo := *audio, *video
	mid.frames, mid.pkts, mid.sentFirst = audio.frames[100:150], audio.pkts[100:150], true
	midVideo.frames, midVideo.pkts = video.frames[:15], video.pkts[:15]
	ntp0 := time.Now()
	publish(t, publishOptions{ntp0: ntp0}, &midVideo, &mid)
	waitFiles(t, rec, 2)
	audio.frames, audio.pkts, audio.sentFirst = audio.frames[150:], audio.pkts[150:], true
	video.frames, video.pkts, video.sentFirst = video.frames[15:], video.pkts[15:], true
	publish(t, publishOptions{ntp0: ntp0}, video, audio)
	video.end(t)
	audio.end(t)
	waitDone(t, rec)
	files := rec.Status().Files
	if len(files) != 2 {
		t.Fatalf("files %v, want an audio file and an audio+video file", files)
	}
	ms := checkFiles(t, r.Dir(), files, 1, 2)
	if ms[0].EndReason != ReasonTrackAdded || len(ms[0].Tracks) != 1 || len(ms[1].Tracks) != 2 {
		t.Fatalf("first file %+v, second %+v", ms[0], ms[1])
	}
}

// generateH264 encodes a short test pattern with ffmpeg.
func generateH264(t *testing.T, size string, seconds int) []mediaFrame {
	t.Helper()
	out := filepath.Join(t.TempDir(), "gen.h264")
	cmd := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i", "testsrc=size="+size+":rate=15",
		"-frames:v", strconv.Itoa(seconds*15), "-c:v", "libx264", "-profile:v", "baseline",
		"-g", "15", "-bf", "0", "-x264-params", "repeat-headers=1", "-f", "h264", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Skipf("ffmpeg cannot encode H.264 here: %v %s", err, b)
	}
	return readH264Frames(t, out)
}

// TestH264ResolutionChangeRolls switches an H.264 stream from 320x240 to
// 160x120: Matroska's codec private data describes one set of parameter
// sets, so the recording continues in a new file.
func TestH264ResolutionChangeRolls(t *testing.T) {
	requireFFmpeg(t)
	big := readH264Frames(t, fixture(mediafixture.H264))
	small := generateH264(t, "160x120", 2)
	frames := append([]mediaFrame(nil), big...)
	for _, f := range small {
		f.at += time.Duration(len(big)) * time.Second / 15
		frames = append(frames, f)
	}
	video := h264Stream(t, frames, 0)
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
	files := rec.Status().Files
	if len(files) != 2 {
		t.Fatalf("files %v, want one per resolution", files)
	}
	ms := checkFiles(t, r.Dir(), files, 1)
	if ms[0].EndReason != ReasonResolution || ms[0].Tracks[0].Width != 320 || ms[1].Tracks[0].Width != 160 ||
		ms[0].Tracks[0].Frames != uint64(len(big)) || ms[1].Tracks[0].Frames != uint64(len(small)) {
		t.Fatalf("manifests %+v %+v", ms[0], ms[1])
	}
	if p := ffprobe(t, filepath.Join(r.Dir(), files[1])); p.Streams[0].Width != 160 || p.Streams[0].Height != 120 {
		t.Fatalf("second file %+v", p.Streams)
	}
}

// TestVP8ResolutionChange switches a VP8 stream from 320x240 to 160x120.
// VP8 carries its size in every keyframe, so by default the file goes on
// (and decodes cleanly); RollOnResolutionChange starts a new file instead.
func TestVP8ResolutionChange(t *testing.T) {
	requireFFmpeg(t)
	out := filepath.Join(t.TempDir(), "small.ivf")
	if b, err := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=160x120:rate=15",
		"-frames:v", "30", "-c:v", "libvpx", "-g", "15", "-f", "ivf", out).CombinedOutput(); err != nil {
		t.Skipf("ffmpeg cannot encode VP8 here: %v %s", err, b)
	}
	big := readIVFFrames(t, fixture(mediafixture.VP8))
	small := readIVFFrames(t, out)
	frames := append([]mediaFrame(nil), big...)
	for _, f := range small {
		f.at += time.Duration(len(big)) * time.Second / 15
		frames = append(frames, f)
	}
	for _, roll := range []bool{false, true} {
		t.Run(fmt.Sprint("roll=", roll), func(t *testing.T) {
			video := vp8Stream(t, frames, 0)
			r := newTestRecorder(t, Config{RollOnResolutionChange: roll})
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
			files := rec.Status().Files
			ms := checkFiles(t, r.Dir(), files, 1)
			switch {
			case !roll && (len(files) != 1 || ms[0].Tracks[0].Frames != uint64(len(frames))):
				t.Fatalf("without rolling: files %v, manifest %+v", files, ms[0])
			case roll && (len(files) != 2 || ms[0].EndReason != ReasonResolution || ms[1].Tracks[0].Width != 160):
				t.Fatalf("rolling: files %v, manifests %+v", files, ms)
			}
		})
	}
}
