package sfu_test

import (
	"context"
	"io/fs"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rtcio-gateway/rtcio-gateway/internal/testenv"
	"github.com/rtcio-gateway/rtcio-gateway/recorder"
)

// manifests returns the manifests below dir.
func manifests(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".json") && !strings.HasSuffix(p, recorder.RoomManifestSuffix) {
			out = append(out, p)
		}
		return nil
	})
	return out
}

// lastPacketTime is the time of the last video packet ffprobe can read.
func lastPacketTime(t *testing.T, path string) float64 {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pts_time", "-of", "csv=p=0", path).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe %s: %v\n%s", path, err, out)
	}
	lines := strings.Fields(string(out))
	if len(lines) == 0 {
		return 0
	}
	d, _ := strconv.ParseFloat(lines[len(lines)-1], 64)
	return d
}

// recordingGateway runs the gateway binary recording every SFU room into
// dir, with a publisher and a subscriber in one room, until at least
// seconds of media went through.
func recordingGateway(t *testing.T, dir string, seconds int, extra ...string) (*testenv.GatewayProcess, *client) {
	t.Helper()
	if _, err := exec.LookPath("ffprobe"); err != nil {
		t.Skip("ffprobe missing (scripts/test.sh installs ffmpeg)")
	}
	args := append([]string{"--set", "recording.mode=all", "--set", "recording.dir=" + dir,
		"--set", "recording.flush_interval=500ms"}, extra...)
	g := testenv.StartGatewayProcess(t, args...)
	a := dial(t, g.URL, "rec")
	st := publishFixture(t, a.Socket, "camera", "crash-cam", map[string]any{"name": "a"})
	b := dial(t, g.URL, "rec")
	// The VP8 fixture runs at 30 frames per second, one packet each.
	b.waitRTP(t, 30*seconds, "video-"+st.MediaStreamID())
	return g, b
}

// TestRecordingSurvivesKill9: after the gateway is killed, the file plays up
// to about the last flush, and the next start marks the manifest
// interrupted.
func TestRecordingSurvivesKill9(t *testing.T) {
	dir := t.TempDir()
	g, _ := recordingGateway(t, dir, 3)
	if err := g.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if _, ok := g.Wait(10 * time.Second); !ok {
		t.Fatal("gateway survived SIGKILL")
	}
	ms := manifests(t, dir)
	if len(ms) != 1 {
		t.Fatalf("manifests %v, want one", ms)
	}
	media := strings.TrimSuffix(ms[0], ".json") + ".webm"
	// A killed file has no duration in its header: read its packets.
	if d := lastPacketTime(t, media); d < 1.5 {
		t.Errorf("killed recording holds %.2fs of video, want at least the media up to the last flush (~2.5s)", d)
	}
	if m, err := recorder.ReadManifest(ms[0]); err != nil || m.State != recorder.StateRecording {
		t.Fatalf("manifest after kill: %+v %v", m, err)
	}

	// The next start recovers it.
	cmd := exec.Command(g.Bin, "serve", "--listen", testenv.FreeAddr(t), "--set", "recording.dir="+dir,
		"--set", "media.allowed_ips=127.0.0.0/8")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	deadline := time.Now().Add(waitFor)
	tick := time.NewTicker(50 * time.Millisecond) // the manifest changes with no event to wait on
	defer tick.Stop()
	for {
		m, err := recorder.ReadManifest(ms[0])
		if err == nil && m.State == recorder.StateInterrupted {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("next start did not mark the manifest interrupted: %+v %v", m, err)
		}
		<-tick.C
	}
}

// TestSIGTERMFinishesRecording: SIGTERM during a recording turns readiness
// unready while liveness stays up, completes the manifest, leaves a file
// that plays, and exits within the shutdown timeout.
func TestSIGTERMFinishesRecording(t *testing.T) {
	dir := t.TempDir()
	g, _ := recordingGateway(t, dir, 2, "--set", "shutdown.timeout=8s", "--set", "shutdown.readiness_delay=1s")
	status := func(path string) int {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, g.URL+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	start := time.Now()
	if err := g.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	sawUnreadyAlive := false
	tick := time.NewTicker(20 * time.Millisecond) // probing, as a load balancer does
	defer tick.Stop()
	for time.Since(start) < 900*time.Millisecond && !sawUnreadyAlive {
		sawUnreadyAlive = status("/readyz") == http.StatusServiceUnavailable && status("/healthz") == http.StatusOK
		<-tick.C
	}
	if !sawUnreadyAlive {
		t.Error("never saw readiness unready while liveness was up")
	}
	err, ok := g.Wait(10 * time.Second)
	if !ok {
		t.Fatal("gateway still running 10s after SIGTERM")
	}
	if err != nil {
		t.Errorf("gateway exit: %v", err)
	}
	if took := time.Since(start); took > 8*time.Second {
		t.Errorf("exit took %v, timeout 8s", took)
	}
	ms := manifests(t, dir)
	if len(ms) != 1 {
		t.Fatalf("manifests %v, want one", ms)
	}
	m, err := recorder.ReadManifest(ms[0])
	if err != nil || m.State != recorder.StateDone {
		t.Fatalf("manifest after SIGTERM: %+v %v\n%s", m, err, g.Logs())
	}
	media := strings.TrimSuffix(ms[0], ".json") + ".webm"
	if kinds := ffprobeStreams(t, media); len(kinds) != 2 {
		t.Errorf("file has streams %v, want audio and video", kinds)
	}
}
