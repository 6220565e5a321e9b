package rtcio

import (
	"fmt"
	"strconv"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// Perfect negotiation on pion (docs/PROTOCOL.md section 4).
//
// The W3C polite peer answers a colliding offer by rolling its own offer
// back. pion v4.2 cannot: SetLocalDescription and SetRemoteDescription
// refuse type rollback in every signaling state, and a remote offer cannot be
// applied in have-local-offer. So the polite side keeps its renegotiation
// offers out of pion until their answer is in hand: it creates the offer,
// sends it and remembers it as pendingOffer while pion stays stable; the
// answer is applied as SetLocalDescription(pendingOffer) followed by
// SetRemoteDescription(answer) in one actor task. A colliding offer rolls
// back by forgetting pendingOffer: the impolite remote drops ours (signaling
// is ordered per peer, so it was in have-local-offer when ours arrived), we
// answer its offer, and our changes go out in the next round.
//
// What SetLocalDescription would have fixed is fixed by hand:
//   - mids. CreateOffer names mid-less transceivers with the next free
//     number, which is also what the remote picks for its own new m-lines;
//     pion would then pair the remote's m-line with our unnegotiated
//     transceiver. The polite side names new transceivers itself with mids no
//     implementation generates (politeMidPrefix), and CreateOffer keeps them.
//   - the first offer. It is applied at once, as in plain JSEP, so that ICE
//     gathers early; it cannot collide, because the impolite side has no
//     connection (and nothing to offer) before that offer reaches it.
//
// Two side effects of CreateOffer cannot be undone:
//   - an ICE-restart offer restarts pion's ICE agent at once; if it is
//     forgotten in a collision, the restart rides our answer (new
//     credentials) and is asked for again in the next offer;
//   - the new senders count as negotiated, so applying our answer to the
//     remote's offer starts them: the remote drops their RTP (pion logs
//     "Incoming unhandled RTP ssrc") until our next offer declares them.

// politeMidPrefix starts the mids the polite side gives new transceivers.
// Browsers and pion only generate numeric mids.
const politeMidPrefix = "rtcio"

// requestNegotiation records that the connection needs an offer round and
// starts one if the connection is stable.
func (p *peer) requestNegotiation() {
	p.negPending = true
	p.maybeOffer()
}

// needOffer records a change of ours that needs an offer round (force: even
// if needsNegotiation cannot see it) and makes the round after the current
// actor task, so that one offer covers everything the task changed.
//
// pion's negotiation-needed event cannot be relied on for this: pion also
// counts a replaced track (its msid changed) as a reason to negotiate; when
// it raises the event for that and we decline (ReplaceTrack needs no
// round), its flag stays set and it stays silent about later changes until
// the next exchange.
func (p *peer) needOffer(force bool) {
	p.negPending = true
	p.forceNeg = p.forceNeg || force
	p.post(p.maybeOffer)
}

// restartICE asks for an ICE-restart offer.
func (p *peer) restartICE() {
	p.restartICEReq = true
	p.maybeOffer()
}

// offering reports whether an offer of ours awaits its answer.
func (p *peer) offering() bool {
	return p.pendingOffer != nil || p.pc.SignalingState() == webrtc.SignalingStateHaveLocalOffer
}

// maybeOffer sends one offer covering every pending change. Pending needs
// that arrive while an offer is outstanding are coalesced into the next
// round, which starts when the connection is stable again.
func (p *peer) maybeOffer() {
	if !p.negPending && !p.restartICEReq {
		return
	}
	if !p.polite && !p.firstDesc {
		// The impolite side answers first: an offer of its own now (pion
		// asks for one as soon as the ctrl channel exists) would only
		// collide with the polite side's first offer.
		return
	}
	if p.pendingOffer != nil || p.pc.SignalingState() != webrtc.SignalingStateStable ||
		p.pc.ConnectionState() == webrtc.PeerConnectionStateClosed {
		return
	}
	restart := p.restartICEReq
	if !restart && !p.forceNeg && !p.needsNegotiation() {
		// A need recorded earlier was satisfied by an exchange the remote
		// started (its offer already covered our change).
		p.negPending = false
		return
	}
	p.negPending, p.restartICEReq, p.forceNeg = false, false, false
	deferred := p.polite && p.pc.CurrentRemoteDescription() != nil
	if deferred {
		p.nameNewTransceivers()
	}
	offer, err := p.pc.CreateOffer(&webrtc.OfferOptions{ICERestart: restart})
	if err != nil {
		p.log.Error("rtcio: create offer", "err", err)
		return
	}
	if deferred {
		p.pendingOffer = &offer
		p.pendingRestart = restart
		p.setOffering(true)
		p.send(offer)
		p.log.Debug("rtcio: sent offer (applied when answered)", "iceRestart", restart)
		return
	}
	if err := p.pc.SetLocalDescription(offer); err != nil {
		p.log.Error("rtcio: set local offer", "err", err)
		return
	}
	p.setOffering(true)
	p.sendDescription()
	p.log.Debug("rtcio: sent offer", "iceRestart", restart)
}

// nameNewTransceivers gives every mid-less transceiver a polite-side mid
// (see the comment at the top of this file).
func (p *peer) nameNewTransceivers() {
	used := make(map[string]bool)
	for _, d := range []*webrtc.SessionDescription{p.pc.CurrentLocalDescription(), p.pc.CurrentRemoteDescription()} {
		for mid := range descriptionMids(d) {
			used[mid] = true
		}
	}
	ts := p.pc.GetTransceivers()
	for _, t := range ts {
		used[t.Mid()] = true
	}
	for _, t := range ts {
		if t.Mid() != "" {
			continue
		}
		mid := ""
		for mid == "" || used[mid] {
			p.midSeq++
			mid = politeMidPrefix + strconv.Itoa(p.midSeq)
		}
		if err := t.SetMid(mid); err != nil {
			p.log.Warn("rtcio: name transceiver", "mid", mid, "err", err)
			continue
		}
		used[mid] = true
	}
}

// descriptionMids lists the mids of a description's m-lines.
func descriptionMids(d *webrtc.SessionDescription) map[string]bool {
	out := make(map[string]bool)
	if d == nil {
		return out
	}
	parsed, err := parseSDP(d)
	if err != nil {
		return out
	}
	for _, m := range parsed.MediaDescriptions {
		if mid, ok := m.Attribute(sdp.AttrKeyMID); ok {
			out[mid] = true
		}
	}
	return out
}

// setOffering mirrors "an offer of ours is outstanding" for PeerState, which
// reads it off the actor.
func (p *peer) setOffering(v bool) {
	p.mu.Lock()
	p.offerOut = v
	if v {
		p.offersSent++
	}
	p.mu.Unlock()
}

func (p *peer) sendDescription() {
	if d := p.pc.LocalDescription(); d != nil {
		p.send(*d)
	}
}

func (p *peer) send(d webrtc.SessionDescription) {
	err := p.s.sendMessage(p.id, map[string]any{"description": sessionDescription{Type: d.Type.String(), SDP: d.SDP}})
	if err != nil {
		p.log.Warn("rtcio: send description", "type", d.Type.String(), "err", err)
	}
}

// handleMessage processes one #rtcio:message from this peer, in order.
func (p *peer) handleMessage(m *message) {
	switch m.Data.kind() {
	case kindDescription:
		p.handleDescription(m.Data.Description.toPion())
	case kindCandidate:
		p.handleCandidate(*m.Data.Candidate)
	case kindMetaAnswer:
		p.handleMetaAnswer(*m.Data.Mid, m.Data.Events)
	case kindMetaRequest:
		p.handleMetaRequest(*m.Data.Mid)
	}
}

// handleDescription is the W3C perfect-negotiation receive path. Offers are
// never being made while it runs (the actor is serial), so a collision is
// an offer arriving while one of ours is outstanding.
func (p *peer) handleDescription(desc webrtc.SessionDescription) {
	isOffer := desc.Type == webrtc.SDPTypeOffer
	if isOffer {
		p.mu.Lock()
		p.offersRecvd++
		p.mu.Unlock()
	}
	collision := isOffer && (p.offering() || p.pc.SignalingState() != webrtc.SignalingStateStable)
	p.ignoreOffer = !p.polite && collision
	if p.ignoreOffer {
		p.log.Debug("rtcio: ignoring colliding offer (impolite)")
		p.mu.Lock()
		p.ignored++
		p.mu.Unlock()
		return
	}
	if collision {
		if p.pendingOffer == nil {
			// Only the first offer is applied before its answer, and the
			// impolite side cannot offer before it answered that one.
			p.log.Error("rtcio: offer collision with an applied offer; pion cannot roll back",
				"state", p.pc.SignalingState().String())
			return
		}
		// Polite rollback: forget our unapplied offer, take theirs; our
		// changes go out in the next round.
		p.log.Debug("rtcio: offer collision; dropping our unapplied offer (polite)")
		p.negPending, p.forceNeg = true, true
		p.restartICEReq = p.restartICEReq || p.pendingRestart
		p.pendingOffer, p.pendingRestart = nil, false
		p.mu.Lock()
		p.offerOut = false
		p.rollbacks++
		p.mu.Unlock()
	}
	if desc.Type == webrtc.SDPTypeAnswer {
		if !p.applyAnswerable() {
			return
		}
	}
	if err := p.pc.SetRemoteDescription(desc); err != nil {
		p.log.Warn("rtcio: set remote description", "type", desc.Type.String(), "state", p.pc.SignalingState().String(), "err", err)
		return
	}
	if desc.Type == webrtc.SDPTypeAnswer {
		p.setOffering(false)
	}
	p.drainCandidates()
	p.checkRemovedTracks()
	if isOffer {
		if !p.polite && !p.firstDesc {
			// Impolite side: our channels exist before our answer can
			// start SCTP, so nothing the polite side sends on a channel
			// both create finds it missing.
			p.replayChannels()
		}
		answer, err := p.pc.CreateAnswer(nil)
		if err != nil {
			p.log.Error("rtcio: create answer", "err", err)
			return
		}
		if err := p.pc.SetLocalDescription(answer); err != nil {
			p.log.Error("rtcio: set local answer", "err", err)
			return
		}
		p.sendDescription()
		p.log.Debug("rtcio: sent answer")
	}
	if !p.firstDesc {
		p.firstDesc = true
		if !p.polite {
			// Impolite side: replay streams only after the first exchange,
			// so our own offer does not race the remote's first offer.
			p.replayStreams()
			p.replayChannels()
		}
	}
	p.maybeOffer()
}

// applyAnswerable prepares pion for an incoming answer: a deferred offer of
// ours is applied now; an answer with no offer of ours outstanding is stale
// and dropped (false).
func (p *peer) applyAnswerable() bool {
	if p.pendingOffer != nil {
		offer := *p.pendingOffer
		p.pendingOffer, p.pendingRestart = nil, false
		if err := p.pc.SetLocalDescription(offer); err != nil {
			p.log.Error("rtcio: apply our offer for its answer", "err", err)
			p.setOffering(false)
			p.negPending, p.forceNeg = true, true
			return false
		}
		return true
	}
	if p.pc.SignalingState() != webrtc.SignalingStateHaveLocalOffer {
		p.log.Debug("rtcio: dropping stale answer", "state", p.pc.SignalingState().String())
		return false
	}
	return true
}

func (p *peer) handleCandidate(c webrtc.ICECandidateInit) {
	if p.pc.RemoteDescription() == nil {
		if len(p.pendingCands) >= maxPendingCandidates {
			p.log.Warn("rtcio: too many early candidates, dropping one")
			return
		}
		p.pendingCands = append(p.pendingCands, c)
		return
	}
	p.addCandidate(c)
}

func (p *peer) addCandidate(c webrtc.ICECandidateInit) {
	if err := p.pc.AddICECandidate(c); err != nil {
		if p.ignoreOffer {
			p.log.Debug("rtcio: candidate for an ignored offer", "err", err)
			return
		}
		p.log.Warn("rtcio: add candidate", "err", err)
	}
}

func (p *peer) drainCandidates() {
	q := p.pendingCands
	p.pendingCands = nil
	for _, c := range q {
		p.addCandidate(c)
	}
}

// needsNegotiation approximates the W3C "check if negotiation is needed"
// against the current local description: a data channel without an
// application m-line, a transceiver without a negotiated mid, or one whose
// desired direction differs from the negotiated one.
func (p *peer) needsNegotiation() bool {
	ld := p.pc.CurrentLocalDescription()
	if ld == nil {
		return true
	}
	parsed, err := parseSDP(ld)
	if err != nil {
		return true
	}
	dirs := make(map[string]string)
	hasApp := false
	for _, m := range parsed.MediaDescriptions {
		mid, _ := m.Attribute(sdp.AttrKeyMID)
		if m.MediaName.Media == "application" {
			hasApp = true
			continue
		}
		dir := "sendrecv"
		for _, a := range m.Attributes {
			switch a.Key {
			case "sendrecv", "sendonly", "recvonly", "inactive":
				dir = a.Key
			}
		}
		dirs[mid] = dir
	}
	if !hasApp {
		return true
	}
	for _, t := range p.pc.GetTransceivers() {
		d, ok := dirs[t.Mid()]
		if t.Mid() == "" || !ok {
			return true
		}
		if d != t.Direction().String() {
			return true
		}
	}
	return false
}

// parseSDP parses a description pion handed out. SessionDescription.Unmarshal
// would cache the result in pion's own copy, which pion reads concurrently.
func parseSDP(d *webrtc.SessionDescription) (*sdp.SessionDescription, error) {
	parsed := &sdp.SessionDescription{}
	if err := parsed.UnmarshalString(d.SDP); err != nil {
		return nil, fmt.Errorf("rtcio: parse %s description: %w", d.Type, err)
	}
	return parsed, nil
}
