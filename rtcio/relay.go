package rtcio

import (
	"encoding/json"
	"fmt"
)

// A relay (the gateway's peer in an SFU room) re-publishes streams it
// receives. It needs three things the JavaScript API has no word for: a
// stream that keeps the original owner's ids, metadata it copies verbatim
// from the owner's answer, and a say over which peer gets which stream
// (never the owner itself; a late joiner only after the owner confirmed the
// stream is still tracked). Streams registered with Relay are therefore
// never replayed automatically: the relay sends them with SendStream.

// NewRelayStream makes an empty stream that carries the given RTCIOStream
// id and MediaStream id, so that receivers see the original owner's ids.
func NewRelayStream(id, msid string) *Stream {
	st := NewEmptyStream(msid)
	if id != "" {
		st.id = id
	}
	return st
}

// Relay registers st in the replay registry with events copied verbatim
// from an owner's metadata answer (their stream placeholders name st's id
// when st was made with the owner's id), or replaces the events of a
// stream already registered. Metadata requests for st are answered with
// exactly these events. No peer receives st until SendStream.
func (s *Socket) Relay(st *Stream, events map[string][]json.RawMessage) error {
	if len(events) == 0 {
		return fmt.Errorf("rtcio: Relay of %s: no events", st.id)
	}
	copied := make(map[string][]json.RawMessage, len(events))
	for name, args := range events {
		copied[name] = append([]json.RawMessage(nil), args...)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	pub := s.registered(st)
	pub.relayed, pub.events = copied, nil
	return nil
}

// SendStream starts sending st to the given peers (one sendonly transceiver
// per track, as Emit does for every peer). Peers that are gone are skipped.
func (s *Socket) SendStream(st *Stream, peerIDs ...string) {
	for _, p := range s.peersByID(peerIDs) {
		p.post(func() { p.attachStream(st) })
	}
}

// RelayedEvents returns the events a relayed stream is registered with, or
// false when it is not (or no longer) registered.
func (s *Socket) RelayedEvents(st *Stream) (map[string][]json.RawMessage, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	pub := s.registry[st.id]
	if pub == nil || pub.relayed == nil {
		return nil, false
	}
	out := make(map[string][]json.RawMessage, len(pub.relayed))
	for k, v := range pub.relayed {
		out[k] = append([]json.RawMessage(nil), v...)
	}
	return out, true
}
