package rtcio

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/rtcio-gateway/rtcio-gateway/internal/mediafixture"
)

// rtpCounter reads every received track and counts packets per track, so
// tests can wait for real media of a given codec.
type rtpCounter struct {
	mu     sync.Mutex
	counts map[*webrtc.TrackRemote]int
	cond   chan struct{}
}

func newRTPCounter(s *Socket) *rtpCounter {
	c := &rtpCounter{counts: make(map[*webrtc.TrackRemote]int), cond: make(chan struct{}, 1)}
	s.SetHooks(Hooks{RemoteTrack: func(_ string, _ *RemoteStream, tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		go func() {
			for {
				if _, _, err := tr.ReadRTP(); err != nil {
					return
				}
				c.mu.Lock()
				c.counts[tr]++
				c.mu.Unlock()
				select {
				case c.cond <- struct{}{}:
				default:
				}
			}
		}()
	}})
	return c
}

// waitPackets waits until track tr delivered at least n more packets.
func (c *rtpCounter) waitPackets(t testing.TB, tr *webrtc.TrackRemote, n int) {
	t.Helper()
	c.mu.Lock()
	start := c.counts[tr]
	c.mu.Unlock()
	deadline := time.After(waitFor)
	for {
		c.mu.Lock()
		got := c.counts[tr] - start
		c.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-c.cond:
		case <-deadline:
			t.Fatalf("track %s (%s) got %d of %d packets", tr.ID(), tr.Codec().MimeType, got, n)
		}
	}
}

// fixtureStream builds a VP8+Opus stream fed from the fixture files until
// the test ends.
func fixtureStream(t testing.TB, msid string) (*Stream, *webrtc.TrackLocalStaticSample, *webrtc.TrackLocalStaticSample) {
	t.Helper()
	audio, err := mediafixture.NewOpusTrack("audio-"+msid, msid)
	if err != nil {
		t.Fatal(err)
	}
	video, err := mediafixture.NewVP8Track("video-"+msid, msid)
	if err != nil {
		t.Fatal(err)
	}
	play(t, video, mediafixture.VP8)
	play(t, audio, mediafixture.Opus)
	st, err := NewStream(audio, video)
	if err != nil {
		t.Fatal(err)
	}
	return st, audio, video
}

// play loops a fixture into w until the test ends.
func play(t testing.TB, w *webrtc.TrackLocalStaticSample, file string) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		switch {
		case strings.HasSuffix(file, ".ivf"):
			done <- mediafixture.PlayIVF(ctx, mediafixture.Path(file), w)
		default:
			done <- mediafixture.PlayOgg(ctx, mediafixture.Path(file), w)
		}
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("play %s: %v", file, err)
		}
	})
}

type cameraMeta struct {
	Name   string        `json:"name"`
	Stream *RemoteStream `json:"stream"`
}

func TestStreamPublishReplaceRemoveReplay(t *testing.T) {
	leakCheck(t)
	url := startGateway(t)
	a := dial(t, url, testOptions(t))
	// The replacement sample track restarts RTP sequence numbers (see
	// Stream.ReplaceTrack); b accepts them so the test can see media flow.
	b := dial(t, url, testOptions(t, func(se *webrtc.SettingEngine) { se.DisableSRTPReplayProtection(true) }))
	bRTP := newRTPCounter(b)
	bCam := collect(b, "camera")
	bAdded := collect(b, EventTrackAdded)
	bRemoved := collect(b, EventTrackRemoved)

	st, _, video := fixtureStream(t, "alice-cam")
	if err := a.Emit("camera", map[string]any{"name": "alice", "stream": st}, st); err != nil {
		t.Fatal(err)
	}
	join(t, a, "media")
	join(t, b, "media")

	ev := bCam.next(t, "camera on b")
	if ev.PeerID != a.ID() || ev.Stream == nil {
		t.Fatalf("camera from %q stream %v", ev.PeerID, ev.Stream)
	}
	rs := ev.Stream
	if rs.ID() != st.ID() || rs.MediaStreamID() != st.MediaStreamID() {
		t.Fatalf("remote stream id %q msid %q, want %q %q", rs.ID(), rs.MediaStreamID(), st.ID(), st.MediaStreamID())
	}
	var meta cameraMeta
	if err := ev.Decode(0, &meta); err != nil || meta.Name != "alice" || meta.Stream != rs {
		t.Fatalf("meta %+v err %v", meta, err)
	}
	if got, ok := ev.Args[1].(*RemoteStream); !ok || got != rs {
		t.Fatalf("arg 1 = %T, want the *RemoteStream", ev.Args[1])
	}
	// The second track of a new stream fires track-added (JavaScript
	// client behaviour).
	added := bAdded.next(t, "track-added for the second track")
	if added.Stream != rs || added.Track == nil {
		t.Fatalf("track-added %+v", added)
	}
	var vTrack, aTrack *webrtc.TrackRemote
	for _, tr := range rs.Tracks() {
		switch tr.Codec().MimeType {
		case webrtc.MimeTypeVP8:
			vTrack = tr
		case webrtc.MimeTypeOpus:
			aTrack = tr
		}
	}
	if vTrack == nil || aTrack == nil {
		t.Fatalf("tracks %v: want VP8 and Opus", rs.Tracks())
	}
	bRTP.waitPackets(t, vTrack, 20)
	bRTP.waitPackets(t, aTrack, 20)

	// ReplaceTrack: same sender, no renegotiation, media keeps flowing on
	// the same remote track.
	video2, err := mediafixture.NewVP8Track("video2", st.MediaStreamID())
	if err != nil {
		t.Fatal(err)
	}
	play(t, video2, mediafixture.VP8LongGOP)
	if err := st.ReplaceTrack(video, video2); err != nil {
		t.Fatal(err)
	}
	bRTP.waitPackets(t, vTrack, 30)

	// RemoveTrack: transceiver inactive, receiver fires track-removed.
	st.RemoveTrack(video2)
	rm := bRemoved.next(t, "track-removed")
	if rm.Track != vTrack || rm.Stream != rs {
		t.Fatalf("track-removed for %v, want the video track", rm.Track)
	}
	if len(rs.Tracks()) != 1 {
		t.Fatalf("stream keeps %d tracks after removal, want 1", len(rs.Tracks()))
	}

	// Adding a video track again reuses the idle transceiver and fires
	// track-added with a new remote track.
	video3, err := mediafixture.NewVP8Track("video3", st.MediaStreamID())
	if err != nil {
		t.Fatal(err)
	}
	play(t, video3, mediafixture.VP8)
	if err := st.AddTrack(video3); err != nil {
		t.Fatal(err)
	}
	again := bAdded.next(t, "track-added after re-adding video")
	if again.Track == vTrack || again.Track.Codec().MimeType != webrtc.MimeTypeVP8 {
		t.Fatalf("re-added track %v", again.Track)
	}
	bRTP.waitPackets(t, again.Track, 20)
	if st, ok := a.Peer(b.ID()).State(); !ok || st.Transceiver != 2 {
		t.Fatalf("a has %d transceivers to b, want 2 (idle one reused)", st.Transceiver)
	}

	// Late joiner gets the stream replayed with its metadata.
	c := dial(t, url, testOptions(t))
	cCam := collect(c, "camera")
	join(t, c, "media")
	cev := cCam.next(t, "camera on late joiner")
	if cev.Stream.ID() != st.ID() || cev.PeerID != a.ID() {
		t.Fatalf("late joiner got stream %q from %q", cev.Stream.ID(), cev.PeerID)
	}

	// UntrackStream: connected peers keep it, a later joiner does not get
	// it, and the owner stops answering metadata requests.
	a.UntrackStream(st)
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	if _, err := b.RequestMetadata(ctx, a.ID(), st.MediaStreamID()); err == nil {
		t.Fatal("owner answered metadata after UntrackStream")
	}
	d := dial(t, url, testOptions(t))
	dCam := collect(d, "camera")
	dConn := collect(d, EventPeerConnect)
	dHello := collect(d, "hello")
	join(t, d, "media")
	for range 3 {
		dConn.next(t, "d peer-connect")
	}
	if err := a.Peer(d.ID()).Emit("hello"); err != nil {
		t.Fatal(err)
	}
	dHello.next(t, "hello from a on d")
	dCam.none(t, "camera on d after UntrackStream", time.Second)
	bRTP.waitPackets(t, again.Track, 10)
}

func TestRequestMetadataFreshAnswer(t *testing.T) {
	leakCheck(t)
	url := startGateway(t)
	a := dial(t, url, testOptions(t))
	b := dial(t, url, testOptions(t))
	bCam := collect(b, "camera")
	st, _, _ := fixtureStream(t, "cam-meta")
	if err := a.Emit("camera", st, 1); err != nil {
		t.Fatal(err)
	}
	join(t, a, "meta")
	join(t, b, "meta")
	ev := bCam.next(t, "camera")
	if n, ok := ev.Args[1].(interface{ String() string }); !ok || n.String() != "1" {
		t.Fatalf("arg 1 = %#v", ev.Args[1])
	}
	if err := a.Emit("camera", st, 2); err != nil {
		t.Fatal(err)
	}
	if err := a.Emit("screen-title", "deck", st); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	events, err := b.RequestMetadata(ctx, a.ID(), ev.Stream.MediaStreamID())
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 2 || string(events["camera"][1]) != "2" || string(events["screen-title"][0]) != `"deck"` {
		t.Fatalf("fresh events %s", events)
	}
	if string(events["camera"][0]) != `"`+PlaceholderPrefix+st.ID()+`"` {
		t.Fatalf("placeholder %s", events["camera"][0])
	}
	bCam.none(t, "camera fired again by a waited-for answer", 300*time.Millisecond)
}

// TestRemoveTrackAfterReplaceTrack removes a track after a ReplaceTrack
// and a new data channel. pion counts the replaced track as a reason to
// negotiate (its msid no longer matches) and raises negotiation-needed when
// the channel is created; the Socket declines (neither needs a round) and
// pion, its flag still set, stays silent about the removal. The Socket must
// ask for the round itself (see needOffer).
func TestRemoveTrackAfterReplaceTrack(t *testing.T) {
	leakCheck(t)
	url := startGateway(t)
	a := dial(t, url, testOptions(t))
	b := dial(t, url, testOptions(t))
	bRTP := newRTPCounter(b)
	bCam := collect(b, "camera")
	bRemoved := collect(b, EventTrackRemoved)
	cam, camAudio, camVideo := fixtureStream(t, "cam")
	if err := a.Emit("camera", cam); err != nil {
		t.Fatal(err)
	}
	joinInOrder(t, "replace-remove", a, b)
	rs := bCam.next(t, "camera on b").Stream
	// pion announces a remote track with its first packet: only a track b
	// has seen can be removed on b.
	waitTrack(t, bRTP, rs, webrtc.RTPCodecTypeAudio)

	a.mu.Lock()
	p := a.peers[b.ID()]
	a.mu.Unlock()
	// See pion's event: the Socket's own handler, plus a signal.
	negNeeded := make(chan struct{}, 16)
	p.pc.OnNegotiationNeeded(func() {
		p.post(p.requestNegotiation)
		negNeeded <- struct{}{}
	})
	camVideo2, err := mediafixture.NewVP8Track("video2-cam", cam.MediaStreamID())
	if err != nil {
		t.Fatal(err)
	}
	play(t, camVideo2, mediafixture.VP8)
	if err := cam.ReplaceTrack(camVideo, camVideo2); err != nil {
		t.Fatal(err)
	}
	replaced := make(chan struct{})
	p.post(func() { close(replaced) }) // after the actor's syncStream
	select {
	case <-replaced:
	case <-timeout():
		t.Fatal("actor stuck")
	}
	if _, err := a.Peer(b.ID()).CreateChannel("notes", ChannelOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-negNeeded: // raised for the msid; pion's flag is now set
	case <-timeout():
		t.Fatal("pion raised no negotiation-needed after ReplaceTrack and a new channel")
	}
	cam.RemoveTrack(camAudio)
	e := bRemoved.next(t, "track-removed for the audio")
	if e.Stream != rs || e.Track.Kind() != webrtc.RTPCodecTypeAudio {
		t.Fatalf("track-removed %s on %s, want audio of %s", e.Track.Kind(), e.Stream.MediaStreamID(), rs.MediaStreamID())
	}
}
