package rtcio

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf16"
)

// Wire constants from docs/PROTOCOL.md section 5.
const (
	// InternalPrefix starts every library-internal event name.
	InternalPrefix = "#rtcio:"
	// CtrlLabel is the label of the ctrl data channel (SCTP stream id 0).
	CtrlLabel = "rtcio:ctrl"
	// ChannelLabelPrefix starts the label of every custom channel.
	ChannelLabelPrefix = "rtcio:ch:"
	// MaxEnvelopeBytes is the largest ctrl or channel text frame a receiver
	// parses; bigger frames are dropped before JSON decoding.
	MaxEnvelopeBytes = 1 << 20
	// MaxCtrlQueue bounds the envelopes queued per peer before the ctrl
	// channel opens; the oldest is dropped when full.
	MaxCtrlQueue = 1024
)

// Signaling event names (docs/PROTOCOL.md section 2).
const (
	EventMessage   = "#rtcio:message"
	EventInitOffer = "#rtcio:init-offer"
	EventPeerLeft  = "#rtcio:peer-left"
)

// Lifecycle event names fired by the Socket itself.
const (
	EventPeerConnect    = "peer-connect"
	EventPeerDisconnect = "peer-disconnect"
	EventTrackAdded     = "track-added"
	EventTrackRemoved   = "track-removed"
)

var errReserved = errors.New("reserved event name")

// IsReservedEvent reports whether a remote peer is forbidden to deliver an
// event of this name over a data channel: internal names and the lifecycle
// events only the local Socket may fire.
func IsReservedEvent(name string) bool {
	if strings.HasPrefix(name, InternalPrefix) {
		return true
	}
	switch name {
	case EventPeerConnect, EventPeerDisconnect, EventTrackAdded, EventTrackRemoved:
		return true
	}
	return false
}

// ChannelID maps a custom channel name to its negotiated SCTP stream id in
// [1, 1023]: FNV-1a 32 over the name's UTF-16 code units (as JavaScript's
// charCodeAt sees them), modulo 1023, plus one.
func ChannelID(name string) uint16 {
	h := uint32(0x811c9dc5)
	for _, c := range utf16.Encode([]rune(name)) {
		h ^= uint32(c)
		h *= 0x01000193
	}
	return uint16(h%1023) + 1
}

// envelope is the text frame carried on the ctrl and custom channels.
type envelope struct {
	E string `json:"e"`
	D []any  `json:"d"`
}

// encodeEnvelope serialises an event for a data channel. A nil args slice is
// sent as an empty array, as the JavaScript client does.
func encodeEnvelope(name string, args []any) ([]byte, error) {
	if args == nil {
		args = []any{}
	}
	b, err := json.Marshal(envelope{E: name, D: args})
	if err != nil {
		return nil, fmt.Errorf("rtcio: encode %q envelope: %w", name, err)
	}
	return b, nil
}

// decodeEnvelope parses a received text frame. It enforces the receive-side
// rules of docs/PROTOCOL.md section 5: size limit, valid JSON object, string `e`,
// reserved names rejected, non-array `d` meaning no arguments.
func decodeEnvelope(data []byte) (string, []json.RawMessage, error) {
	if len(data) > MaxEnvelopeBytes {
		return "", nil, fmt.Errorf("envelope of %d bytes exceeds %d", len(data), MaxEnvelopeBytes)
	}
	var raw struct {
		E json.RawMessage `json:"e"`
		D json.RawMessage `json:"d"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return "", nil, fmt.Errorf("envelope is not a JSON object: %w", err)
	}
	var name string
	if len(raw.E) == 0 || raw.E[0] != '"' {
		return "", nil, errors.New("envelope has no string event name")
	}
	if err := json.Unmarshal(raw.E, &name); err != nil {
		return "", nil, fmt.Errorf("envelope event name: %w", err)
	}
	if IsReservedEvent(name) {
		return name, nil, fmt.Errorf("%w %q", errReserved, name)
	}
	var args []json.RawMessage
	if d := bytes.TrimSpace(raw.D); len(d) > 0 && d[0] == '[' {
		if err := json.Unmarshal(d, &args); err != nil {
			return name, nil, fmt.Errorf("envelope args: %w", err)
		}
	}
	return name, args, nil
}
