package sfu_test

import (
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/rtcio-gateway/rtcio-gateway/rtcio"
)

// levelTrack is an Opus track whose packets carry the RFC 6464 audio level
// the test sets: a participant whose loudness the test scripts. The
// payload is an Opus silence frame; the gateway forwards it without
// decoding.
type levelTrack struct {
	id, streamID string
	level        atomic.Int32 // 0 loudest .. 127 silence

	mu      sync.Mutex
	binds   []levelBinding
	started bool
	stop    chan struct{}
	done    sync.WaitGroup
}

type levelBinding struct {
	w     webrtc.TrackLocalWriter
	ssrc  uint32
	pt    uint8
	extID uint8
	ctxID string
}

func newLevelTrack(t *testing.T, id, streamID string) *levelTrack {
	l := &levelTrack{id: id, streamID: streamID, stop: make(chan struct{})}
	l.level.Store(127)
	t.Cleanup(func() { close(l.stop); l.done.Wait() })
	return l
}

func (l *levelTrack) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	var codec webrtc.RTPCodecParameters
	found := false
	for _, c := range ctx.CodecParameters() {
		if c.MimeType == webrtc.MimeTypeOpus {
			codec, found = c, true
			break
		}
	}
	if !found {
		return codec, webrtc.ErrUnsupportedCodec
	}
	b := levelBinding{w: ctx.WriteStream(), ssrc: uint32(ctx.SSRC()), pt: uint8(codec.PayloadType), ctxID: ctx.ID()}
	for _, e := range ctx.HeaderExtensions() {
		if e.URI == sdp.AudioLevelURI {
			b.extID = uint8(e.ID)
		}
	}
	l.mu.Lock()
	l.binds = append(l.binds, b)
	if !l.started {
		l.started = true
		l.done.Add(1)
		go l.run()
	}
	l.mu.Unlock()
	return codec, nil
}

func (l *levelTrack) Unbind(ctx webrtc.TrackLocalContext) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, b := range l.binds {
		if b.ctxID == ctx.ID() {
			l.binds = append(l.binds[:i], l.binds[i+1:]...)
			break
		}
	}
	return nil
}

func (l *levelTrack) ID() string                { return l.id }
func (l *levelTrack) RID() string               { return "" }
func (l *levelTrack) StreamID() string          { return l.streamID }
func (l *levelTrack) Kind() webrtc.RTPCodecType { return webrtc.RTPCodecTypeAudio }
func (l *levelTrack) Codec() webrtc.RTPCodecCapability {
	return webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}
}

// run sends a 20 ms packet every 20 ms, as a browser does.
func (l *levelTrack) run() {
	defer l.done.Done()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var seq uint16
	var ts uint32
	for {
		select {
		case <-l.stop:
			return
		case <-tick.C:
		}
		seq++
		ts += 960
		l.mu.Lock()
		binds := append([]levelBinding(nil), l.binds...)
		l.mu.Unlock()
		for _, b := range binds {
			h := rtp.Header{Version: 2, PayloadType: b.pt, SequenceNumber: seq, Timestamp: ts, SSRC: b.ssrc}
			if b.extID != 0 {
				lv := uint8(l.level.Load())
				if lv < 127 {
					lv |= 0x80 // voice activity
				}
				_ = h.SetExtension(b.extID, []byte{lv})
			}
			_, _ = b.w.WriteRTP(&h, []byte{0xf8, 0xff, 0xfe})
		}
	}
}

// dialSpeaker connects a Go participant whose API negotiates the audio
// level extension, as browsers do.
func dialSpeaker(t *testing.T, url, room string) *rtcio.Socket {
	t.Helper()
	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	if err := me.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: sdp.AudioLevelURI}, webrtc.RTPCodecTypeAudio); err != nil {
		t.Fatal(err)
	}
	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
	s := dialSocketAPI(t, url, webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithSettingEngine(se)))
	join(t, s, room)
	return s
}

type speakerEvent struct {
	at   time.Time
	body struct {
		RoomID   string  `json:"roomId"`
		Speaker  string  `json:"speaker"`
		StreamID string  `json:"streamId"`
		Previous *string `json:"previous"`
	}
}

// TestActiveSpeakerFollowsTurns: three participants speak in turn (their
// audio levels scripted, the others silent, with a cough from a listener
// in each turn); a fourth client hears active-speaker follow each turn
// within 1 s, with at most one spurious change per turn, and with the
// speaker's stream id and the previous speaker.
func TestActiveSpeakerFollowsTurns(t *testing.T) {
	gw, _ := startSFU(t)
	const room = "speakers"
	listener := dialSpeaker(t, gw.URL, room)
	var mu sync.Mutex
	var events []speakerEvent
	listener.Server().On("active-speaker", func(ev *rtcio.Event) {
		var e speakerEvent
		e.at = time.Now()
		if len(ev.Raw) > 0 {
			_ = json.Unmarshal(ev.Raw[0], &e.body)
		}
		mu.Lock()
		events = append(events, e)
		mu.Unlock()
	})
	type speakerPeer struct {
		s      *rtcio.Socket
		track  *levelTrack
		stream *rtcio.Stream
	}
	var peers []speakerPeer
	for i := range 3 {
		s := dialSpeaker(t, gw.URL, room)
		tr := newLevelTrack(t, fmt.Sprintf("mic-%d", i), fmt.Sprintf("voice-%d", i))
		st, err := rtcio.NewStream(tr)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Emit("voice", map[string]any{"stream": st}); err != nil {
			t.Fatal(err)
		}
		peers = append(peers, speakerPeer{s: s, track: tr, stream: st})
	}
	// Every voice reaches the listener before the turns start.
	got := make(chan string, 8)
	listener.On("voice", func(ev *rtcio.Event) {
		if ev.Stream != nil {
			got <- ev.Stream.ID()
		}
	})
	deadline := time.After(waitFor)
	for seen := map[string]bool{}; len(seen) < 3; {
		select {
		case id := <-got:
			seen[id] = true
		case <-deadline:
			t.Fatal("the voices did not reach the listener")
		}
	}

	const turn = 3 * time.Second
	order := []int{0, 1, 2, 0}
	starts := make([]time.Time, len(order))
	for i, who := range order {
		starts[i] = time.Now()
		for j, p := range peers {
			if j == who {
				p.track.level.Store(25) // -25 dBov: talking
			} else {
				p.track.level.Store(127)
			}
		}
		// A cough: a listener is loud for 120 ms mid-turn.
		time.Sleep(turn / 2) // the script's timing, not a synchronisation
		cougher := peers[(who+1)%3].track
		cougher.level.Store(15)
		time.Sleep(120 * time.Millisecond)
		cougher.level.Store(127)
		time.Sleep(turn/2 - 120*time.Millisecond)
	}
	end := time.Now()

	if n := value(t, scrape(t, gw.URL), "rtcio_active_speaker_changes_total"); n < float64(len(order)) {
		t.Errorf("rtcio_active_speaker_changes_total %v after %d turns", n, len(order))
	}
	mu.Lock()
	defer mu.Unlock()
	for i, who := range order {
		want := peers[who]
		until := end
		if i+1 < len(starts) {
			until = starts[i+1]
		}
		var followed time.Duration = -1
		spurious := 0
		for _, e := range events {
			if e.at.Before(starts[i]) || !e.at.Before(until) {
				continue
			}
			if e.body.Speaker == want.s.ID() && followed < 0 {
				followed = e.at.Sub(starts[i])
				if e.body.StreamID != want.stream.ID() || e.body.RoomID != room {
					t.Errorf("turn %d: event %+v, want stream %s in room %s", i, e.body, want.stream.ID(), room)
				}
				if i > 0 && (e.body.Previous == nil || *e.body.Previous != peers[order[i-1]].s.ID()) {
					t.Errorf("turn %d: previous %v, want %s", i, e.body.Previous, peers[order[i-1]].s.ID())
				}
				continue
			}
			spurious++
		}
		t.Logf("turn %d (%s): active-speaker after %v, %d spurious changes", i, want.s.ID(), followed, spurious)
		if followed < 0 || followed > time.Second {
			t.Errorf("turn %d: active-speaker followed after %v, want within 1s", i, followed)
		}
		if spurious > 1 {
			t.Errorf("turn %d: %d spurious changes", i, spurious)
		}
	}
}
