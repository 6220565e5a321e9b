package sfu

import (
	"strings"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/rtcio-gateway/rtcio-gateway/internal/defaults"
	"github.com/rtcio-gateway/rtcio-gateway/speaker"
)

// The active speaker. Publishers put the RFC 6464 audio level in their
// audio packets (NewAPI negotiates the extension); each audio track's
// read loop hands the levels to the room's speaker.Detector, and the
// room's loop tells every client when the speaker changes. The detector's
// hysteresis keeps a cough from moving the spotlight; the speaker's video
// is also the last one paused for a subscriber short of bandwidth.

// EventActiveSpeaker is the server event sent to a room's clients when its
// active speaker changes.
const EventActiveSpeaker = "active-speaker"

// SpeakerConfig configures active-speaker detection. The zero value
// leaves it off.
type SpeakerConfig struct {
	Enabled bool
	// Interval between two decisions. Default 100 ms.
	Interval time.Duration
	// Detector tunes the hysteresis (see package speaker).
	Detector speaker.Config
}

func (c *SpeakerConfig) setDefaults() {
	defaults.Positive(&c.Interval, 100*time.Millisecond)
}

// SpeakerPayload is the payload of active-speaker: the publisher now
// speaking, the stream its voice is in, and the previous speaker (null for
// none).
type SpeakerPayload struct {
	RoomID   string  `json:"roomId"`
	Speaker  string  `json:"speaker"`
	StreamID string  `json:"streamId"`
	Previous *string `json:"previous"`
}

// audioLevelID is the id the publisher's connection negotiated for the
// audio level extension, 0 when it did not.
func audioLevelID(receiver *webrtc.RTPReceiver) uint8 {
	for _, e := range receiver.GetParameters().HeaderExtensions {
		if e.URI == sdp.AudioLevelURI && e.ID > 0 && e.ID < 256 {
			return uint8(e.ID)
		}
	}
	return 0
}

// levelReader finds the audio level in a received packet without
// allocating per packet (the header is reused). It is owned by one read
// loop.
type levelReader struct {
	id  uint8
	hdr rtp.Header
}

// level returns the packet's audio level (0 loudest, 127 silence).
func (l *levelReader) level(buf []byte) (uint8, bool) {
	if _, err := l.hdr.Unmarshal(buf); err != nil {
		return 0, false
	}
	e := l.hdr.GetExtension(l.id)
	if len(e) == 0 {
		return 0, false
	}
	return e[0] & 0x7f, true
}

// levelsFor returns what the read loop of track calls with each packet's
// audio level, or nil when the room does not follow speakers or the track
// carries no levels.
func (r *Room) levelsFor(key streamKey, track *webrtc.TrackRemote, receiver *webrtc.RTPReceiver) (*levelReader, func(uint8)) {
	if r.speaker == nil || track.Kind() != webrtc.RTPCodecTypeAudio {
		return nil, nil
	}
	id := audioLevelID(receiver)
	if id == 0 {
		return nil, nil
	}
	src := trackKey(key, track.ID())
	return &levelReader{id: id}, func(level uint8) { r.speaker.Observe(src, level, time.Now()) }
}

// forgetSpeaker drops an ended audio track from the detector.
func (r *Room) forgetSpeaker(key streamKey, in *inbound) {
	if r.speaker != nil && in.track.Kind() == webrtc.RTPCodecTypeAudio {
		r.speaker.Remove(trackKey(key, in.track.ID()))
	}
}

// speakerPublisher is the current speaker's client id ("" for none).
func (r *Room) speakerPublisher() string {
	if r.speaker == nil {
		return ""
	}
	pub, _, _ := strings.Cut(r.speaker.Current(), "/")
	return pub
}

// speakerPayload describes source (a trackKey) as the room's speaker.
func (r *Room) speakerPayload(source, previous string) SpeakerPayload {
	parts := strings.SplitN(source, "/", 3)
	p := SpeakerPayload{RoomID: r.id, Speaker: parts[0]}
	if len(parts) == 3 {
		r.mu.Lock()
		if rel := r.streams[streamKey{parts[0], parts[1]}]; rel != nil && rel.out != nil {
			p.StreamID = rel.out.ID()
		}
		r.mu.Unlock()
	}
	if previous != "" {
		prev, _, _ := strings.Cut(previous, "/")
		p.Previous = &prev
	}
	return p
}

// tickSpeaker decides the speaker and tells the room when it changed.
func (r *Room) tickSpeaker(now time.Time) {
	cur, prev, changed := r.speaker.Tick(now)
	if !changed {
		return
	}
	p := r.speakerPayload(cur, prev)
	if p.Previous != nil && *p.Previous == p.Speaker {
		// Another track of the same publisher: not a change for the room.
		return
	}
	r.log.Debug("sfu: active speaker", "speaker", p.Speaker, "stream", p.StreamID)
	if r.cfg.AdaptObserver != nil {
		r.cfg.AdaptObserver.SpeakerChanged()
	}
	r.tellAll(EventActiveSpeaker, p)
	n := Notice{Kind: ActiveSpeaker, Publisher: p.Speaker, Stream: p.StreamID}
	if p.Previous != nil {
		n.Client = *p.Previous
	}
	r.notify(n)
}

// tellSpeaker tells a client that connected who speaks, if anyone does.
func (r *Room) tellSpeaker(client string) {
	if r.speaker == nil || r.cfg.Tell == nil {
		return
	}
	if cur := r.speaker.Current(); cur != "" {
		r.cfg.Tell(client, EventActiveSpeaker, r.speakerPayload(cur, ""))
	}
}

// tellAll sends a server event to every client of the room.
func (r *Room) tellAll(event string, payload any) {
	if r.cfg.Tell == nil {
		return
	}
	for _, id := range r.sock.Peers() {
		r.cfg.Tell(id, event, payload)
	}
}

// control is the room's clock: speaker decisions and bandwidth decisions,
// until the room closes.
func (r *Room) control() {
	defer r.loops.Done()
	var adaptTick, speakerTick <-chan time.Time
	if r.adapt != nil {
		t := time.NewTicker(r.adapt.cfg.Interval)
		defer t.Stop()
		adaptTick = t.C
	}
	if r.speaker != nil {
		t := time.NewTicker(r.cfg.Speaker.Interval)
		defer t.Stop()
		speakerTick = t.C
	}
	last := time.Now()
	for {
		select {
		case <-r.ctx.Done():
			return
		case now := <-speakerTick:
			r.tickSpeaker(now)
		case now := <-adaptTick:
			r.decide(now, now.Sub(last))
			r.adapt.forgetConns(r.sock.Peers(), now)
			last = now
		}
	}
}
