package sfu

import (
	"fmt"
	"slices"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/rtcio-gateway/rtcio-gateway/gateway/signaling"
)

// What one client may cost the media side is bounded here: the peer
// connections joins create (per room and per process), how long a peer
// connection may stay unconnected, and how fast one sender's data-channel
// messages are relayed. Each bound is a configuration key (see Config).

// Drop reasons the room reports through Config.Dropped.
const (
	DropRelayRateLimited = "relay_rate_limited"
	DropPeerConnectTime  = "peer_connect_timeout"
	DropUnknownPayload   = "unknown_payload_type"
	DropUnknownSSRCs     = "unknown_ssrc_limit"
	DropStreamClaim      = "stream_claim_refused"
)

func (r *Room) dropped(reason string) {
	if r.cfg.Dropped != nil {
		r.cfg.Dropped(reason)
	}
}

// MayJoin refuses a client's join to an SFU room when the gateway peer
// connection it would cost passes MaxPeersPerRoom or MaxPeerConnections.
// Wire it into the signaling server's MayJoin. Concurrent joins from
// different sockets can pass the bound by at most their number.
func (m *Manager) MayJoin(_, roomID string, topo signaling.Topology) error {
	if topo.Name() != (signaling.SFU{}).Name() {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cfg.MaxPeersPerRoom > 0 && m.clients[roomID] >= m.cfg.MaxPeersPerRoom {
		return signaling.Refuse(signaling.ReasonTooManyPeers, fmt.Sprintf("room %q has its %d clients (media.max_peers_per_room)", roomID, m.cfg.MaxPeersPerRoom))
	}
	total := 0
	for _, n := range m.clients {
		total += n
	}
	if m.cfg.MaxPeerConnections > 0 && total >= m.cfg.MaxPeerConnections {
		return signaling.Refuse(signaling.ReasonTooManyPeers, fmt.Sprintf("the gateway holds its %d peer connections (media.max_peer_connections)", m.cfg.MaxPeerConnections))
	}
	return nil
}

// countClients keeps the per-room client count MayJoin checks. m.mu must
// be held.
func (m *Manager) countClients(ev signaling.RoomEvent) {
	n := 0
	for _, mb := range ev.Members {
		if mb.Role == signaling.RoleClient {
			n++
		}
	}
	if n == 0 {
		delete(m.clients, ev.Room)
		return
	}
	m.clients[ev.Room] = n
}

// connectWatch closes gateway peer connections that do not connect within
// PeerConnectTimeout: a client that joins and never answers must not hold
// a peer connection (its goroutines, sockets and buffers) for as long as
// its socket stays.
type connectWatch struct {
	mu        sync.Mutex
	seen      map[string]time.Time // peers not connected yet, since when
	connected map[string]bool
}

func newConnectWatch() *connectWatch {
	return &connectWatch{seen: make(map[string]time.Time), connected: make(map[string]bool)}
}

func (w *connectWatch) markConnected(id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.connected[id] = true
	delete(w.seen, id)
}

// overdue returns the peers among current that have waited longer than
// timeout to connect, and forgets peers that are gone.
func (w *connectWatch) overdue(current []string, now time.Time, timeout time.Duration) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	live := make(map[string]bool, len(current))
	var out []string
	for _, id := range current {
		live[id] = true
		if w.connected[id] {
			continue
		}
		since, ok := w.seen[id]
		if !ok {
			w.seen[id] = now
			continue
		}
		if now.Sub(since) > timeout {
			out = append(out, id)
			delete(w.seen, id)
		}
	}
	for id := range w.seen {
		if !live[id] {
			delete(w.seen, id)
		}
	}
	for id := range w.connected {
		if !live[id] {
			delete(w.connected, id)
		}
	}
	return out
}

// closeUnconnected closes the peers that did not connect in time.
func (r *Room) closeUnconnected(now time.Time) {
	if r.cfg.PeerConnectTimeout <= 0 {
		return
	}
	peers := slices.DeleteFunc(r.sock.Peers(), r.cfg.isLink)
	for _, id := range r.connects.overdue(peers, now, r.cfg.PeerConnectTimeout) {
		r.log.Info("sfu: closing a peer connection that never connected", "client", id, "timeout", r.cfg.PeerConnectTimeout)
		r.dropped(DropPeerConnectTime)
		r.sock.Peer(id).Close()
	}
}

// relayLimits is a token bucket per sender over the ctrl events and channel
// messages the room relays: without it one client could make the gateway
// send every room mate whatever it sends, as fast as it sends it.
type relayLimits struct {
	rate  rate.Limit
	burst int

	mu  sync.Mutex
	per map[string]*rate.Limiter
}

func newRelayLimits(perSecond float64, burst int) *relayLimits {
	return &relayLimits{rate: rate.Limit(perSecond), burst: max(burst, 1), per: make(map[string]*rate.Limiter)}
}

// allow reports whether sender may have one more message relayed now.
func (l *relayLimits) allow(sender string) bool {
	if l == nil || l.rate <= 0 {
		return true
	}
	l.mu.Lock()
	lim := l.per[sender]
	if lim == nil {
		lim = rate.NewLimiter(l.rate, l.burst)
		l.per[sender] = lim
	}
	l.mu.Unlock()
	return lim.Allow()
}

// forget drops a sender that left.
func (l *relayLimits) forget(sender string) {
	if l == nil {
		return
	}
	l.mu.Lock()
	delete(l.per, sender)
	l.mu.Unlock()
}

// mayRelay applies the relay limit to one message from sender, counting
// (and logging, throttled) what it drops.
func (r *Room) mayRelay(sender string) bool {
	if r.cfg.isLink(sender) || r.relayLimit.allow(sender) {
		return true
	}
	r.dropped(DropRelayRateLimited)
	r.relayLog.Do(func(suppressed int) {
		r.log.Warn("sfu: relay rate limit: dropping a client's data-channel messages", "client", sender, "suppressed", suppressed)
	})
	return false
}
