package sfu_test

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rtcio-gateway/rtcio-gateway/config"
	"github.com/rtcio-gateway/rtcio-gateway/gateway"
	"github.com/rtcio-gateway/rtcio-gateway/gateway/sfu"
	"github.com/rtcio-gateway/rtcio-gateway/gateway/webhook"
	"github.com/rtcio-gateway/rtcio-gateway/internal/gatewaytest"
	"github.com/rtcio-gateway/rtcio-gateway/internal/testenv"
	"github.com/rtcio-gateway/rtcio-gateway/recorder"
	"github.com/rtcio-gateway/rtcio-gateway/rtcio"
)

// serverMailbox collects one server event of a Go socket.
func serverMailbox(s *rtcio.Socket, name string) *mailbox {
	m := &mailbox{ch: make(chan *rtcio.Event, 64)}
	s.Server().On(name, func(e *rtcio.Event) {
		select {
		case m.ch <- e:
		default:
		}
	})
	return m
}

// meshRecordingConfig records the mesh rooms named "rec-*"; rooms named
// "sfu-*" are SFU rooms (not recorded).
func meshRecordingConfig(dir string) config.Config {
	cfg := gatewaytest.TestConfig()
	cfg.Admin.Token = "admin-token"
	cfg.Metrics.Public = true // scraped by the failure tests
	cfg.Rooms.Topologies = []config.TopologyRule{{Pattern: "sfu-*", Topology: "sfu"}}
	cfg.Recording = config.Recording{Mode: "rooms", Rooms: []string{"rec-*"}, Dir: dir, FlushInterval: 200 * time.Millisecond}
	return cfg
}

// TestMeshRecordingGoPeers: a mesh room recorded from its start gets a
// receive-only gateway peer that nobody sees in presence; the clients still
// reach each other directly, and each published stream is recorded with
// one audio and one video track. The gateway peer leaves with the last
// client.
func TestMeshRecordingGoPeers(t *testing.T) {
	needFFmpeg(t)
	dir := t.TempDir()
	n := newNotices()
	gw := gatewaytest.StartGateway(t, meshRecordingConfig(dir), gateway.WithStreamNotices(n.add))
	const room = "rec-mesh"
	a := dialNoJoin(t, gw.URL)
	presence := serverMailbox(a.Socket, "user-connected")
	join(t, a.Socket, room)
	st := publishFixture(t, a.Socket, "camera", "mesh-cam", map[string]any{"name": "a"})
	b := dial(t, gw.URL, room)
	// b gets a's media over the mesh, straight from a.
	b.waitRTP(t, 60, trackIDs(st)...)
	if ev := presence.next(t, "user-connected for b"); firstField(ev, "id") != b.ID() {
		t.Errorf("a was told of %v, want b (%s)", ev.Args, b.ID())
	}
	if _, ok := a.Socket.Peer(b.ID()).State(); !ok {
		t.Errorf("a has no direct connection to b in a mesh room")
	}
	recs := waitRecordings(t, gw.URL, room, 1)
	if recs[0].Stream != st.ID() {
		t.Errorf("recording of stream %s, want %s", recs[0].Stream, st.ID())
	}
	if !presence.empty() {
		t.Errorf("a was told of another member: %v", (<-presence.ch).Args)
	}
	_ = a.Close()
	fin := n.wait(t, "recording finished", func(x sfu.Notice) bool { return x.Kind == sfu.RecordingFinished && x.Stream == st.ID() })
	m, err := recorder.ReadManifest(fin.Manifest)
	if err != nil {
		t.Fatal(err)
	}
	if m.State != recorder.StateDone {
		t.Errorf("recording ended %s (%s)", m.State, m.Error)
	}
	media := strings.TrimSuffix(fin.Manifest, ".json") + ".webm"
	if kinds := ffprobeStreams(t, media); strings.Join(kinds, ",") != "video,audio" && strings.Join(kinds, ",") != "audio,video" {
		t.Errorf("%s has streams %v, want one audio and one video", media, kinds)
	}
	_ = b.Close()
	waitNoRoom(t, gw, room)
}

func firstField(ev *rtcio.Event, key string) string {
	if len(ev.Args) == 0 {
		return ""
	}
	var obj map[string]any
	if err := ev.Decode(0, &obj); err != nil {
		return ""
	}
	s, _ := obj[key].(string)
	return s
}

// waitRecordings polls the admin API (a recording starts with no event to
// wait on) until the room has n recordings with a file.
func waitRecordings(t *testing.T, url, room string, n int) []sfu.RecordingInfo {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		recs := adminRecordingsOf(t, url, room)
		withFiles := 0
		for _, r := range recs {
			if len(r.Files) > 0 {
				withFiles++
			}
		}
		if withFiles >= n {
			return recs
		}
		if time.Now().After(deadline) {
			t.Fatalf("room %s: %d recordings with files within %v, want %d: %+v", room, withFiles, waitFor, n, recs)
		}
		<-tick.C
	}
}

// waitNoRoom waits for the room's gateway peer to leave.
func waitNoRoom(t *testing.T, gw *gatewaytest.Gateway, room string) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for gw.Server.SFU().Room(room) != nil {
		if time.Now().After(deadline) {
			t.Fatalf("room %s still has its gateway peer after its clients left", room)
		}
		<-tick.C
	}
}

// TestMeshRecordingOnRequest: a mesh room that does not record by policy
// gets its recorder peer when a client asks for a recording; the answer
// counts the streams already published.
func TestMeshRecordingOnRequest(t *testing.T) {
	dir := t.TempDir()
	gw := gatewaytest.StartGateway(t, meshRecordingConfig(dir))
	const room = "asked"
	a := dial(t, gw.URL, room)
	st := publishFixture(t, a.Socket, "camera", "asked-cam", map[string]any{"name": "a"})
	b := dial(t, gw.URL, room)
	b.waitRTP(t, 10, trackIDs(st)...)
	if gw.Server.SFU().Room(room) != nil {
		t.Fatalf("an unrecorded mesh room has a gateway peer")
	}
	answers := serverMailbox(b.Socket, "recording")
	_ = b.Server().Emit("recording", map[string]any{"roomId": room, "action": "start"})
	answers.next(t, "recording answer")
	recs := waitRecordings(t, gw.URL, room, 1)
	if recs[0].Stream != st.ID() {
		t.Errorf("recording of %s, want %s", recs[0].Stream, st.ID())
	}
}

// TestRecordingFailureIsLoud: the disk fills under a mesh room's recording.
// The operator gets a recording_failed webhook and the metric moves; the
// client that asked for the recording gets recording-failed; an SFU room
// beside it keeps forwarding.
func TestRecordingFailureIsLoud(t *testing.T) {
	needFFmpeg(t)
	dir := testenv.MountTmpfs(t, "4m")
	const secret = "webhook-secret-0123456789abcdef"
	hooks := gatewaytest.StartWebhookLog(t, secret)
	cfg := meshRecordingConfig(dir)
	cfg.Webhooks.URLs, cfg.Webhooks.Secret = []string{hooks.URL}, secret
	cfg.Recording.Mode = "off" // recorded on request
	gw := gatewaytest.StartGateway(t, cfg)

	// The bystanders: an SFU room with a publisher and a subscriber.
	c := dial(t, gw.URL, "sfu-bystander")
	other := publishFixture(t, c.Socket, "camera", "bystander-cam", map[string]any{"name": "c"})
	d := dial(t, gw.URL, "sfu-bystander")
	otherIDs := trackIDs(other)
	d.waitRTP(t, 30, otherIDs...)

	const room = "rec-full"
	a := dial(t, gw.URL, room)
	st := publishFixture(t, a.Socket, "camera", "full-mesh-cam", map[string]any{"name": "a"})
	b := dial(t, gw.URL, room)
	b.waitRTP(t, 10, trackIDs(st)...)
	failed := serverMailbox(b.Socket, gateway.EventRecordingFailed)
	answers := serverMailbox(b.Socket, "recording")
	_ = b.Server().Emit("recording", map[string]any{"roomId": room, "action": "start"})
	answers.next(t, "recording answer")
	waitFileStarted(t, dir)
	before := value(t, scrape(t, gw.URL), "rtcio_recording_failures_total")
	fillDisk(t, dir)

	ev := failed.next(t, "recording-failed at the client that asked")
	var body struct{ RoomID, StreamID, Reason string }
	if err := ev.Decode(0, &body); err != nil {
		t.Fatal(err)
	}
	t.Logf("client got recording-failed %+v", body)
	if body.RoomID != room || body.StreamID != st.ID() || body.Reason != "disk-full" {
		t.Errorf("recording-failed %+v: want room %s, stream %s, reason disk-full", body, room, st.ID())
	}
	hook := hooks.Wait(t, "recording_failed", waitFor, func(e webhook.Event) bool { return e.Type == webhook.RecordingFailed })
	if hook.Room != room || hook.Recording == nil || hook.Recording.Stream != st.ID() || !strings.Contains(hook.Recording.Error, "no space left on device") {
		t.Errorf("recording_failed webhook %+v: want room %s, stream %s and an error", hook, room, st.ID())
	}
	if after := value(t, scrape(t, gw.URL), "rtcio_recording_failures_total"); after != before+1 {
		t.Errorf("rtcio_recording_failures_total went from %v to %v, want +1", before, after)
	}
	d.keepsForwarding(t, 100, otherIDs...)
}

// TestMeshRecordingBrowser: two Chromium pages publish their camera and
// microphone in a mesh room recorded from its start, for about 10 s each,
// then close. Two files come out, one per page, each with one audio and
// one video track, lasting as long as the page published (from the file's
// first frame to the page's close) within 0.5 s, and decoding cleanly.
func TestMeshRecordingBrowser(t *testing.T) {
	needFFmpeg(t)
	testenv.SkipIfNoBrowser(t)
	const publishFor = 10 * time.Second
	web, err := testenv.NewWebHandler()
	if err != nil {
		t.Fatal(err)
	}
	n := newNotices()
	cfg := meshRecordingConfig(t.TempDir())
	cfg.Recording.Mode = "all"
	gw := gatewaytest.StartGateway(t, cfg, gateway.WithStreamNotices(n.add))
	gw.Server.Handle("/", web)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	env := &browserEnv{gw: gw, notes: n, browser: testenv.StartBrowser(t), ctx: ctx}

	const room = "mesh-browser"
	pages := []*testenv.ConformancePeer{env.openPage(t, "alice"), env.openPage(t, "bob")}
	streams := make([]testenv.StreamInfo, len(pages))
	for i, p := range pages {
		env.joinPage(t, p, room)
		streams[i] = env.publishPage(t, p, "camera", []string{"alice", "bob"}[i])
	}
	// Each page gets the other's camera straight from it, over the mesh.
	for i, p := range pages {
		ev, err := p.WaitFor(ctx, fmt.Sprintf(`e.type === 'stream-event' && e.name === 'camera' && e.stream && e.stream.mediaStreamId === %q`, streams[1-i].MediaStreamID), 0)
		if err != nil {
			t.Fatalf("page %d never got the other page's camera: %v", i, err)
		}
		if ev.PeerID != pages[1-i].ID {
			t.Errorf("page %d got the other camera from %s, want the other page %s", i, ev.PeerID, pages[1-i].ID)
		}
	}
	waitRecordings(t, gw.URL, room, 2)

	timer := time.NewTimer(publishFor)
	select {
	case <-timer.C:
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
	closed := make([][2]time.Time, len(pages))
	for i, p := range pages {
		closed[i][0] = time.Now()
		if err := p.Close(ctx); err != nil {
			t.Fatal(err)
		}
		closed[i][1] = time.Now()
	}
	for i, st := range streams {
		fin := n.wait(t, "recording finished", func(x sfu.Notice) bool {
			return x.Kind == sfu.RecordingFinished && x.Stream == st.RTCIOStreamID
		})
		m, err := recorder.ReadManifest(fin.Manifest)
		if err != nil {
			t.Fatal(err)
		}
		if m.State != recorder.StateDone {
			t.Errorf("page %d: recording ended %s (%s)", i, m.State, m.Error)
		}
		media := filepath.Join(filepath.Dir(fin.Manifest), m.File)
		info, got := probeFile(t, media)
		var video, audio int
		for _, s := range info.Streams {
			switch s.CodecType {
			case "video":
				video++
			case "audio":
				audio++
			}
		}
		if video != 1 || audio != 1 {
			t.Errorf("page %d: %s has %d video and %d audio streams, want one of each", i, m.File, video, audio)
		}
		lo, hi := closed[i][0].Sub(m.Start).Seconds(), closed[i][1].Sub(m.Start).Seconds()
		t.Logf("page %d: file %.3fs, published %.3f..%.3fs (manifest start to close)", i, got, lo, hi)
		if got < lo-0.5 || got > hi+0.5 {
			t.Errorf("page %d: file lasts %.3fs, the page published for %.3f..%.3fs: off by more than 0.5s", i, got, lo, hi)
		}
		decodesCleanly(t, media)
	}
	// Nobody saw the gateway's recorder in presence.
	for i, p := range pages {
		evs, err := p.Events(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs {
			var who struct{ ID string }
			if ev.Type != "server" || ev.Name != "user-connected" || ev.Arg(0, &who) != nil {
				continue
			}
			if who.ID != pages[1-i].ID {
				t.Errorf("page %d was told of member %s, which is not the other page", i, who.ID)
			}
		}
	}
}

// decodesCleanly decodes every frame of media with ffmpeg, which must
// print nothing. The null muxer runs at a 1 ms video time base: at its
// default (one nominal frame) two frames of a variable-rate file can share
// a tick and ffmpeg complains about the muxer, not the file.
func decodesCleanly(t *testing.T, media string) {
	t.Helper()
	out, err := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-i", media, "-enc_time_base:v", "1:1000", "-f", "null", "-").CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Errorf("ffmpeg decoding %s: %v\n%s", media, err, out)
	}
}

// TestRecordingStartFailureIsLoud: a room recorded from its start on a
// directory without room cannot record its first stream: nobody asked for
// that recording, so every client of the room is told, and the operator
// gets the webhook and the metric.
func TestRecordingStartFailureIsLoud(t *testing.T) {
	dir := testenv.MountTmpfs(t, "64k")
	const secret = "webhook-secret-0123456789abcdef"
	hooks := gatewaytest.StartWebhookLog(t, secret)
	cfg := meshRecordingConfig(dir)
	cfg.Webhooks.URLs, cfg.Webhooks.Secret = []string{hooks.URL}, secret
	gw := gatewaytest.StartGateway(t, cfg)
	const room = "rec-nospace"
	a := dialNoJoin(t, gw.URL)
	failedA := serverMailbox(a.Socket, gateway.EventRecordingFailed)
	join(t, a.Socket, room)
	b := dialNoJoin(t, gw.URL)
	failedB := serverMailbox(b.Socket, gateway.EventRecordingFailed)
	join(t, b.Socket, room)
	st := publishFixture(t, a.Socket, "camera", "nospace-cam", map[string]any{"name": "a"})
	for who, box := range map[string]*mailbox{"publisher": failedA, "other client": failedB} {
		var body struct{ RoomID, StreamID, Reason string }
		if err := box.next(t, "recording-failed at the "+who).Decode(0, &body); err != nil {
			t.Fatal(err)
		}
		if body.RoomID != room || body.StreamID != st.ID() || body.Reason != "disk-full" {
			t.Errorf("%s got recording-failed %+v, want room %s, stream %s, disk-full", who, body, room, st.ID())
		}
	}
	hook := hooks.Wait(t, "recording_failed", waitFor, func(e webhook.Event) bool { return e.Type == webhook.RecordingFailed })
	t.Logf("operator's webhook: %+v", hook.Recording)
	if got := value(t, scrape(t, gw.URL), "rtcio_recording_failures_total"); got < 1 {
		t.Errorf("rtcio_recording_failures_total %v after a failed start", got)
	}
}
