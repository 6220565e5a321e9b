package rtcio

import (
	"encoding/json"
	"time"

	"github.com/pion/webrtc/v4"
)

// onSignal routes one event from the signaling server. It runs on the
// signaling client's goroutine and only queues work.
func (s *Socket) onSignal(name string, args []any) {
	switch name {
	case "connect":
		s.onReconnect()
		return
	case EventInitOffer:
		src := sourceOf(args, "source")
		if src == "" || src == s.sig.ID() {
			s.log.Warn("rtcio: init-offer without a usable source", "args", args)
			return
		}
		s.initPeer(src)
		return
	case EventMessage:
		if len(args) == 0 {
			return
		}
		m, err := decodeMessage(args[0])
		if err != nil {
			s.log.Warn("rtcio: dropping signaling message", "err", err)
			return
		}
		if m.Source == s.sig.ID() {
			return
		}
		p := s.peerFor(m.Source)
		if p == nil {
			return
		}
		p.post(func() { p.handleMessage(m) })
		return
	case EventPeerLeft, "user-disconnected":
		// The rtc.io 1.5 client also takes the room convention's
		// user-disconnected {id} as a peer-left hint.
		if id := sourceOf(args, "id"); id != "" {
			s.mu.Lock()
			p := s.peers[id]
			s.mu.Unlock()
			if p != nil {
				p.post(p.peerLeftHint)
			}
		}
	}
	if len(name) > len(InternalPrefix) && name[:len(InternalPrefix)] == InternalPrefix {
		// Other internal names are never surfaced to the application.
		return
	}
	raw := make([]json.RawMessage, len(args))
	for i, a := range args {
		b, err := json.Marshal(a)
		if err != nil {
			b = []byte("null")
		}
		raw[i] = b
	}
	ev := &Event{Name: name, Args: decodeArgs(raw, nil), Raw: raw}
	s.disp.post(func() {
		for _, h := range s.server.take(name) {
			h(ev)
		}
		for _, h := range s.global.take(name) {
			h(ev)
		}
	})
}

func sourceOf(args []any, key string) string {
	if len(args) == 0 {
		return ""
	}
	m, ok := args[0].(map[string]any)
	if !ok {
		return ""
	}
	v, _ := m[key].(string)
	return v
}

// onReconnect nudges unhealthy peers with an ICE restart once signaling is
// usable again, so the restart offer rides the restored connection.
func (s *Socket) onReconnect() {
	s.mu.Lock()
	peers := s.peerList()
	s.mu.Unlock()
	for _, p := range peers {
		p.post(func() {
			switch p.pc.ConnectionState() {
			case webrtc.PeerConnectionStateDisconnected, webrtc.PeerConnectionStateFailed:
				p.log.Debug("rtcio: signaling reconnected, restarting ICE")
				p.restartICE()
			}
		})
	}
}

// initPeer handles #rtcio:init-offer: a polite connection that replays the
// registry and channels and so sends the first offer.
func (s *Socket) initPeer(id string) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	if old := s.peers[id]; old != nil {
		// A second init-offer for a peer we already know means the remote
		// started over (rejoined): replace the stale connection.
		delete(s.peers, id)
		old.cancel()
	}
	_, err := s.newPeer(id, true, func(p *peer) {
		p.replayStreams()
		p.replayChannels()
	})
	s.mu.Unlock()
	if err != nil {
		s.log.Error("rtcio: create polite peer", "peer", id, "err", err)
	}
}

// peerFor returns the peer for a message source, creating it as the
// impolite side when unknown.
func (s *Socket) peerFor(id string) *peer {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	if p := s.peers[id]; p != nil {
		return p
	}
	p, err := s.newPeer(id, false, nil)
	if err != nil {
		s.log.Error("rtcio: create impolite peer", "peer", id, "err", err)
		return nil
	}
	return p
}

// removePeer forgets p and stops its actor, which tears it down.
func (s *Socket) removePeer(p *peer, reason string) {
	s.mu.Lock()
	if s.peers[p.id] == p {
		delete(s.peers, p.id)
	}
	s.mu.Unlock()
	p.log.Debug("rtcio: closing peer", "reason", reason)
	p.cancel()
}

// hintFresh reports whether a peer-left hint at t still shortens the
// watchdog.
func (s *Socket) hintFresh(t time.Time) bool {
	return !t.IsZero() && time.Since(t) < s.opts.Watchdog.HintTTL
}
