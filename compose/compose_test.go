package compose_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"go.uber.org/goleak"

	"github.com/rtcio-gateway/rtcio-gateway/compose"
	"github.com/rtcio-gateway/rtcio-gateway/internal/gatewaytest"
	"github.com/rtcio-gateway/rtcio-gateway/internal/mediafixture"
	"github.com/rtcio-gateway/rtcio-gateway/internal/testenv"
	"github.com/rtcio-gateway/rtcio-gateway/recorder"
	"github.com/rtcio-gateway/rtcio-gateway/rtcio"
)

const waitFor = 30 * time.Second

func TestMain(m *testing.M) { testenv.VerifyTestMain(m) }

func needFFmpeg(t *testing.T) {
	t.Helper()
	for _, bin := range []string{"ffprobe", "ffmpeg"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s missing (scripts/test.sh installs ffmpeg)", bin)
		}
	}
}

// participant is one publisher of the test meeting: a solid colour and a
// tone of its own, so its tile and its voice can be found in the output.
type participant struct {
	name  string
	rgb   [3]uint8
	tone  float64 // Hz
	video string  // IVF fixture made for it
	audio string  // Ogg Opus fixture made for it
	sock  *rtcio.Socket
	stop  func()
	st    *rtcio.Stream
}

// makeFixtures renders each participant's VP8 and Opus files with ffmpeg.
func makeFixtures(t *testing.T, ps []*participant) {
	t.Helper()
	dir := t.TempDir()
	for _, p := range ps {
		p.video = filepath.Join(dir, p.name+".ivf")
		p.audio = filepath.Join(dir, p.name+".ogg")
		color := fmt.Sprintf("0x%02x%02x%02x", p.rgb[0], p.rgb[1], p.rgb[2])
		for _, args := range [][]string{
			{"-f", "lavfi", "-i", "color=c=" + color + ":s=320x240:r=15:d=4", "-c:v", "libvpx", "-g", "15", "-auto-alt-ref", "0", "-b:v", "100k", p.video},
			{"-f", "lavfi", "-i", fmt.Sprintf("sine=frequency=%g:sample_rate=48000:duration=4", p.tone), "-c:a", "libopus", "-b:a", "48k", "-page_duration", "20000", p.audio},
		} {
			out, err := exec.Command("ffmpeg", append([]string{"-v", "error", "-y"}, args...)...).CombinedOutput()
			if err != nil {
				t.Fatalf("ffmpeg %v: %v\n%s", args, err, out)
			}
		}
	}
}

// clock counts the audio packets a socket receives per stream, so the
// test can let media time pass without sleeping.
type clock struct {
	mu      sync.Mutex
	packets map[string]int
	changed chan struct{}
}

func newClock(s *rtcio.Socket) *clock {
	c := &clock{packets: make(map[string]int), changed: make(chan struct{}, 1)}
	s.SetHooks(rtcio.Hooks{RemoteTrack: func(_ string, rs *rtcio.RemoteStream, tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		if tr.Kind() != webrtc.RTPCodecTypeAudio {
			return
		}
		go func() {
			for {
				if _, _, err := tr.ReadRTP(); err != nil {
					return
				}
				c.mu.Lock()
				c.packets[rs.MediaStreamID()]++
				c.mu.Unlock()
				select {
				case c.changed <- struct{}{}:
				default:
				}
			}
		}()
	}})
	return c
}

// elapse waits until d more of msid's audio (20 ms packets) arrived.
func (c *clock) elapse(t *testing.T, msid string, d time.Duration) {
	t.Helper()
	c.mu.Lock()
	want := c.packets[msid] + int(d/(20*time.Millisecond))
	c.mu.Unlock()
	deadline := time.After(waitFor)
	for {
		c.mu.Lock()
		got := c.packets[msid]
		c.mu.Unlock()
		if got >= want {
			return
		}
		select {
		case <-c.changed:
		case <-deadline:
			t.Fatalf("audio of %s: %d packets, want %d", msid, got, want)
		}
	}
}

func (p *participant) publish(t *testing.T, url, room string, hooks func(*rtcio.Socket)) {
	t.Helper()
	api, err := rtcio.LoopbackAPI()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if p.sock, err = rtcio.Dial(ctx, url, rtcio.Options{API: api}); err != nil {
		t.Fatal(err)
	}
	if hooks != nil {
		hooks(p.sock)
	}
	if err := p.sock.Server().Emit("join-room", map[string]any{"roomId": room, "name": p.name}); err != nil {
		t.Fatal(err)
	}
	audio, err := mediafixture.NewOpusTrack("audio-"+p.name, "ms-"+p.name)
	if err != nil {
		t.Fatal(err)
	}
	video, err := mediafixture.NewVP8Track("video-"+p.name, "ms-"+p.name)
	if err != nil {
		t.Fatal(err)
	}
	playCtx, stopPlay := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = mediafixture.PlayIVF(playCtx, p.video, video) }()
	go func() { defer wg.Done(); _ = mediafixture.PlayOgg(playCtx, p.audio, audio) }()
	p.stop = func() {
		_ = p.sock.Close()
		stopPlay()
		wg.Wait()
	}
	t.Cleanup(p.stop)
	if p.st, err = rtcio.NewStream(audio, video); err != nil {
		t.Fatal(err)
	}
	if err := p.sock.Emit("camera", map[string]any{"name": p.name, "stream": p.st}); err != nil {
		t.Fatal(err)
	}
}

// TestComposeMeeting records a meeting in which a third participant joins
// late and the first leaves early, and composes it. The output plays from
// start to end, lasts as long as the room manifest says, shows each
// participant's tile (found by its colour) exactly while their file runs
// (within 0.5 s of the per-file manifests' times), and carries each
// participant's tone while they published.
func TestComposeMeeting(t *testing.T) {
	needFFmpeg(t)
	opts := testenv.LeakOptions()
	t.Cleanup(func() { goleak.VerifyNone(t, opts...) })
	ps := []*participant{
		{name: "red", rgb: [3]uint8{255, 0, 0}, tone: 400},
		{name: "green", rgb: [3]uint8{0, 255, 0}, tone: 900},
		{name: "blue", rgb: [3]uint8{0, 0, 255}, tone: 1500},
	}
	makeFixtures(t, ps)
	dir := t.TempDir()
	cfg := gatewaytest.SFUConfig()
	cfg.Recording.Mode, cfg.Recording.Dir = "all", dir
	gw := gatewaytest.StartGateway(t, cfg)
	const room = "standup"

	var clk *clock
	red, green, blue := ps[0], ps[1], ps[2]
	red.publish(t, gw.URL, room, nil)
	green.publish(t, gw.URL, room, func(s *rtcio.Socket) { clk = newClock(s) })
	clk.elapse(t, "ms-red", 3*time.Second)
	blue.publish(t, gw.URL, room, nil)
	clk.elapse(t, "ms-blue", 3*time.Second)
	red.stop()
	clk.elapse(t, "ms-blue", 3*time.Second)
	green.stop()
	blue.stop()

	manifest := waitMeetingDone(t, filepath.Join(dir, room))
	m, err := compose.Load(filepath.Join(dir, room))
	if err != nil {
		t.Fatal(err)
	}
	if m.Manifest != manifest || len(m.Participants) != 3 {
		t.Fatalf("loaded %s with %d participants, want %s with 3", m.Manifest, len(m.Participants), manifest)
	}
	out := filepath.Join(t.TempDir(), "meeting.mp4")
	var progress []time.Duration
	start := time.Now()
	err = compose.Run(context.Background(), m, compose.Options{Output: out, Width: 640, Height: 360, FPS: 20,
		Progress: func(done, _ time.Duration) { progress = append(progress, done) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("composed %s of meeting in %s; %d progress reports", m.Duration, time.Since(start).Round(time.Millisecond), len(progress))
	if len(progress) == 0 {
		t.Errorf("no progress reported")
	}

	// Plays start to end, as long as the room.
	if b, err := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-i", out, "-f", "null", "-").CombinedOutput(); err != nil || len(b) > 0 {
		t.Errorf("decoding the composed file: %v\n%s", err, b)
	}
	if got := probeDuration(t, out); math.Abs(got-m.Duration.Seconds()) > 0.1 {
		t.Errorf("composed file lasts %.3fs, the room %.3fs", got, m.Duration.Seconds())
	}

	// Each participant's span on the meeting's clock, from its file's
	// manifest.
	video, audio := make(map[string][2]float64), make(map[string][2]float64)
	for _, p := range m.Participants {
		name := publisherName(ps, p.StreamID)
		end := p.Files[len(p.Files)-1].End().Seconds()
		video[name] = [2]float64{p.Files[0].VideoOffset.Seconds(), end}
		audio[name] = [2]float64{p.Files[0].AudioOffset.Seconds(), end}
	}
	t.Logf("from the manifests: video %v, audio %v", video, audio)
	checkTiles(t, out, ps, video)
	checkTones(t, out, ps, audio)
}

func publisherName(ps []*participant, streamID string) string {
	for _, p := range ps {
		if p.st != nil && p.st.ID() == streamID {
			return p.name
		}
	}
	return streamID
}

// waitMeetingDone waits for the room's meeting manifest to be closed (the
// room's gateway peer left): the manifest is the only sign, so it is
// polled.
func waitMeetingDone(t *testing.T, roomDir string) string {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		matches, _ := filepath.Glob(filepath.Join(roomDir, "*"+recorder.RoomManifestSuffix))
		if len(matches) == 1 {
			if rm, err := recorder.ReadRoomManifest(matches[0]); err == nil && rm.State == recorder.StateDone {
				return matches[0]
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no finished room manifest in %s (found %v)", roomDir, matches)
		}
		<-tick.C
	}
}

func probeDuration(t *testing.T, path string) float64 {
	t.Helper()
	b, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", path).Output()
	if err != nil {
		t.Fatal(err)
	}
	d, err := strconv.ParseFloat(strings.TrimSpace(string(b)), 64)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// checkTiles decodes the output at 10 frames per second, small, and checks
// that each participant's colour is on screen well inside its span and
// nowhere outside it (0.5 s margins).
func checkTiles(t *testing.T, out string, ps []*participant, spans map[string][2]float64) {
	t.Helper()
	const w, h, fps = 64, 36, 10
	raw, err := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-i", out,
		"-vf", fmt.Sprintf("fps=%d,scale=%d:%d:flags=area", fps, w, h), "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1").Output()
	if err != nil {
		t.Fatal(err)
	}
	// The grid is re-laid where any video starts or ends. At such a switch
	// one output frame can miss a tile of the layout (a known blink, not
	// yet explained; the README says so), so presence is not
	// checked within 0.15 s of a switch; absence outside a tile's own span
	// is checked everywhere.
	var switches []float64
	for _, span := range spans {
		switches = append(switches, span[0], span[1])
	}
	nearSwitch := func(at float64) bool {
		for _, sw := range switches {
			if math.Abs(at-sw) < 0.15 {
				return true
			}
		}
		return false
	}
	frame := w * h * 3
	for i := 0; (i+1)*frame <= len(raw); i++ {
		at := float64(i) / fps
		px := raw[i*frame : (i+1)*frame]
		for _, p := range ps {
			span := spans[p.name]
			n := 0
			for j := 0; j < len(px); j += 3 {
				if near(px[j:j+3], p.rgb) {
					n++
				}
			}
			seen := n >= w*h/50 // a 2x2 grid cell is a sixth of the frame
			switch {
			case at > span[0]+0.5 && at < span[1]-0.5 && !seen && !nearSwitch(at):
				t.Errorf("%.1fs: %s's tile missing (span %.2f-%.2fs, %d pixels)", at, p.name, span[0], span[1], n)
			case (at < span[0]-0.5 || at > span[1]+0.5) && seen:
				t.Errorf("%.1fs: %s's tile shown outside its span %.2f-%.2fs", at, p.name, span[0], span[1])
			}
		}
	}
}

func near(px []byte, rgb [3]uint8) bool {
	for k := range 3 {
		if math.Abs(float64(px[k])-float64(rgb[k])) > 60 {
			return false
		}
	}
	return true
}

// checkTones decodes the mixed audio (mono, 8 kHz) and measures each
// participant's tone in 100 ms windows: present inside its span, absent
// outside (0.5 s margins).
func checkTones(t *testing.T, out string, ps []*participant, spans map[string][2]float64) {
	t.Helper()
	const rate = 8000
	raw, err := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-i", out, "-ac", "1", "-ar", strconv.Itoa(rate),
		"-f", "s16le", "pipe:1").Output()
	if err != nil {
		t.Fatal(err)
	}
	samples := make([]int16, len(raw)/2)
	if err := binary.Read(bytes.NewReader(raw), binary.LittleEndian, samples); err != nil && err != io.ErrUnexpectedEOF {
		t.Fatal(err)
	}
	const win = rate / 10
	for _, p := range ps {
		span := spans[p.name]
		var inside, heard, leaked int
		for i := 0; i+win <= len(samples); i += win {
			at := float64(i+win/2) / rate
			a := toneAmplitude(samples[i:i+win], p.tone, rate)
			switch {
			case at > span[0]+0.5 && at < span[1]-0.5:
				inside++
				if a > 0.02 {
					heard++
				}
			case at < span[0]-0.5 || at > span[1]+0.5:
				if a > 0.01 {
					leaked++
				}
			}
		}
		t.Logf("%s's %gHz tone: heard in %d of %d windows inside its span, %d windows outside", p.name, p.tone, heard, inside, leaked)
		if inside == 0 || heard < inside*9/10 {
			t.Errorf("%s's tone heard in %d of %d windows of its span", p.name, heard, inside)
		}
		if leaked > 0 {
			t.Errorf("%s's tone heard in %d windows outside its span", p.name, leaked)
		}
	}
}

// toneAmplitude is the amplitude (full scale 1) of frequency f in x, by
// the Goertzel algorithm.
func toneAmplitude(x []int16, f float64, rate int) float64 {
	w := 2 * math.Pi * f / float64(rate)
	coeff := 2 * math.Cos(w)
	var s1, s2 float64
	for _, v := range x {
		s := float64(v)/32768 + coeff*s1 - s2
		s2, s1 = s1, s
	}
	power := s1*s1 + s2*s2 - coeff*s1*s2
	return 2 * math.Sqrt(math.Max(power, 0)) / float64(len(x))
}
