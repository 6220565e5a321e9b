// Package webhook tells other systems what happens in the gateway: it POSTs a
// signed JSON event to every configured URL when a room starts or finishes, a
// participant joins or leaves, a stream is published or unpublished, or a
// recording is finished.
//
// Delivery never blocks the caller. Each URL has its own bounded queue and
// one sender goroutine, so a slow or dead receiver delays only its own
// events; when a queue is full the event is dropped for that URL, logged and
// counted. A failed POST (network error, 408, 429 or 5xx) is retried with
// exponential backoff and jitter, bounded by an attempt count and by the
// event's age; other 4xx answers are final.
//
// # What a receiver gets
//
// The body is the JSON encoding of Event. The headers are:
//
//	Content-Type:       application/json
//	X-Rtcio-Event-Id:   evt_...   (the same on every retry: deduplicate on it)
//	X-Rtcio-Event-Type: room_started, participant_joined, ...
//	X-Rtcio-Attempt:    1, 2, ... (which try this is)
//	X-Rtcio-Timestamp:  Unix seconds when this attempt was sent
//	X-Rtcio-Signature:  sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>
//
// The timestamp is part of the signed text, so a receiver that also rejects
// timestamps far from its clock (Verify's tolerance) is safe from replays of
// old deliveries. Verify checks all of this for a receiver written in Go.
package webhook

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"time"
)

// EventType names what happened.
type EventType string

// The event types the gateway sends.
const (
	RoomStarted       EventType = "room_started"
	RoomFinished      EventType = "room_finished"
	ParticipantJoined EventType = "participant_joined"
	ParticipantLeft   EventType = "participant_left"
	StreamPublished   EventType = "stream_published"
	StreamUnpublished EventType = "stream_unpublished"
	RecordingFinished EventType = "recording_finished"
	RecordingFailed   EventType = "recording_failed"
)

const (
	eventIDPrefix = "evt_"
	// maxEventBodyLength keeps one odd manifest from filling memory times
	// the number of URLs and queue slots.
	maxEventBodyLength = 4 << 20
)

// Types lists every event type, in the order of a room's life.
func Types() []EventType {
	return []EventType{
		RoomStarted, ParticipantJoined, StreamPublished, StreamUnpublished,
		RecordingFailed, RecordingFinished, ParticipantLeft, RoomFinished,
	}
}

// Valid reports whether t is one of the types the gateway sends.
func (t EventType) Valid() bool {
	for _, known := range Types() {
		if t == known {
			return true
		}
	}
	return false
}

// Event is one webhook payload. Which optional parts are set depends on the
// type: Participant for participant events, Stream for stream events (and
// its publisher in Participant), Recording for recording_finished.
type Event struct {
	// ID identifies the event across retries; Notify fills it when empty.
	ID   string    `json:"id"`
	Type EventType `json:"type"`
	// CreatedAt is when the event happened; Notify fills it when zero.
	CreatedAt   time.Time    `json:"created_at"`
	Room        string       `json:"room"`
	Participant *Participant `json:"participant,omitempty"`
	Stream      *Stream      `json:"stream,omitempty"`
	Recording   *Recording   `json:"recording,omitempty"`
}

// Participant is a socket in a room.
type Participant struct {
	SocketID string `json:"socket_id"`
	Name     string `json:"name,omitempty"`
}

// Stream is a published rtc.io stream.
type Stream struct {
	// ID is the MediaStream id carried in the SDP msid.
	ID string `json:"id"`
	// Event is the rtc.io event name it was emitted with ("camera", ...).
	Event string `json:"event,omitempty"`
	// Kinds lists the track kinds ("audio", "video").
	Kinds []string `json:"kinds,omitempty"`
}

// Recording is a finished or failed recording.
type Recording struct {
	ID string `json:"id,omitempty"`
	// Stream is the RTCIOStream id recorded; Error why a recording failed.
	Stream string `json:"stream,omitempty"`
	Error  string `json:"error,omitempty"`
	// Manifest is the recorder's manifest, passed through untouched; it must
	// be valid JSON when set.
	Manifest json.RawMessage `json:"manifest,omitempty"`
}

// newEventID returns a random id; 26 base32 characters carry 130 bits, so
// receivers can treat a repeated id as a retry without fearing collisions.
func newEventID() string { return eventIDPrefix + rand.Text() }

// prepare fills the defaults of ev and encodes it, refusing events a
// receiver could not make sense of.
func prepare(ev *Event, now time.Time) ([]byte, error) {
	if !ev.Type.Valid() {
		return nil, fmt.Errorf("webhook: unknown event type %q", ev.Type)
	}
	if ev.ID == "" {
		ev.ID = newEventID()
	}
	if ev.CreatedAt.IsZero() {
		ev.CreatedAt = now
	}
	ev.CreatedAt = ev.CreatedAt.UTC()
	if ev.Recording != nil && len(ev.Recording.Manifest) > 0 && !json.Valid(ev.Recording.Manifest) {
		return nil, fmt.Errorf("webhook: %s event %s: recording %q manifest is not valid JSON", ev.Type, ev.ID, ev.Recording.ID)
	}
	body, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("webhook: encode %s event %s: %w", ev.Type, ev.ID, err)
	}
	if len(body) > maxEventBodyLength {
		return nil, fmt.Errorf("webhook: %s event %s is %d bytes, over the %d byte limit", ev.Type, ev.ID, len(body), maxEventBodyLength)
	}
	return body, nil
}
