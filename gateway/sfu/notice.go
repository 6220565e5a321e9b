package sfu

import (
	"encoding/json"
	"slices"

	"github.com/rtcio-gateway/rtcio-gateway/rtcio"
)

// NoticeKind says what a Notice reports.
type NoticeKind string

// The stream decisions a room reports.
const (
	// StreamPublished: a publisher's stream is now relayed to the room.
	StreamPublished NoticeKind = "stream-published"
	// StreamReplayed: a client that connected got a live stream.
	StreamReplayed NoticeKind = "stream-replayed"
	// StreamNotReplayed: a client that connected did not get a stream its
	// publisher no longer confirms.
	StreamNotReplayed NoticeKind = "stream-not-replayed"
	// StreamUnpublished: a relayed stream ended and was retired.
	StreamUnpublished NoticeKind = "stream-unpublished"
	// StreamAdopted: a publisher that reconnected continues a stream on
	// the subscribers' existing tracks.
	StreamAdopted NoticeKind = "stream-adopted"
	// DuplicateTrackDropped: a publisher sent a track of a stream twice
	// (on a second transceiver); the copy is neither forwarded nor
	// recorded. Track is the repeated track id.
	DuplicateTrackDropped NoticeKind = "duplicate-track-dropped"
	// RecordingFinished: a recording ended; Manifest is its manifest.
	RecordingFinished NoticeKind = "recording-finished"
	// RecordingFailed: a recording could not start, or stopped early on an
	// error (disk full, permission, codec); Error says why.
	RecordingFailed NoticeKind = "recording-failed"
	// MediaPaused and MediaResumed: a subscriber's (Client) video of a
	// stream was paused or resumed; Reason says why ("bandwidth").
	MediaPaused  NoticeKind = "media-paused"
	MediaResumed NoticeKind = "media-resumed"
	// ActiveSpeaker: the room's active speaker is now Publisher, speaking
	// in Stream; Client is the previous speaker ("" for none).
	ActiveSpeaker NoticeKind = "active-speaker"
)

// Notice is one decision of a room about a stream.
type Notice struct {
	Kind      NoticeKind
	Room      string
	Publisher string
	// Stream is the publisher's RTCIOStream id; MediaStream its msid.
	Stream      string
	MediaStream string
	// Client is the client concerned by a replay decision.
	Client string
	// Events are the stream's event names at the time.
	Events []string
	// Recording and Manifest identify a finished recording.
	Recording string
	Manifest  string
	// Error is why a recording failed, for the operator (it may name
	// paths); Reason is the same as a short code a client may see:
	// "disk-full", "permission" or "error".
	Error, Reason string
	// Track is the track a DuplicateTrackDropped notice is about.
	Track string
}

// notice starts the Notice of a decision about the stream key, relayed as
// out (nil before its metadata arrived); callers add what else it says.
func (k streamKey) notice(kind NoticeKind, out *rtcio.Stream) Notice {
	n := Notice{Kind: kind, Publisher: k.publisher, MediaStream: k.msid}
	if out != nil {
		n.Stream = out.ID()
	}
	return n
}

func (r *Room) notify(n Notice) {
	if r.cfg.Notify != nil {
		n.Room = r.id
		r.cfg.Notify(n)
	}
}

func eventNames(events map[string][]json.RawMessage) []string {
	names := make([]string, 0, len(events))
	for k := range events {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}
