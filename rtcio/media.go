package rtcio

import (
	"encoding/json"
	"sort"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// replayStreams attaches every registered stream; actor only.
func (p *peer) replayStreams() {
	for _, st := range p.s.registeredStreams() {
		p.attachStream(st)
	}
}

// attachStream starts sending st to this peer: one sendonly transceiver per
// track, reusing idle transceivers of the same kind. Attaching twice is a
// no-op. Actor only.
func (p *peer) attachStream(st *Stream) {
	if p.ctx.Err() != nil {
		return
	}
	if _, ok := p.senders[st]; ok {
		return
	}
	p.senders[st] = nil
	p.local[st.msid] = st
	st.watch(p)
	p.syncStream(st)
}

// detachStream stops sending st: senders removed, transceivers inactive.
func (p *peer) detachStream(st *Stream) {
	ts, ok := p.senders[st]
	if !ok {
		return
	}
	st.unwatch(p)
	for _, t := range ts {
		p.stopSender(t)
	}
	delete(p.senders, st)
	if p.local[st.msid] == st {
		delete(p.local, st.msid)
	}
}

func (p *peer) stopSender(t *webrtc.RTPTransceiver) {
	if s := t.Sender(); s != nil {
		if err := p.pc.RemoveTrack(s); err != nil {
			p.log.Warn("rtcio: remove track", "err", err)
			return
		}
		p.needOffer(false)
	}
}

// syncStream brings this peer's senders for st in line with st's tracks,
// the way the JavaScript client reacts to a track change: keep senders whose
// track is still there, swap a same-kind replacement in with ReplaceTrack
// (no renegotiation), stop the rest (inactive, renegotiates), and add
// transceivers for tracks that are new. Actor only.
func (p *peer) syncStream(st *Stream) {
	if p.ctx.Err() != nil {
		return
	}
	ts, attached := p.senders[st]
	if !attached {
		return
	}
	tracks := st.Tracks()
	claimed := make(map[webrtc.TrackLocal]bool)
	live := ts[:0:0]
	for _, t := range ts {
		if s := t.Sender(); s != nil && contains(tracks, s.Track()) {
			claimed[s.Track()] = true
		}
	}
	for _, t := range ts {
		s := t.Sender()
		if s == nil {
			continue // stopped earlier; kept only as an idle transceiver
		}
		if contains(tracks, s.Track()) {
			live = append(live, t)
			continue
		}
		var repl webrtc.TrackLocal
		for _, tr := range tracks {
			if !claimed[tr] && tr.Kind() == t.Kind() {
				repl = tr
				break
			}
		}
		if repl != nil {
			if err := s.ReplaceTrack(repl); err != nil {
				p.log.Warn("rtcio: replace track", "err", err)
				p.stopSender(t)
				continue
			}
			claimed[repl] = true
			live = append(live, t)
			continue
		}
		p.stopSender(t)
	}
	for _, tr := range tracks {
		if claimed[tr] {
			continue
		}
		t := p.addSender(st, tr)
		if t != nil {
			live = append(live, t)
		}
	}
	p.senders[st] = live
}

func contains(ts []webrtc.TrackLocal, t webrtc.TrackLocal) bool {
	for _, x := range ts {
		if x == t {
			return true
		}
	}
	return false
}

// addSender sends track on an idle transceiver of its kind when one exists
// (transceivers are never removed, only reused) or on a new sendonly one.
func (p *peer) addSender(st *Stream, track webrtc.TrackLocal) *webrtc.RTPTransceiver {
	var t *webrtc.RTPTransceiver
	for _, x := range p.pc.GetTransceivers() {
		if x.Kind() == track.Kind() && x.Sender() == nil && x.Direction() == webrtc.RTPTransceiverDirectionInactive && p.idle(x) {
			t = x
			break
		}
	}
	if t != nil {
		sender, err := p.s.api.NewRTPSender(track, p.pc.SCTP().Transport())
		if err == nil {
			err = t.SetSender(sender, track)
		}
		if err != nil {
			p.log.Warn("rtcio: reuse idle transceiver", "err", err)
			t = nil
		} else {
			// SetSender changes direction without pion's negotiation-needed
			// bookkeeping: force the round.
			p.needOffer(true)
		}
	}
	if t == nil {
		var err error
		t, err = p.pc.AddTransceiverFromTrack(track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
		if err != nil {
			p.log.Error("rtcio: add transceiver", "track", track.ID(), "err", err)
			return nil
		}
		p.needOffer(false)
	}
	p.preferCodec(t, track)
	p.readRTCP(st, track, t.Sender())
	return t
}

// idle reports whether no stream of ours claims transceiver x.
func (p *peer) idle(x *webrtc.RTPTransceiver) bool {
	for _, ts := range p.senders {
		for _, t := range ts {
			if t == x {
				return false
			}
		}
	}
	return true
}

// readRTCP drains the sender's RTCP (interceptors such as NACK need it
// read) and hands it to the stream's OnRTCP callback.
func (p *peer) readRTCP(st *Stream, track webrtc.TrackLocal, s *webrtc.RTPSender) {
	p.rtcpSenders = append(p.rtcpSenders, s)
	p.rtcpWG.Add(1)
	go func() {
		defer p.rtcpWG.Done()
		buf := make([]byte, 1500)
		for {
			n, _, err := s.Read(buf)
			if err != nil {
				return
			}
			if f := st.rtcpHandler(); f != nil {
				if pkts, err := unmarshalRTCP(buf[:n]); err == nil {
					f(p.id, track, pkts)
				}
			}
		}
	}()
}

// handleTrack is the JavaScript ontrack logic; actor only.
func (p *peer) handleTrack(track *webrtc.TrackRemote, receiver *webrtc.RTPReceiver) {
	var mid string
	for _, t := range p.pc.GetTransceivers() {
		if t.Receiver() == receiver {
			mid = t.Mid()
			break
		}
	}
	if mid == "" {
		return
	}
	msid := track.StreamID()
	if msid == "" {
		msid = newUUID()
		p.log.Warn("rtcio: track without a stream; using a synthetic one", "track", track.ID())
	}
	hooks := p.s.getHooks()
	p.mu.Lock()
	rs := p.remote[msid]
	known := rs != nil
	if !known {
		rs = &RemoteStream{msid: msid, peerID: p.id, id: msid}
		p.remote[msid] = rs
	}
	p.mu.Unlock()
	rs.setTrack(track)
	p.recv[mid] = &recvInfo{receiver: receiver, track: track, stream: rs}
	if hooks.RemoteTrack != nil {
		p.s.disp.post(func() { hooks.RemoteTrack(p.id, rs, track, receiver) })
	}
	if known {
		p.s.fire(&Event{Name: EventTrackAdded, PeerID: p.id, Stream: rs, Track: track,
			Args: []any{map[string]any{"peerId": p.id, "stream": rs, "track": track}}}, false)
		return
	}
	if err := p.s.sendMessage(p.id, map[string]any{"mid": msid}); err != nil {
		p.log.Warn("rtcio: metadata request", "err", err)
	}
}

// checkRemovedTracks fires track-removed for received tracks whose m-line
// stopped sending or whose receiver pion replaced; after every remote
// description. Actor only.
func (p *peer) checkRemovedTracks() {
	if len(p.recv) == 0 {
		return
	}
	sending := remoteSendingMids(p.pc.RemoteDescription())
	byMid := make(map[string]*webrtc.RTPTransceiver)
	for _, t := range p.pc.GetTransceivers() {
		byMid[t.Mid()] = t
	}
	mids := make([]string, 0, len(p.recv))
	for mid := range p.recv {
		mids = append(mids, mid)
	}
	sort.Strings(mids)
	hooks := p.s.getHooks()
	for _, mid := range mids {
		ri := p.recv[mid]
		t := byMid[mid]
		if t != nil && t.Receiver() == ri.receiver && sending[mid] {
			continue
		}
		delete(p.recv, mid)
		ended := ri.stream.dropTrack(ri.track)
		p.s.fire(&Event{Name: EventTrackRemoved, PeerID: p.id, Stream: ri.stream, Track: ri.track,
			Args: []any{map[string]any{"peerId": p.id, "stream": ri.stream, "track": ri.track}}}, false)
		if hooks.RemoteTrackEnded != nil {
			p.s.disp.post(func() { hooks.RemoteTrackEnded(p.id, ri.stream, ri.track, ended) })
		}
	}
}

// remoteSendingMids lists the mids whose remote direction sends media.
func remoteSendingMids(d *webrtc.SessionDescription) map[string]bool {
	out := make(map[string]bool)
	if d == nil {
		return out
	}
	parsed, err := parseSDP(d)
	if err != nil {
		return out
	}
	sessionDir := ""
	for _, a := range parsed.Attributes {
		switch a.Key {
		case "sendrecv", "sendonly", "recvonly", "inactive":
			sessionDir = a.Key
		}
	}
	for _, m := range parsed.MediaDescriptions {
		mid, _ := m.Attribute(sdp.AttrKeyMID)
		dir := sessionDir
		for _, a := range m.Attributes {
			switch a.Key {
			case "sendrecv", "sendonly", "recvonly", "inactive":
				dir = a.Key
			}
		}
		out[mid] = dir == "" || dir == "sendrecv" || dir == "sendonly"
	}
	return out
}

// handleMetaRequest answers {mid} with {mid, events} when the stream sent
// under that MediaStream id is still registered; otherwise stays silent.
func (p *peer) handleMetaRequest(msid string) {
	st := p.local[msid]
	if st == nil {
		p.log.Debug("rtcio: metadata request for a stream this peer does not receive", "mid", msid)
		return
	}
	if h := p.s.getHooks().RelayedMetadata; h != nil {
		if _, relayed := p.s.RelayedEvents(st); relayed {
			peerID, log := p.id, p.log
			answer := func(events map[string][]json.RawMessage) {
				if len(events) == 0 {
					return
				}
				if err := p.s.sendMessage(peerID, map[string]any{"mid": msid, "events": events}); err != nil {
					log.Warn("rtcio: send metadata answer", "err", err)
				}
			}
			if h(peerID, st, answer) {
				return
			}
		}
	}
	events, err := p.s.streamEvents(st)
	if err != nil {
		p.log.Error("rtcio: metadata answer", "err", err)
		return
	}
	if len(events) == 0 {
		p.log.Debug("rtcio: no events for stream; staying silent", "mid", msid)
		return
	}
	if err := p.s.sendMessage(p.id, map[string]any{"mid": msid, "events": events}); err != nil {
		p.log.Warn("rtcio: send metadata answer", "err", err)
	}
}

// handleMetaAnswer fires the stream's events with the placeholder replaced
// by the RemoteStream (whose id it adopts), unless a RequestMetadata caller
// was waiting for a repeat answer.
func (p *peer) handleMetaAnswer(msid string, events map[string][]json.RawMessage) {
	p.mu.Lock()
	rs := p.remote[msid]
	p.mu.Unlock()
	if rs == nil {
		p.log.Warn("rtcio: metadata for a stream not received yet", "mid", msid)
		return
	}
	rs.mu.Lock()
	first := rs.events == nil
	rs.events = events
	rs.mu.Unlock()
	names := make([]string, 0, len(events))
	for k := range events {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, name := range names {
		// Adopt the owner's stream id even when nobody listens.
		decodeArgs(events[name], rs)
	}
	if hook := p.s.getHooks().RemoteStreamEvents; hook != nil && first {
		p.s.disp.post(func() { hook(p.id, rs, events) })
	}
	if p.s.deliverMeta(p.id, msid, events) && !first {
		return
	}
	if !first {
		// A repeat answer nobody waits for (a duplicate request): the
		// JavaScript client would fire again; so do we.
		p.log.Debug("rtcio: repeat metadata answer", "mid", msid)
	}
	for _, name := range names {
		if IsReservedEvent(name) {
			p.log.Warn("rtcio: metadata with reserved event name dropped", "event", name)
			continue
		}
		raw := events[name]
		p.s.fire(&Event{Name: name, PeerID: p.id, Stream: rs, Raw: raw, Args: decodeArgs(raw, rs)}, false)
	}
}
