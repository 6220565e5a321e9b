package sfu_test

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rtcio-gateway/rtcio-gateway/gateway"
	"github.com/rtcio-gateway/rtcio-gateway/gateway/sfu"
	"github.com/rtcio-gateway/rtcio-gateway/internal/gatewaytest"
	"github.com/rtcio-gateway/rtcio-gateway/recorder"
)

// ffprobeStreams returns the codec types of a media file's streams.
func ffprobeStreams(t *testing.T, path string) []string {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "stream=codec_type", "-of", "csv=p=0", path).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe %s: %v\n%s", path, err, out)
	}
	return strings.Fields(string(out))
}

func adminPost(t *testing.T, url string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, nil)
	req.Header.Set("Authorization", "Bearer admin-token")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestRecordingControl: recording starts and stops by the admin API and by
// the server event; a recording stopped and started again makes a second
// file; each finished recording has a manifest and plays.
func TestRecordingControl(t *testing.T) {
	if _, err := exec.LookPath("ffprobe"); err != nil {
		t.Skip("ffprobe missing (scripts/test.sh installs ffmpeg)")
	}
	n := newNotices()
	dir := t.TempDir()
	cfg := gatewaytest.SFUConfig()
	cfg.Admin.Token = "admin-token"
	cfg.Recording.Dir = dir
	gw := gatewaytest.StartGateway(t, cfg, gateway.WithStreamNotices(n.add))
	const room = "rec"
	a := dial(t, gw.URL, room)
	st := publishFixture(t, a.Socket, "camera", "rec-cam", map[string]any{"name": "a"})
	b := dial(t, gw.URL, room)
	n.wait(t, "published", func(x sfu.Notice) bool { return x.Kind == sfu.StreamPublished && x.Stream == st.ID() })

	// First recording: started and stopped by the admin API.
	if code := adminPost(t, gw.URL+"/admin/v1/rooms/"+room+"/recording/start"); code != http.StatusOK {
		t.Fatalf("admin start: %d", code)
	}
	b.waitRTP(t, 120, trackIDs(st)...) // a few seconds of media go by
	if code := adminPost(t, gw.URL+"/admin/v1/rooms/"+room+"/recording/stop"); code != http.StatusOK {
		t.Fatalf("admin stop: %d", code)
	}
	first := n.wait(t, "first recording finished", func(x sfu.Notice) bool { return x.Kind == sfu.RecordingFinished })

	// Second recording: by the server event.
	_ = a.Server().Emit("recording", map[string]any{"roomId": room, "action": "start"})
	b.waitRTP(t, 240, trackIDs(st)...)
	_ = a.Server().Emit("recording", map[string]any{"roomId": room, "action": "stop"})
	second := n.wait(t, "second recording finished", func(x sfu.Notice) bool {
		return x.Kind == sfu.RecordingFinished && x.Recording != first.Recording
	})

	for _, rec := range []sfu.Notice{first, second} {
		m, err := recorder.ReadManifest(rec.Manifest)
		if err != nil {
			t.Fatalf("manifest of %s: %v", rec.Recording, err)
		}
		raw, _ := json.Marshal(m)
		if m.State != recorder.StateDone {
			t.Errorf("recording %s ended %s: %s", rec.Recording, m.State, raw)
		}
		media := strings.TrimSuffix(rec.Manifest, ".json") + ".webm"
		if _, err := os.Stat(media); err != nil {
			t.Fatalf("no media file beside %s: %v", rec.Manifest, err)
		}
		if kinds := ffprobeStreams(t, media); len(kinds) != 2 {
			t.Errorf("%s has streams %v, want audio and video", filepath.Base(media), kinds)
		}
	}
	if first.Manifest == second.Manifest {
		t.Fatalf("stop and start again wrote to the same file %s", first.Manifest)
	}
}
