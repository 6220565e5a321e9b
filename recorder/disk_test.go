package recorder

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/rtcio-gateway/rtcio-gateway/forwarding"
	"github.com/rtcio-gateway/rtcio-gateway/internal/mediafixture"
	"github.com/rtcio-gateway/rtcio-gateway/internal/testenv"
)

// countingWriter is a subscriber that counts what it receives.
type countingWriter struct{ n atomic.Int64 }

func (w *countingWriter) WriteRTP(_ *rtp.Header, payload []byte) (int, error) {
	w.n.Add(1)
	return len(payload), nil
}

// TestFullDiskStopsRecordingNotForwarding fills a small filesystem: the
// recording stops with a clear error in its status and manifest, while the
// publication goes on delivering every packet to a subscriber.
func TestFullDiskStopsRecordingNotForwarding(t *testing.T) {
	dir := testenv.MountTmpfs(t, "160k")
	const published = 40 * time.Second
	video := vp8Stream(t, loopFrames(readIVFFrames(t, fixture(mediafixture.VP8)), published), 0)
	audio := opusStream(t, loopFrames(readOpusFrames(t, fixture(mediafixture.Opus)), published), 0)
	sub := &countingWriter{}
	if _, err := video.pub.Subscribe(t.Context(), forwarding.DownTrackConfig{SSRC: 9, PayloadType: 96, Writer: sub, QueueSize: 8192}); err != nil {
		t.Fatal(err)
	}
	r := newTestRecorder(t, Config{Dir: dir, MinFreeBytes: 32 << 10})
	rec, err := r.Start(t.Context(), testInfo())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []*stream{video, audio} {
		if _, _, err := rec.Attach(s.pub, "track"); err != nil {
			t.Fatal(err)
		}
	}
	publish(t, publishOptions{ntp0: time.Now()}, video, audio)
	waitDone(t, rec)

	st := rec.Status()
	if st.State != StateFailed || st.EndReason != ReasonWriteError || st.Err == nil ||
		!strings.Contains(st.Err.Error(), "no space left on device") {
		t.Fatalf("status after a full disk: %+v", st)
	}
	t.Logf("recording error: %v", st.Err)
	m, err := ReadManifest(filepath.Join(dir, strings.TrimSuffix(st.Files[0], ".webm")+".json"))
	if err != nil {
		t.Fatal(err)
	}
	if m.State != StateFailed || m.EndReason != ReasonWriteError || !strings.Contains(m.Error, "no space left on device") || m.End == nil {
		t.Fatalf("manifest after a full disk: %+v", m)
	}
	// What reached the disk before it filled up is kept and readable.
	if _, err := exec.LookPath("ffprobe"); err == nil {
		if p := ffprobe(t, filepath.Join(dir, st.Files[0])); len(p.Streams) != 2 {
			t.Fatalf("the failed file has streams %+v", p.Streams)
		}
	}

	// Forwarding went on: the subscriber gets every packet published, also
	// those after the recording failed.
	var sent int64
	for _, f := range video.pkts {
		sent += int64(len(f))
	}
	eventually(t, 10*time.Second, func() bool { return sub.n.Load() >= sent })
	if got := sub.n.Load(); got != sent {
		t.Fatalf("subscriber got %d of %d packets", got, sent)
	}
	// The stopped recording detached its sinks from the publications.
	eventually(t, 10*time.Second, func() bool { return video.pub.Stats().Sinks == 0 })
	if s := video.pub.Stats(); s.Sinks != 0 || s.Subscribers != 1 {
		t.Fatalf("publication after the failed recording: %+v", s)
	}

	// The next recording into the full directory fails at once with a
	// clear error.
	if _, err := r.Start(t.Context(), testInfo()); err == nil || !strings.Contains(err.Error(), "full") {
		t.Fatalf("Start on a full disk: %v", err)
	}
}

func TestUnusableDirectoryIsAnError(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := New(Config{Dir: filepath.Join(file, "sub")})
	if err == nil || !strings.Contains(err.Error(), "output directory") {
		t.Fatalf("New under a file: %v", err)
	}
}
