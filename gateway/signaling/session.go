package signaling

import (
	"fmt"
	"net"
	"time"
)

// dropSlow disconnects a socket whose outbound queue overflowed or stalled,
// discarding what it never read: the process must not hold it.
func (c *Conn) dropSlow(why string) {
	c.srv.refusals.add(ReasonSlowConsumer)
	c.log.Warn("socket disconnected: it does not read what is sent to it", "reason", ReasonSlowConsumer, "detail", why)
	if eng := c.sock.Conn(); eng != nil {
		eng.Close(true)
	}
}

// expire ends the session of a socket whose token ran out: it is told why,
// then disconnected, and must reconnect with a fresh token. Joins and
// other events are refused from the expiry on even before the disconnect
// lands (dispatch checks the grant on every event).
func (c *Conn) expire() {
	c.expireOnce.Do(c.endSession)
}

func (c *Conn) endSession() {
	c.srv.refusals.add(ReasonTokenExpired)
	c.log.Info("socket disconnected: its token expired")
	_ = c.sock.Emit(EventError, errorEvent{Code: ReasonTokenExpired, Event: "", Message: "auth.token has expired; reconnect with a fresh one"})
	// The library discards what is still queued when it closes a
	// transport, so the notice gets the same short grace as the shutdown
	// notice; every event in between is refused (dispatch).
	time.AfterFunc(shutdownNoticeWait, func() { c.sock.Disconnect(true) })
}

// Identity is who a socket is, as far as the server can tell: the token's
// subject when clients authenticate, otherwise only the address it
// connects from, which clients behind one address share.
type Identity struct {
	Key string
	// Authenticated is set when Key comes from a verified token.
	Authenticated bool
}

// Identity returns the identity of a connected socket; ok is false when no
// such socket is connected.
func (s *Server) Identity(socketID string) (id Identity, ok bool) {
	s.mu.Lock()
	c := s.conns[socketID]
	s.mu.Unlock()
	if c == nil || c.sock == nil {
		return Identity{}, false
	}
	if c.grant.subject != "" {
		return Identity{Key: "sub:" + c.grant.subject, Authenticated: true}, true
	}
	if s.tokens != nil {
		// A token without a subject names nobody: no identity to share.
		return Identity{}, true
	}
	addr := c.sock.Handshake().Address
	if host, _, err := net.SplitHostPort(addr); err == nil {
		addr = host
	}
	return Identity{Key: "addr:" + addr}, true
}

// RoomHandler serves a room-scoped application event: the server has
// checked that the sender is in roomID and that its token still allows
// that room before it runs.
type RoomHandler func(c *Conn, roomID string, args []any) error

// HandleRoom registers a handler for an event that acts on a room (its
// first argument is an object with "roomId"). Who may act on a room is
// checked on every such event, not only at join: the sender must be a
// member now, and its token's rooms claim must allow the room.
func (s *Server) HandleRoom(event string, h RoomHandler) {
	s.Handle(event, func(c *Conn, args []any) error {
		roomID, _, err := DecodeRoomRequest(args)
		if err != nil {
			return err
		}
		if err := s.checkMember(c, roomID); err != nil {
			return err
		}
		return h(c, roomID, args)
	})
}

// checkMember refuses a room-scoped request from a socket that is not in
// the room or whose token does not allow it.
func (s *Server) checkMember(c *Conn, roomID string) error {
	if !c.grant.mayJoin(roomID) {
		return refuse(ReasonRoomNotAllowed, fmt.Sprintf("token does not allow room %q", roomID))
	}
	ctx, cancel := s.dirCtx()
	defer cancel()
	ok, err := s.dir.IsMember(ctx, c.id, roomID)
	if err != nil {
		return unavailable(err)
	}
	if !ok {
		return refuse(ReasonNotInRoom, fmt.Sprintf("not in room %q", roomID))
	}
	return nil
}
