package rtcio

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
)

// PlaceholderPrefix starts the string that stands for a stream inside
// metadata arguments: "[RTCIOStream] <stream id>".
const PlaceholderPrefix = "[RTCIOStream] "

func parsePlaceholder(s string) (string, bool) {
	// The JavaScript client matches the prefix without the space and then
	// strips "[RTCIOStream] "; accept exactly what it produces.
	if !strings.HasPrefix(s, "[RTCIOStream]") {
		return "", false
	}
	return strings.TrimPrefix(s, PlaceholderPrefix), true
}

// newUUID returns a random RFC 4122 version 4 UUID string.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// Stream is a local stream: one or more pion TrackLocals sharing one
// MediaStream id (each track's StreamID), plus the stream's own id (a UUID)
// that stands for it in metadata. Emitting an event with a *Stream among the
// args publishes it to every peer.
type Stream struct {
	id    string
	msid  string
	mu    sync.Mutex
	track []webrtc.TrackLocal
	// watchers are the peers this stream is attached to; each is told to
	// resynchronise its senders when the track set changes.
	watchers map[*peer]struct{}
	onRTCP   func(peerID string, track webrtc.TrackLocal, pkts []rtcp.Packet)
}

var errStreamID = errors.New("rtcio: track stream id mismatch")

// NewStream groups tracks into a stream. All tracks must report the same
// StreamID, which becomes the MediaStream id carried in the SDP msid.
func NewStream(tracks ...webrtc.TrackLocal) (*Stream, error) {
	if len(tracks) == 0 {
		return nil, errors.New("rtcio: NewStream needs at least one track (use NewEmptyStream for none)")
	}
	s := NewEmptyStream(tracks[0].StreamID())
	for _, t := range tracks {
		if err := s.AddTrack(t); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// NewEmptyStream makes a stream with MediaStream id msid and no tracks yet.
func NewEmptyStream(msid string) *Stream {
	if msid == "" {
		msid = newUUID()
	}
	return &Stream{id: newUUID(), msid: msid, watchers: make(map[*peer]struct{})}
}

// ID is the stream's own id, sent in the metadata placeholder.
func (s *Stream) ID() string { return s.id }

// MediaStreamID is the msid stream id receivers see.
func (s *Stream) MediaStreamID() string { return s.msid }

// Tracks returns the current tracks.
func (s *Stream) Tracks() []webrtc.TrackLocal {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]webrtc.TrackLocal(nil), s.track...)
}

// MarshalJSON writes the placeholder, so a *Stream anywhere inside emitted
// arguments serialises the way the JavaScript client's stream does.
func (s *Stream) MarshalJSON() ([]byte, error) {
	return json.Marshal(PlaceholderPrefix + s.id)
}

// OnRTCP registers a callback for RTCP that receivers send about this
// stream's tracks (keyframe requests, receiver reports), per peer.
func (s *Stream) OnRTCP(f func(peerID string, track webrtc.TrackLocal, pkts []rtcp.Packet)) {
	s.mu.Lock()
	s.onRTCP = f
	s.mu.Unlock()
}

func (s *Stream) rtcpHandler() func(string, webrtc.TrackLocal, []rtcp.Packet) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.onRTCP
}

// AddTrack adds a track; peers the stream is published to get a new sendonly
// transceiver (or reuse an idle one of the same kind) and renegotiate.
func (s *Stream) AddTrack(t webrtc.TrackLocal) error {
	if t.StreamID() != s.msid {
		return fmt.Errorf("%w: track %q has stream id %q, stream is %q", errStreamID, t.ID(), t.StreamID(), s.msid)
	}
	s.mu.Lock()
	for _, x := range s.track {
		if x == t {
			s.mu.Unlock()
			return nil
		}
	}
	s.track = append(s.track, t)
	s.mu.Unlock()
	s.changed()
	return nil
}

// RemoveTrack removes a track; on every peer its sender stops and its
// transceiver goes inactive (renegotiates), so the receiver fires
// track-removed. The transceiver stays for reuse.
func (s *Stream) RemoveTrack(t webrtc.TrackLocal) {
	s.mu.Lock()
	for i, x := range s.track {
		if x == t {
			s.track = append(s.track[:i:i], s.track[i+1:]...)
			break
		}
	}
	s.mu.Unlock()
	s.changed()
}

// ReplaceTrack swaps old for a new track of the same kind on the existing
// senders, without renegotiation. The sender keeps its SSRC, but a pion
// sample track starts its own RTP sequence numbers, which a receiver's SRTP
// replay protection may reject when they fall behind the old track's;
// tracks that write RTP themselves should continue the old numbering.
func (s *Stream) ReplaceTrack(old, repl webrtc.TrackLocal) error {
	if repl.Kind() != old.Kind() {
		return fmt.Errorf("rtcio: ReplaceTrack: kind %s != %s", repl.Kind(), old.Kind())
	}
	if repl.StreamID() != s.msid {
		return fmt.Errorf("%w: track %q has stream id %q, stream is %q", errStreamID, repl.ID(), repl.StreamID(), s.msid)
	}
	s.mu.Lock()
	found := false
	for i, x := range s.track {
		if x == old {
			s.track[i] = repl
			found = true
			break
		}
	}
	s.mu.Unlock()
	if !found {
		return fmt.Errorf("rtcio: ReplaceTrack: track %q is not in the stream", old.ID())
	}
	s.changed()
	return nil
}

func (s *Stream) watch(p *peer) {
	s.mu.Lock()
	s.watchers[p] = struct{}{}
	s.mu.Unlock()
}

func (s *Stream) unwatch(p *peer) {
	s.mu.Lock()
	delete(s.watchers, p)
	s.mu.Unlock()
}

func (s *Stream) changed() {
	s.mu.Lock()
	ps := make([]*peer, 0, len(s.watchers))
	for p := range s.watchers {
		ps = append(ps, p)
	}
	s.mu.Unlock()
	for _, p := range ps {
		p.post(func() { p.syncStream(s) })
	}
}

// findStream searches emitted args for a *Stream, the way the JavaScript
// client searches deeply for its stream wrapper.
func findStream(args []any) *Stream {
	for _, a := range args {
		if s := findStreamValue(reflect.ValueOf(a), 0); s != nil {
			return s
		}
	}
	return nil
}

func findStreamValue(v reflect.Value, depth int) *Stream {
	if depth > 32 || !v.IsValid() {
		return nil
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return nil
		}
		if s, ok := v.Interface().(*Stream); ok {
			return s
		}
		return findStreamValue(v.Elem(), depth+1)
	case reflect.Interface:
		if v.IsNil() {
			return nil
		}
		return findStreamValue(v.Elem(), depth+1)
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if !v.Type().Field(i).IsExported() {
				continue
			}
			if s := findStreamValue(v.Field(i), depth+1); s != nil {
				return s
			}
		}
	case reflect.Slice, reflect.Array:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return nil
		}
		for i := 0; i < v.Len(); i++ {
			if s := findStreamValue(v.Index(i), depth+1); s != nil {
				return s
			}
		}
	case reflect.Map:
		it := v.MapRange()
		for it.Next() {
			if s := findStreamValue(it.Value(), depth+1); s != nil {
				return s
			}
		}
	}
	return nil
}

// RemoteStream is a stream received from one peer: its MediaStream id, the
// id adopted from the owner's metadata placeholder, and its tracks as pion
// TrackRemotes.
type RemoteStream struct {
	msid   string
	peerID string
	mu     sync.Mutex
	id     string
	tracks []*webrtc.TrackRemote
	// events holds the last metadata answer, by event name.
	events map[string][]json.RawMessage
	ended  bool
}

// ID is the owner's stream id once metadata arrived (until then the
// MediaStream id, as in the JavaScript client's fresh wrapper).
func (r *RemoteStream) ID() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.id
}

// MediaStreamID is the msid stream id of the received tracks.
func (r *RemoteStream) MediaStreamID() string { return r.msid }

// PeerID is the id of the peer that sends this stream.
func (r *RemoteStream) PeerID() string { return r.peerID }

// Tracks returns the stream's current tracks.
func (r *RemoteStream) Tracks() []*webrtc.TrackRemote {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*webrtc.TrackRemote(nil), r.tracks...)
}

// Events returns the last metadata answer received for this stream.
func (r *RemoteStream) Events() map[string][]json.RawMessage {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string][]json.RawMessage, len(r.events))
	for k, v := range r.events {
		out[k] = append([]json.RawMessage(nil), v...)
	}
	return out
}

// Ended reports whether the stream lost all its tracks or its peer.
func (r *RemoteStream) Ended() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ended
}

// MarshalJSON writes the placeholder, so a relayed RemoteStream serialises
// like a local one.
func (r *RemoteStream) MarshalJSON() ([]byte, error) {
	return json.Marshal(PlaceholderPrefix + r.ID())
}

// UnmarshalJSON accepts the placeholder string; Event.Decode then points
// the field at the event's stream.
func (r *RemoteStream) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("rtcio: stream placeholder: %w", err)
	}
	id, ok := parsePlaceholder(s)
	if !ok {
		return fmt.Errorf("rtcio: %q is not a stream placeholder", s)
	}
	r.mu.Lock()
	r.id = id
	r.mu.Unlock()
	return nil
}

func (r *RemoteStream) adoptID(id string) {
	r.mu.Lock()
	r.id = id
	r.mu.Unlock()
}

// setTrack adds t, replacing a track of the same kind (what the JavaScript
// client does with its MediaStream on a known stream id).
func (r *RemoteStream) setTrack(t *webrtc.TrackRemote) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ended = false
	for i, x := range r.tracks {
		if x == t {
			return
		}
		if x.Kind() == t.Kind() {
			r.tracks[i] = t
			return
		}
	}
	r.tracks = append(r.tracks, t)
}

// dropTrack removes t and reports whether the stream has no tracks left.
func (r *RemoteStream) dropTrack(t *webrtc.TrackRemote) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, x := range r.tracks {
		if x == t {
			r.tracks = append(r.tracks[:i:i], r.tracks[i+1:]...)
			break
		}
	}
	if len(r.tracks) == 0 {
		r.ended = true
	}
	return r.ended
}
