package sfu_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/rtcio-gateway/rtcio-gateway/config"
	"github.com/rtcio-gateway/rtcio-gateway/gateway"
	"github.com/rtcio-gateway/rtcio-gateway/gateway/sfu"
	"github.com/rtcio-gateway/rtcio-gateway/internal/gatewaytest"
	"github.com/rtcio-gateway/rtcio-gateway/internal/testenv"
	"github.com/rtcio-gateway/rtcio-gateway/recorder"
	"github.com/rtcio-gateway/rtcio-gateway/rtcio"
)

func needFFmpeg(t *testing.T) {
	t.Helper()
	for _, bin := range []string{"ffprobe", "ffmpeg"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s missing (scripts/test.sh installs ffmpeg)", bin)
		}
	}
}

// probed is what ffprobe reads of a finished file.
type probed struct {
	Format struct {
		Duration string `json:"duration"`
	} `json:"format"`
	Streams []struct {
		CodecType string `json:"codec_type"`
		CodecName string `json:"codec_name"`
		Packets   string `json:"nb_read_packets"`
	} `json:"streams"`
}

func probeFile(t *testing.T, path string) (probed, float64) {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-count_packets", "-show_entries",
		"format=duration:stream=codec_type,codec_name,nb_read_packets", "-of", "json", path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v\n%s", path, err, out)
	}
	var p probed
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatalf("ffprobe output %s: %v", out, err)
	}
	d, err := strconv.ParseFloat(p.Format.Duration, 64)
	if err != nil {
		t.Fatalf("ffprobe %s: duration %q: %v", path, p.Format.Duration, err)
	}
	return p, d
}

// outbound sums what a page sent, over all its peer connections.
type outbound struct{ videoFrames, videoPackets, audioPackets uint64 }

func pageOutbound(t *testing.T, ctx context.Context, p *testenv.ConformancePeer) outbound {
	t.Helper()
	stats, err := p.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var o outbound
	for _, s := range stats {
		for _, out := range s.Outbound {
			switch out.Kind {
			case "video":
				o.videoFrames += out.FramesEncoded
				o.videoPackets += out.PacketsSent
			case "audio":
				o.audioPackets += out.PacketsSent
			}
		}
	}
	return o
}

// startRecordingBrowser is startBrowserSFU with every room recorded from
// its start (recording.mode all) into a temporary directory.
func startRecordingBrowser(t *testing.T) *browserEnv {
	t.Helper()
	needFFmpeg(t)
	testenv.SkipIfNoBrowser(t)
	web, err := testenv.NewWebHandler()
	if err != nil {
		t.Fatal(err)
	}
	n := newNotices()
	cfg := gatewaytest.SFUConfig()
	cfg.Recording.Mode = "all"
	cfg.Recording.Dir = t.TempDir()
	cfg.Metrics.Public = true
	gw := gatewaytest.StartGateway(t, cfg, gateway.WithStreamNotices(n.add))
	gw.Server.Handle("/", web)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return &browserEnv{gw: gw, notes: n, browser: testenv.StartBrowser(t), ctx: ctx}
}

// TestRecordingBrowser: a Chromium page publishes its fake camera and
// microphone for about 10 s into a room recorded from the start; closing
// the page ends the recording. The file has one video and one audio
// stream, decodes without an error, and lasts as long as the media went
// on: from the first frame written (the manifest's start) to the close,
// within 0.5 s.
func TestRecordingBrowser(t *testing.T) {
	needFFmpeg(t)
	testenv.SkipIfNoBrowser(t)
	const publishFor = 10 * time.Second
	env := startRecordingBrowser(t)
	gw, n, ctx := env.gw, env.notes, env.ctx

	const room = "rec-browser"
	// A second participant notes the RTP timestamps of the video frames
	// the publisher sent, to compare with the file's frame times.
	sub := newTimingSubscriber(t, gw.URL)
	join(t, sub.Socket, room)
	p := env.openPage(t, "alice")
	env.joinPage(t, p, room)
	st := env.publishPage(t, p, "camera", "alice")
	n.wait(t, "published", func(x sfu.Notice) bool { return x.Kind == sfu.StreamPublished && x.Stream == st.RTCIOStreamID })
	published := time.Now()
	atPublish := pageOutbound(t, ctx, p)

	// The workload: the page goes on publishing for publishFor.
	timer := time.NewTimer(publishFor)
	select {
	case <-timer.C:
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
	sent := pageOutbound(t, ctx, p)
	beforeClose := time.Now()
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	afterClose := time.Now()

	fin := n.wait(t, "recording finished", func(x sfu.Notice) bool {
		return x.Kind == sfu.RecordingFinished && x.Stream == st.RTCIOStreamID
	})
	m, err := recorder.ReadManifest(fin.Manifest)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(m)
	if m.State != recorder.StateDone {
		t.Fatalf("recording ended %s: %s", m.State, raw)
	}
	media := filepath.Join(filepath.Dir(fin.Manifest), m.File)
	info, got := probeFile(t, media)
	var kinds []string
	for _, s := range info.Streams {
		kinds = append(kinds, s.CodecType+"/"+s.CodecName+"/"+s.Packets)
	}
	t.Logf("file %s: %.3fs, streams %v, %d bytes; manifest start %s, duration %dms, end %s",
		m.File, got, kinds, m.Bytes, m.Start.Format(time.RFC3339Nano), m.DurationMs, m.EndReason)
	t.Logf("publisher: %d video frames, %d video and %d audio packets sent by the close (%d frames at the publish notice); publish notice %s, close %s..%s",
		sent.videoFrames, sent.videoPackets, sent.audioPackets, atPublish.videoFrames,
		published.UTC().Format(time.RFC3339Nano), beforeClose.UTC().Format(time.RFC3339Nano), afterClose.UTC().Format(time.RFC3339Nano))
	var nv, na int
	for _, s := range info.Streams {
		switch s.CodecType {
		case "video":
			nv++
		case "audio":
			na++
		}
	}
	if nv != 1 || na != 1 {
		t.Errorf("file has streams %v, want exactly one video and one audio", kinds)
	}
	checkDecodes(t, media, videoTimes(t, media), sub.frameTimes())

	// The media went on from the file's first frame until the page
	// closed; the close call took afterClose-beforeClose.
	lo, hi := beforeClose.Sub(m.Start).Seconds(), afterClose.Sub(m.Start).Seconds()
	t.Logf("published time (manifest start to close): %.3f..%.3fs; file %.3fs; since the publish notice %.3fs",
		lo, hi, got, beforeClose.Sub(published).Seconds())
	if got < lo-0.5 || got > hi+0.5 {
		t.Errorf("file lasts %.3fs, the media went on for %.3f..%.3fs: off by more than 0.5s", got, lo, hi)
	}
	if lo < publishFor.Seconds()-3 {
		t.Errorf("the file started %.3fs after the publish notice: it misses the start of the media",
			m.Start.Sub(published).Seconds())
	}
}

// fullDiskRoom runs a gateway recording every room into dir, with a
// publisher and a subscriber receiving its media.
func fullDiskRoom(t *testing.T, dir string) (*gatewaytest.Gateway, *notices, *client, []string) {
	t.Helper()
	n := newNotices()
	cfg := gatewaytest.SFUConfig()
	cfg.Admin.Token = "admin-token"
	cfg.Recording = config.Recording{Mode: "all", Dir: dir, FlushInterval: 200 * time.Millisecond}
	gw := gatewaytest.StartGateway(t, cfg, gateway.WithStreamNotices(n.add))
	a := dial(t, gw.URL, "full")
	st := publishFixture(t, a.Socket, "camera", "full-cam", map[string]any{"name": "a"})
	b := dial(t, gw.URL, "full")
	ids := trackIDs(st)
	b.waitRTP(t, 30, ids...)
	return gw, n, b, ids
}

// keepsForwarding checks the subscriber receives n more packets of each
// track from now on.
func (c *client) keepsForwarding(t *testing.T, n int, ids ...string) {
	t.Helper()
	c.mu.Lock()
	least := -1
	for _, id := range ids {
		if least < 0 || c.packets[id] < least {
			least = c.packets[id]
		}
	}
	c.mu.Unlock()
	c.waitRTP(t, least+n, ids...)
}

func adminRecordingsOf(t *testing.T, url, room string) []sfu.RecordingInfo {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url+"/admin/v1/rooms/"+room+"/recordings", nil)
	req.Header.Set("Authorization", "Bearer admin-token")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Recordings []sfu.RecordingInfo `json:"recordings"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("admin recordings: %d %v", resp.StatusCode, err)
	}
	return body.Recordings
}

// TestRecordingFullDisk: a recording directory without room fails the
// recording with an error naming the disk, and forwarding goes on.
func TestRecordingFullDisk(t *testing.T) {
	needFFmpeg(t)

	// A directory with less than the recorder's 1 MiB minimum free space:
	// no recording can start; asking for one is refused with the reason.
	t.Run("FullAtStart", func(t *testing.T) {
		dir := testenv.MountTmpfs(t, "64k")
		gw, _, b, ids := fullDiskRoom(t, dir)
		if recs := adminRecordingsOf(t, gw.URL, "full"); len(recs) != 0 {
			t.Errorf("recordings on a 64k directory: %+v", recs)
		}
		req, _ := http.NewRequest(http.MethodPost, gw.URL+"/admin/v1/rooms/full/recording/start", nil)
		req.Header.Set("Authorization", "Bearer admin-token")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var refusal struct {
			Message string `json:"message"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&refusal)
		resp.Body.Close()
		t.Logf("admin start on a 64k tmpfs: %d %q", resp.StatusCode, refusal.Message)
		if resp.StatusCode != http.StatusConflict || !strings.Contains(refusal.Message, "is full") {
			t.Errorf("admin start on a full directory: %d %q, want a refusal naming the full directory", resp.StatusCode, refusal.Message)
		}
		b.keepsForwarding(t, 100, ids...)
	})

	// The disk fills while a file is being written: the recording ends
	// failed with the write error, the subscriber keeps its media.
	t.Run("FillsWhileRecording", func(t *testing.T) {
		dir := testenv.MountTmpfs(t, "4m")
		gw, n, b, ids := fullDiskRoom(t, dir)
		waitFileStarted(t, dir)
		fillDisk(t, dir)
		fin := n.wait(t, "recording finished", func(x sfu.Notice) bool { return x.Kind == sfu.RecordingFinished })
		m, err := recorder.ReadManifest(fin.Manifest)
		if err != nil {
			t.Fatalf("manifest of the failed recording: %v", err)
		}
		t.Logf("manifest: state %s, reason %s, error %q, %dms, %d bytes", m.State, m.EndReason, m.Error, m.DurationMs, m.Bytes)
		if m.State != recorder.StateFailed || !strings.Contains(m.Error, "no space left on device") {
			t.Errorf("manifest after a full disk: state %s error %q, want failed with the disk's error", m.State, m.Error)
		}
		if recs := adminRecordingsOf(t, gw.URL, "full"); len(recs) != 0 {
			t.Errorf("recordings after the failure: %+v", recs)
		}
		b.keepsForwarding(t, 100, ids...)
	})
}

// waitFileStarted waits for a manifest in state recording below dir.
func waitFileStarted(t *testing.T, dir string) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	tick := time.NewTicker(50 * time.Millisecond) // files appear with no event to wait on
	defer tick.Stop()
	for {
		for _, p := range manifests(t, dir) {
			if m, err := recorder.ReadManifest(p); err == nil && m.State == recorder.StateRecording {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no file started below %s within %v", dir, waitFor)
		}
		<-tick.C
	}
}

// fillDisk takes every free byte of dir's filesystem.
func fillDisk(t *testing.T, dir string) {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 16<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling %s: %v", dir, err)
			}
			break
		}
	}
	// Smaller writes take the last partial chunk.
	for _, n := range []int{4096, 512, 1} {
		for {
			if _, err := f.Write(chunk[:n]); err != nil {
				break
			}
		}
	}
	if st, err := os.Stat(f.Name()); err == nil {
		t.Logf("filled %s with %d bytes", dir, st.Size())
	}
}

// timingSubscriber is a Go participant that notes the RTP timestamp of
// every video frame it receives, as the publisher stamped it (the SFU
// keeps the differences).
type timingSubscriber struct {
	*rtcio.Socket
	mu  sync.Mutex
	ts  []int64 // unwrapped, one per frame, in arrival order
	raw uint32
}

func newTimingSubscriber(t *testing.T, url string) *timingSubscriber {
	t.Helper()
	s := dialSocket(t, url)
	ts := &timingSubscriber{Socket: s}
	s.SetHooks(rtcio.Hooks{RemoteTrack: func(_ string, _ *rtcio.RemoteStream, tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		if tr.Kind() != webrtc.RTPCodecTypeVideo {
			go func() {
				for {
					if _, _, err := tr.ReadRTP(); err != nil {
						return
					}
				}
			}()
			return
		}
		go func() {
			for {
				pkt, _, err := tr.ReadRTP()
				if err != nil {
					return
				}
				ts.note(pkt.Timestamp)
			}
		}()
	}})
	return ts
}

func (s *timingSubscriber) note(ts uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := len(s.ts); n > 0 {
		d := int64(int32(ts - s.raw))
		if d == 0 {
			return // another packet of the same frame
		}
		s.ts = append(s.ts, s.ts[n-1]+d)
	} else {
		s.ts = append(s.ts, 0)
	}
	s.raw = ts
}

// frameTimes returns the received frames' times in ms (90 kHz clock),
// relative to the first, sorted.
func (s *timingSubscriber) frameTimes() []float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]float64, len(s.ts))
	for i, v := range s.ts {
		out[i] = float64(v) / 90
	}
	sort.Float64s(out)
	return out
}

// videoTimes returns the file's video packet times in ms.
func videoTimes(t *testing.T, path string) []float64 {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pts_time", "-of", "csv=p=0", path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	var ms []float64
	for _, f := range strings.Fields(string(out)) {
		v, err := strconv.ParseFloat(f, 64)
		if err != nil {
			t.Fatalf("ffprobe %s: pts %q", path, f)
		}
		ms = append(ms, v*1000)
	}
	return ms
}

// checkDecodes runs `ffmpeg -v error -i FILE -f null -`, which must print
// nothing, with one understood exception: ffmpeg 5.1 gives the null
// muxer's video a time base of one nominal frame (1/r_frame_rate), so two
// frames of a variable-rate file that fall on one tick make it complain
// "non monotonically increasing dts to muxer". That is allowed only when
// the file's frame times are strictly increasing and exactly the
// publisher's RTP timing (sent), and the file then also decodes without a
// word at its own millisecond time base.
func checkDecodes(t *testing.T, media string, file, sent []float64) {
	t.Helper()
	out, err := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-i", media, "-f", "null", "-").CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg decoding %s: %v\n%s", media, err, out)
	}
	if len(out) == 0 {
		return
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if !strings.Contains(line, "non monotonically increasing dts to muxer in stream 0") {
			t.Errorf("ffmpeg decoding %s printed:\n%s", media, out)
			return
		}
	}
	t.Logf("ffmpeg -v error printed (its null muxer's 1/fps video time base):\n%s", out)
	if out, err := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-i", media, "-enc_time_base:v", "1:1000", "-f", "null", "-").CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("ffmpeg decoding %s at a 1ms time base: %v\n%s", media, err, out)
	}
	for i := 1; i < len(file); i++ {
		if file[i] <= file[i-1] {
			t.Errorf("video frame %d at %.0fms after %.0fms: not increasing", i, file[i], file[i-1])
		}
	}
	matchTiming(t, file, sent)
}

// matchTiming checks that every file frame inside the span the subscriber
// received lies on a frame the publisher stamped (RTP time, ±1ms for the
// file's millisecond rounding), after aligning the first common frame.
func matchTiming(t *testing.T, file, sent []float64) {
	t.Helper()
	if len(file) < 10 || len(sent) < 10 {
		t.Fatalf("too few frames to compare: file %d, sent %d", len(file), len(sent))
	}
	near := func(v float64) bool {
		i := sort.SearchFloat64s(sent, v-1.01)
		return i < len(sent) && sent[i] <= v+1.01
	}
	// Try aligning file frame 0..9 with each of the first received frames.
	best, bestMatched, bestTotal := 0.0, -1, 0
	for fi := 0; fi < 10; fi++ {
		for si := 0; si < 40 && si < len(sent); si++ {
			shift := sent[si] - file[fi]
			matched, total := 0, 0
			for _, f := range file {
				v := f + shift
				if v < sent[0] || v > sent[len(sent)-1] {
					continue
				}
				total++
				if near(v) {
					matched++
				}
			}
			if matched > bestMatched {
				best, bestMatched, bestTotal = shift, matched, total
			}
		}
	}
	t.Logf("file frame times vs the publisher's RTP timing: %d of %d frames in the common span match (shift %.1fms); %d frames sent, %d in the file",
		bestMatched, bestTotal, best, len(sent), len(file))
	if bestTotal < len(file)/2 || bestMatched != bestTotal {
		t.Errorf("the file's frame times are not the publisher's: %d of %d match", bestMatched, bestTotal)
	}
}
