package signaling

import "fmt"

// relayMessage forwards #rtcio:message to its target, as rtc.io-server does,
// except that the server states the source and the two must share a room.
func (s *Server) relayMessage(c *Conn, payload []any) error {
	msg, err := decodeMessage(payload)
	if err != nil {
		return err
	}
	if s.opts.EnforceSource {
		if msg.Source != "" && msg.Source != c.id {
			return refuse(ReasonForgedSource, fmt.Sprintf("source %q is not the sender", msg.Source))
		}
		msg.raw["source"] = c.id
	}
	if s.opts.RequireSharedRoom {
		from, to, topo, ok := s.reg.sharedRoom(c.id, msg.Target)
		if !ok {
			return refuse(ReasonNoSharedRoom, fmt.Sprintf("target %q shares no room with the sender", msg.Target))
		}
		if !topo.MayRelay(from, to) {
			return refuse(ReasonNotRelayed, fmt.Sprintf("a %s room does not relay signaling to %q", topo.Name(), msg.Target))
		}
	}
	s.to([]string{msg.Target}, EventMessage, msg.raw)
	return nil
}

func (s *Server) checkRoomName(roomID string) error {
	if s.opts.MaxRoomNameLength > 0 && len(roomID) > s.opts.MaxRoomNameLength {
		return refuse(ReasonRoomNameTooLong, fmt.Sprintf("room id is %d bytes, the limit is %d", len(roomID), s.opts.MaxRoomNameLength))
	}
	return nil
}

// joinRoom follows the reference convention: the newcomer hears of every
// member already there (and their last media-state), then the members hear
// of the newcomer and the topology decides who offers to whom.
func (s *Server) joinRoom(c *Conn, payload []any) (err error) {
	roomID := ""
	defer func() {
		if err != nil {
			// Apps written against the rtc.io demo server listen for this.
			_ = c.Emit(EventJoinError, map[string]any{"reason": reasonOf(err), "roomId": roomID})
		}
	}()
	join, err := decodeJoin(payload)
	if err != nil {
		return err
	}
	roomID = join.RoomID
	if err := s.checkRoomName(join.RoomID); err != nil {
		return err
	}
	if s.draining.Load() {
		return refuse(ReasonShuttingDown, "server is shutting down")
	}
	if !c.grant.mayJoin(join.RoomID) {
		return refuse(ReasonRoomNotAllowed, fmt.Sprintf("token does not allow room %q", join.RoomID))
	}
	if s.opts.MayJoin != nil && c.role == RoleClient && !s.reg.isMember(c.id, join.RoomID) {
		if err := s.opts.MayJoin(c.id, join.RoomID, s.opts.Topology(join.RoomID)); err != nil {
			return err
		}
	}
	name := join.Name
	if c.grant.name != "" {
		name = c.grant.name
	}
	res, err := s.reg.join(c.id, join.RoomID, name, s.opts.MaxRoomsPerSocket)
	if err != nil {
		return err
	}
	if res.already {
		return c.Emit(EventJoinOK, map[string]any{"roomId": join.RoomID})
	}
	topo := res.topology
	for _, m := range res.existing {
		if !topo.Visible(m) {
			continue
		}
		_ = c.Emit(EventUserConnected, map[string]any{"id": m.ID, "name": m.Name})
		if st, ok := res.states[m.ID]; ok {
			_ = c.Emit(EventMediaState, map[string]any{"id": m.ID, "roomId": join.RoomID, "mic": st.Mic, "cam": st.Cam})
		}
	}
	_ = c.Emit(EventJoinOK, map[string]any{"roomId": join.RoomID})
	if topo.Visible(res.newcomer) {
		s.to(ids(res.existing, nil), EventUserConnected, map[string]any{"id": c.id, "name": name})
	}
	for _, offer := range topo.InitOffers(res.existing, res.newcomer) {
		s.to([]string{offer.To}, EventInitOffer, map[string]any{"source": offer.Source})
	}
	c.log.Info("joined room", "room", join.RoomID, "name", name, "topology", topo.Name(), "members", len(res.existing)+1)
	if s.opts.OnJoin != nil {
		s.opts.OnJoin(RoomEvent{Room: join.RoomID, Topology: topo, Member: res.newcomer, Members: append(res.existing, res.newcomer)})
	}
	return nil
}

func (s *Server) leaveRoom(c *Conn, payload []any) error {
	p, err := decodeRoom(payload)
	if err != nil {
		return err
	}
	res, ok := s.reg.leave(c.id, p.RoomID)
	if !ok {
		return refuse(ReasonNotInRoom, fmt.Sprintf("not in room %q", p.RoomID))
	}
	if res.topology.Visible(res.left) {
		s.to(ids(res.remaining, nil), EventUserDisconnected, map[string]any{"id": c.id})
	}
	c.log.Info("left room", "room", p.RoomID)
	s.notifyLeave(p.RoomID, res)
	return nil
}

// mediaState remembers the sender's latest mic/cam state for late joiners and
// relays the announcement to the room.
func (s *Server) mediaState(c *Conn, payload []any) error {
	p, err := decodeMediaState(payload)
	if err != nil {
		return err
	}
	var st *MediaState
	if p.Mic != nil && p.Cam != nil {
		st = &MediaState{Mic: *p.Mic, Cam: *p.Cam}
	}
	sender, members, _, ok := s.reg.setMediaState(c.id, p.RoomID, st)
	if !ok {
		return refuse(ReasonNotInRoom, fmt.Sprintf("not in room %q", p.RoomID))
	}
	if s.opts.EnforceSource {
		p.raw["id"] = c.id
	}
	s.to(ids(members, func(m Member) bool { return m.ID != sender.ID }), EventMediaState, p.raw)
	return nil
}

// relayToRoom relays an event unchanged to the sender's room mates.
func (s *Server) relayToRoom(c *Conn, event string, payload []any) error {
	p, err := decodeRoom(payload)
	if err != nil {
		return err
	}
	sender, members, _, ok := s.reg.membersFor(c.id, p.RoomID)
	if !ok {
		return refuse(ReasonNotInRoom, fmt.Sprintf("not in room %q", p.RoomID))
	}
	s.to(ids(members, func(m Member) bool { return m.ID != sender.ID }), event, p.raw)
	return nil
}

// onDisconnecting tells every room the socket was in that it left, with the
// rtc.io hint first so peers can tear down their connection at once.
func (s *Server) onDisconnecting(c *Conn, reason string) {
	for _, res := range s.reg.removeSocket(c.id) {
		remaining := ids(res.remaining, nil)
		s.to(remaining, EventPeerLeft, map[string]any{"id": c.id})
		if res.topology.Visible(res.left) {
			s.to(remaining, EventUserDisconnected, map[string]any{"id": c.id})
		}
		s.notifyLeave(res.room, res)
	}
	c.log.Info("socket disconnected", "reason", reason)
}

func (s *Server) notifyLeave(roomID string, res leaveResult) {
	if s.opts.OnLeave != nil {
		s.opts.OnLeave(RoomEvent{Room: roomID, Topology: res.topology, Member: res.left, Members: res.remaining})
	}
}
