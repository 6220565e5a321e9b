package main

import (
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rtcio-gateway/rtcio-gateway/internal/mediafixture"
	"github.com/rtcio-gateway/rtcio-gateway/internal/testenv"
	"github.com/rtcio-gateway/rtcio-gateway/recorder"
	"github.com/rtcio-gateway/rtcio-gateway/rtcio"
)

// TestJoinRecordsAReferenceServerRoom: `rtcio-gateway join` joins a mesh
// room served by the Node reference rtc.io server (not ours) and records
// the stream a Go publisher sends there.
func TestJoinRecordsAReferenceServerRoom(t *testing.T) {
	if _, err := exec.LookPath("ffprobe"); err != nil {
		t.Skip("ffprobe missing (scripts/test.sh installs ffmpeg)")
	}
	ref := testenv.StartRefServer(t)

	// A publisher in the reference server's room.
	api, err := rtcio.LoopbackAPI()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pub, err := rtcio.Dial(ctx, ref, rtcio.Options{API: api})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	audio, _ := mediafixture.NewOpusTrack("a", "ref-cam")
	video, _ := mediafixture.NewVP8Track("v", "ref-cam")
	playCtx, stopPlay := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = mediafixture.PlayIVF(playCtx, mediafixture.Path(mediafixture.VP8), video) }()
	go func() {
		defer wg.Done()
		_ = mediafixture.PlayOgg(playCtx, mediafixture.Path(mediafixture.Opus), audio)
	}()
	defer func() { stopPlay(); wg.Wait() }()
	st, err := rtcio.NewStream(audio, video)
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.Emit("camera", map[string]any{"name": "pub", "stream": st}); err != nil {
		t.Fatal(err)
	}
	_ = pub.Server().Emit("join-room", map[string]any{"roomId": "ref-room", "name": "pub"})

	bin := filepath.Join(t.TempDir(), "rtcio-gateway")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	dir := t.TempDir()
	cmd := exec.Command(bin, "join", "--url", ref, "--room", "ref-room", "--record", dir,
		"--set", "media.allowed_ips=127.0.0.0/8", "--set", "recording.flush_interval=500ms")
	var logs strings.Builder
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Kill()
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
		}
	}()

	// Wait until the recording holds a few seconds of media.
	var media string
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(100 * time.Millisecond) // files grow with no event to wait on
	defer tick.Stop()
	for media == "" || fileSize(media) < 60_000 {
		_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && strings.HasSuffix(p, ".webm") {
				media = p
			}
			return nil
		})
		if time.Now().After(deadline) {
			t.Fatalf("no recording grew in %s (file %q)\n%s", dir, media, logs.String())
		}
		<-tick.C
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		exited <- err
		if err != nil {
			t.Errorf("join exit: %v\n%s", err, logs.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("join still running after SIGTERM\n%s", logs.String())
	}
	m, err := recorder.ReadManifest(strings.TrimSuffix(media, ".webm") + ".json")
	if err != nil || m.State != recorder.StateDone {
		t.Fatalf("manifest: %+v %v\n%s", m, err, logs.String())
	}
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "stream=codec_type", "-of", "csv=p=0", media).CombinedOutput()
	if err != nil || len(strings.Fields(string(out))) != 2 {
		t.Fatalf("ffprobe: %v %s", err, out)
	}
}

func fileSize(p string) int64 {
	fi, err := os.Stat(p)
	if err != nil {
		return 0
	}
	return fi.Size()
}
