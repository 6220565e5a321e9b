package rtcio

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/pion/webrtc/v4"
)

// message is one `#rtcio:message` payload (docs/PROTOCOL.md section 3).
type message struct {
	Source string      `json:"source"`
	Target string      `json:"target"`
	Data   messageData `json:"data"`
}

// messageData holds exactly one of the four variants. Field order of the
// checks in kind() mirrors the JavaScript client: description, candidate,
// events, then a bare mid.
type messageData struct {
	Description *sessionDescription          `json:"description,omitempty"`
	Candidate   *webrtc.ICECandidateInit     `json:"candidate,omitempty"`
	Mid         *string                      `json:"mid,omitempty"`
	Events      map[string][]json.RawMessage `json:"events,omitempty"`
}

// sessionDescription is the browser's RTCSessionDescriptionInit.
type sessionDescription struct {
	Type string `json:"type"`
	SDP  string `json:"sdp"`
}

type messageKind int

const (
	kindUnknown messageKind = iota
	kindDescription
	kindCandidate
	kindMetaAnswer
	kindMetaRequest
)

func (d *messageData) kind() messageKind {
	switch {
	case d.Description != nil:
		return kindDescription
	case d.Candidate != nil:
		return kindCandidate
	case d.Events != nil && d.Mid != nil:
		return kindMetaAnswer
	case d.Mid != nil && *d.Mid != "":
		return kindMetaRequest
	}
	return kindUnknown
}

var errBadMessage = errors.New("rtcio: malformed #rtcio:message")

// decodeMessageJSON parses the JSON form of a `#rtcio:message` payload and
// checks it names a source and carries one usable variant.
func decodeMessageJSON(b []byte) (*message, error) {
	var m message
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%w: %w", errBadMessage, err)
	}
	if m.Source == "" {
		return nil, fmt.Errorf("%w: no source", errBadMessage)
	}
	switch m.Data.kind() {
	case kindUnknown:
		return nil, fmt.Errorf("%w: no known data variant", errBadMessage)
	case kindDescription:
		if t := m.Data.Description.Type; t != "offer" && t != "answer" {
			return nil, fmt.Errorf("%w: description type %q", errBadMessage, t)
		}
	}
	return &m, nil
}

// decodeMessage accepts the payload as the signaling layer delivered it:
// decoded JSON (map[string]any), raw bytes, or a *message from an in-process
// transport.
func decodeMessage(arg any) (*message, error) {
	switch v := arg.(type) {
	case *message:
		return v, nil
	case []byte:
		return decodeMessageJSON(v)
	case json.RawMessage:
		return decodeMessageJSON(v)
	default:
		b, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", errBadMessage, err)
		}
		return decodeMessageJSON(b)
	}
}

// parseSDPType maps the wire type to pion's.
func (d *sessionDescription) toPion() webrtc.SessionDescription {
	return webrtc.SessionDescription{Type: webrtc.NewSDPType(d.Type), SDP: d.SDP}
}
