package sfu

import "slices"

// Links: in a room cascaded over several nodes, the origin's gateway peer
// and each edge's are rtc.io peers of each other, one peer connection per
// edge. A link is a trunk, not a person: it carries every stream and
// every data message of the clients behind it, so the per-client bounds
// do not apply to it. It is not rate limited as one sender, not closed by
// the connect timeout (an edge's first connection can wait behind a burst
// of its clients' joins), and streams never go back over the link they
// came in on (relay.go). Its metadata requests are answered only after
// the publisher confirmed the stream again (answerLink, replay.go).

// isLink reports whether peerID is another gateway peer of this room.
func (c *Config) isLink(peerID string) bool {
	return c.IsLink != nil && c.IsLink(peerID)
}

// inviter is what Room.invite needs of its signaling connection: the
// gateway's own in-process participant (signaling.LocalConn).
type inviter interface {
	InviteOffer(source string)
}

// invite makes the gateway peer offer to clientID unless it already has a
// connection to it (a second init-offer would replace a working one).
func (r *Room) invite(clientID string) {
	if slices.Contains(r.sock.Peers(), clientID) {
		return
	}
	inv, ok := r.local.(inviter)
	if !ok {
		r.log.Warn("sfu: cannot invite a client: the gateway peer's connection takes no invitations", "client", clientID)
		return
	}
	r.mu.Lock()
	r.moved[clientID] = true
	r.mu.Unlock()
	r.log.Info("sfu: offering to a client moved here", "client", clientID)
	inv.InviteOffer(clientID)
}

// movedOverLink reports whether publisher, a client moved here from a dead
// edge, may continue rel: a stream this room received over a link with
// the ids of the client's own stream, relayed for it by its old edge. Its
// subscribers here then keep their tracks (adopt.go). Only a moved client
// may, and only a link's stream: a room mate still cannot take over a
// client's stream. r.mu must be held.
func (r *Room) movedOverLink(rel *relayed, publisher string) bool {
	return r.moved[publisher] && r.cfg.isLink(rel.key.publisher)
}
