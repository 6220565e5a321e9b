package recorder

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4/pkg/media"

	"github.com/rtcio-gateway/rtcio-gateway/codec"
	"github.com/rtcio-gateway/rtcio-gateway/forwarding"
	"github.com/rtcio-gateway/rtcio-gateway/internal/mediafixture"
)

// helperEnv selects the child-process mode of the test binary.
const (
	helperEnv    = "RECORDER_TEST_HELPER"
	helperDirEnv = "RECORDER_TEST_DIR"
	crashFlush   = 200 * time.Millisecond
	crashWindow  = 200 * time.Millisecond
)

// rtpSampleWriter packetizes the real-time fixture players' samples into a
// publication, like a publisher's encoder and RTP stack would.
type rtpSampleWriter struct {
	mu    sync.Mutex
	pub   *forwarding.Publication
	pz    rtp.Packetizer
	clock uint32
	fed   time.Duration
	first time.Time // when the first sample was sent
}

func (w *rtpSampleWriter) WriteSample(s media.Sample) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.first.IsZero() {
		w.first = time.Now()
	}
	for _, p := range w.pz.Packetize(s.Data, uint32(s.Duration*time.Duration(w.clock)/time.Second)) {
		if err := w.pub.WriteRTP(p); err != nil {
			return err
		}
	}
	w.fed += s.Duration
	return nil
}

func (w *rtpSampleWriter) fedTime() time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.fed
}

// runHelper records the fixtures played in real time until it is killed,
// printing how much media it has fed.
func runHelper() int {
	dir := os.Getenv(helperDirEnv)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	r, err := New(Config{Dir: dir, FlushInterval: crashFlush, InterleaveWindow: crashWindow, SyncWait: 300 * time.Millisecond,
		CheckpointInterval: time.Second})
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	rec, err := r.Start(ctx, testInfo())
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	type track struct {
		codec forwarding.Codec
		pl    rtp.Payloader
		play  func(context.Context, mediafixture.SampleWriter) error
	}
	tracks := []track{
		{forwarding.Codec{MimeType: codec.MimeTypeVP8, ClockRate: 90000, PayloadType: 96}, &codecs.VP8Payloader{EnablePictureID: true},
			func(ctx context.Context, w mediafixture.SampleWriter) error {
				return mediafixture.PlayIVF(ctx, mediafixture.Path(mediafixture.VP8), w)
			}},
		{forwarding.Codec{MimeType: codec.MimeTypeOpus, ClockRate: 48000, PayloadType: 111}, &codecs.OpusPayloader{},
			func(ctx context.Context, w mediafixture.SampleWriter) error {
				return mediafixture.PlayOgg(ctx, mediafixture.Path(mediafixture.Opus), w)
			}},
	}
	var writers []*rtpSampleWriter
	var wg sync.WaitGroup
	for i, tr := range tracks {
		pub, err := forwarding.NewPublication(ctx, forwarding.PublicationConfig{Codec: tr.codec})
		if err != nil {
			fmt.Println("error", err)
			return 1
		}
		if _, _, err := rec.Attach(pub, fmt.Sprint("track", i)); err != nil {
			fmt.Println("error", err)
			return 1
		}
		w := &rtpSampleWriter{pub: pub, clock: tr.codec.ClockRate,
			pz: rtp.NewPacketizer(1200, tr.codec.PayloadType, uint32(100+i), tr.pl, rtp.NewRandomSequencer(), tr.codec.ClockRate)}
		writers = append(writers, w)
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = tr.play(ctx, w)
		}()
	}
	// Report progress at every flush interval until killed.
	tick := time.NewTicker(crashFlush)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			_ = rec.Stop()
			return 0
		case <-tick.C:
			fed := min(writers[0].fedTime(), writers[1].fedTime())
			fmt.Printf("fed %d files %d\n", fed.Milliseconds(), len(rec.Status().Files))
		}
	}
}

func TestKill9LeavesPlayableFile(t *testing.T) {
	requireFFmpeg(t)
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"=1", helperDirEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = testWriter{t}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	t.Cleanup(func() {
		if !killed {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})

	// Wait until the child has fed 3 s of media into an open file.
	const target = 3 * time.Second
	var fed time.Duration
	lines := bufio.NewScanner(out)
	for lines.Scan() {
		var ms, files int
		if _, err := fmt.Sscanf(lines.Text(), "fed %d files %d", &ms, &files); err != nil {
			t.Fatalf("helper: %s", lines.Text())
		}
		if fed = time.Duration(ms) * time.Millisecond; fed >= target && files == 1 {
			break
		}
	}
	if fed < target {
		t.Fatalf("helper stopped after feeding %v: %v", fed, lines.Err())
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed = true
	_ = cmd.Wait()

	var file, manifest string
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case strings.HasSuffix(p, ".webm"):
			file = p
		case strings.HasSuffix(p, ".json") && !strings.HasPrefix(d.Name(), "."):
			manifest = p
		}
		return nil
	})
	if file == "" || manifest == "" {
		t.Fatalf("no file or manifest in %s", dir)
	}
	p := ffprobe(t, file)
	if len(p.Streams) != 2 {
		t.Fatalf("killed file has streams %+v", p.Streams)
	}
	// Everything fed up to one flush interval, the interleave window and
	// the file's start-up wait before the kill must be in the file.
	vt, at := packetTimes(t, file, "v:0"), packetTimes(t, file, "a:0")
	if len(vt) == 0 || len(at) == 0 {
		t.Fatalf("killed file has %d video and %d audio packets", len(vt), len(at))
	}
	lastV, lastA := vt[len(vt)-1], at[len(at)-1]
	bound := (fed - crashFlush - crashWindow - 300*time.Millisecond - 200*time.Millisecond).Seconds()
	t.Logf("fed %v before the kill; file holds video to %.3fs, audio to %.3fs", fed, lastV, lastA)
	if lastV < bound || lastA < bound {
		t.Fatalf("killed file holds video to %.3fs and audio to %.3fs, want at least %.3fs", lastV, lastA, bound)
	}
	if errs := ffmpegDecodeErrors(t, file); errs != "" {
		t.Logf("ffmpeg on the killed file (a cut last frame is expected):\n%s", errs)
	}

	m, err := ReadManifest(manifest)
	if err != nil {
		t.Fatal(err)
	}
	if m.State != StateRecording {
		t.Fatalf("manifest after the kill is %q, want %q", m.State, StateRecording)
	}
	changed, err := Recover(dir, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(changed) != 1 || changed[0] != manifest {
		t.Fatalf("Recover changed %v, want [%s]", changed, manifest)
	}
	m, err = ReadManifest(manifest)
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(file); m.State != StateInterrupted || m.EndReason != ReasonInterruptedCrash || m.End == nil || m.Bytes != st.Size() {
		t.Fatalf("recovered manifest %+v", m)
	}
	// The last checkpoint (every second here) gives a lower bound of the
	// media in the file.
	if m.DurationMs < 1000 || m.DurationMs > int64(lastV*1000)+100 || m.PacketsReceived == 0 {
		t.Fatalf("recovered manifest holds %d ms and %d packets, file %.3fs", m.DurationMs, m.PacketsReceived, lastV)
	}
	// A second pass has nothing left to do, and no temporary file remains.
	if changed, err := Recover(dir, testLogger(t)); err != nil || len(changed) != 0 {
		t.Fatalf("second Recover: %v %v", changed, err)
	}
	leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(manifest), ".*.tmp"))
	if len(leftovers) != 0 {
		t.Fatalf("temporary files left: %v", leftovers)
	}
}
