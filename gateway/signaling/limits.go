package signaling

import (
	"encoding/json"
	"fmt"
)

// checkSize applies the payload bounds to one event.
//
// A session description is bounded on its own (Options.MaxDescriptionBytes):
// in an SFU room a client's one peer connection carries an m-line per
// stream it receives, so offers and answers grow with the room while every
// other payload does not. Only the description's sdp string counts against
// that bound; everything around it (other fields a client could pad) keeps
// the ordinary MaxPayloadBytes. The gateway's own peer is trusted and never
// refused: refusing it would break the room it serves.
//
// A description refused breaks a peer connection, so it is logged as an
// error naming the room and counted apart from other refusals.
func (s *Server) checkSize(c *Conn, event string, payload []any) error {
	if c.role == RoleGateway || (s.opts.MaxPayloadBytes <= 0 && s.opts.MaxDescriptionBytes <= 0) {
		return nil
	}
	size, err := payloadSize(payload)
	if err != nil {
		return refuse(ReasonInvalidPayload, err.Error())
	}
	sdpSize, target := 0, ""
	if event == EventMessage {
		sdpSize, target = descriptionSize(payload)
	}
	if sdpSize > 0 && s.opts.MaxDescriptionBytes > 0 && sdpSize > s.opts.MaxDescriptionBytes {
		room := s.sharedRoomID(c.id, target)
		s.roomBreaking.Add(1)
		c.log.Error("session description refused: the peer connection cannot negotiate",
			"room", room, "target", target, "bytes", sdpSize, "limit", s.opts.MaxDescriptionBytes,
			"key", "signaling.max_description_bytes")
		return refuse(ReasonPayloadTooLarge, fmt.Sprintf("session description is %d bytes, the limit is %d", sdpSize, s.opts.MaxDescriptionBytes))
	}
	if rest := size - sdpSize; s.opts.MaxPayloadBytes > 0 && rest > s.opts.MaxPayloadBytes {
		if sdpSize > 0 {
			s.roomBreaking.Add(1)
			c.log.Error("session description refused: the fields around it are too large",
				"room", s.sharedRoomID(c.id, target), "target", target, "bytes", rest, "limit", s.opts.MaxPayloadBytes)
		}
		return refuse(ReasonPayloadTooLarge, fmt.Sprintf("payload is %d bytes, the limit is %d", rest, s.opts.MaxPayloadBytes))
	}
	return nil
}

// descriptionSize returns the JSON size of the sdp string of a
// #rtcio:message carrying {data: {description: {sdp}}}, and its target; 0
// when the message carries no description.
func descriptionSize(payload []any) (int, string) {
	if len(payload) == 0 {
		return 0, ""
	}
	obj, _ := payload[0].(map[string]any)
	data, _ := obj["data"].(map[string]any)
	desc, _ := data["description"].(map[string]any)
	sdp, ok := desc["sdp"].(string)
	if !ok {
		return 0, ""
	}
	b, err := json.Marshal(sdp)
	if err != nil {
		return 0, ""
	}
	target, _ := obj["target"].(string)
	return len(b), target
}

// DescriptionRefusals counts the session descriptions refused: each one
// left a client without a working peer connection.
func (s *Server) DescriptionRefusals() uint64 { return s.roomBreaking.Load() }

// sharedRoomID names a room a and b are both in, for a log line; "" when
// there is none or the directory does not answer.
func (s *Server) sharedRoomID(a, b string) string {
	ctx, cancel := s.dirCtx()
	defer cancel()
	sh, _, _ := s.dir.SharedRoom(ctx, a, b)
	return sh.Room
}
