package rtcio

import (
	"fmt"

	"github.com/pion/webrtc/v4"
)

// PeerHandle addresses one remote peer (socket.peer(id) in JavaScript). It
// is a name, not a reference: it keeps working across reconnections of the
// same id and reports errNoPeer while no such peer exists.
type PeerHandle struct {
	s  *Socket
	id string
}

// Peer returns a handle for peer id.
func (s *Socket) Peer(id string) *PeerHandle { return &PeerHandle{s: s, id: id} }

// ID is the peer's signaling id.
func (h *PeerHandle) ID() string { return h.id }

func (h *PeerHandle) get() *peer {
	h.s.mu.Lock()
	defer h.s.mu.Unlock()
	return h.s.peers[h.id]
}

// Emit sends a ctrl envelope to this peer only (queued until its ctrl
// channel opens).
func (h *PeerHandle) Emit(name string, args ...any) error {
	p := h.get()
	if p == nil {
		return fmt.Errorf("rtcio: emit %q to %s: %w", name, h.id, errNoPeer)
	}
	b, err := encodeEnvelope(name, h.s.stripAck(name, args))
	if err != nil {
		return err
	}
	p.sendCtrl(b)
	return nil
}

func (h *PeerHandle) listeners() *listeners {
	h.s.mu.Lock()
	defer h.s.mu.Unlock()
	l := h.s.peerListeners[h.id]
	if l == nil {
		l = &listeners{}
		h.s.peerListeners[h.id] = l
	}
	return l
}

// On registers h for ctrl events from this peer only. Per-peer listeners
// are dropped when the peer closes, as in the JavaScript client.
func (h *PeerHandle) On(name string, fn Handler) ListenerID {
	return h.listeners().register(h.s, name, fn, false)
}

// Once is On for a single delivery.
func (h *PeerHandle) Once(name string, fn Handler) ListenerID {
	return h.listeners().register(h.s, name, fn, true)
}

// Off removes a per-peer handler (all for name when id is 0).
func (h *PeerHandle) Off(name string, id ListenerID) { h.listeners().off(name, id) }

// CreateChannel opens (or returns) a named channel to this peer only.
func (h *PeerHandle) CreateChannel(name string, opts ChannelOptions) (*Channel, error) {
	p := h.get()
	if p == nil {
		return nil, fmt.Errorf("rtcio: channel %q to %s: %w", name, h.id, errNoPeer)
	}
	return p.channel(name, opts)
}

// PeerState is a snapshot of one peer connection.
type PeerState struct {
	ID          string
	Polite      bool
	Connected   bool // peer-connect fired (ctrl channel open)
	Connection  webrtc.PeerConnectionState
	ICE         webrtc.ICEConnectionState
	Signaling   webrtc.SignalingState
	Streams     []*RemoteStream
	Transceiver int
	// Rollbacks counts colliding remote offers this (polite) side took by
	// dropping its own; IgnoredOffers those this (impolite) side ignored.
	Rollbacks     int
	IgnoredOffers int
	// OffersSent and OffersReceived count negotiation rounds each side
	// started (a burst of changes coalesced into one offer counts once).
	OffersSent, OffersReceived int
}

// State returns the peer's current state, or false when there is no peer.
func (h *PeerHandle) State() (PeerState, bool) {
	p := h.get()
	if p == nil {
		return PeerState{}, false
	}
	p.mu.Lock()
	st := PeerState{ID: p.id, Polite: p.polite, Connected: p.connectFired && !p.closed}
	for _, r := range p.remote {
		st.Streams = append(st.Streams, r)
	}
	offerOut := p.offerOut
	st.Rollbacks, st.IgnoredOffers = p.rollbacks, p.ignored
	st.OffersSent, st.OffersReceived = p.offersSent, p.offersRecvd
	p.mu.Unlock()
	st.Connection = p.pc.ConnectionState()
	st.ICE = p.pc.ICEConnectionState()
	st.Signaling = p.pc.SignalingState()
	if offerOut && st.Signaling == webrtc.SignalingStateStable {
		// The polite side's offer is sent before pion applies it.
		st.Signaling = webrtc.SignalingStateHaveLocalOffer
	}
	st.Transceiver = len(p.pc.GetTransceivers())
	return st, true
}

// Stats returns pion's stats report for the peer connection.
func (h *PeerHandle) Stats() (webrtc.StatsReport, error) {
	p := h.get()
	if p == nil {
		return nil, fmt.Errorf("rtcio: stats of %s: %w", h.id, errNoPeer)
	}
	return p.pc.GetStats(), nil
}

// Close closes the connection to this peer (firing peer-disconnect if
// peer-connect fired). The remote notices through its own watchdog.
func (h *PeerHandle) Close() {
	if p := h.get(); p != nil {
		h.s.removePeer(p, "closed locally")
	}
}
