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
	if !s.opts.RequireSharedRoom {
		s.dir.SendIDs([]string{msg.Target}, EventMessage, msg.raw)
		return nil
	}
	ctx, cancel := s.dirCtx()
	defer cancel()
	sh, ok, err := s.dir.SharedRoom(ctx, c.id, msg.Target)
	switch {
	case err != nil:
		return unavailable(err)
	case !ok:
		return refuse(ReasonNoSharedRoom, fmt.Sprintf("target %q shares no room with the sender", msg.Target))
	case !sh.Topology.MayRelay(sh.A, sh.B):
		return refuse(ReasonNotRelayed, fmt.Sprintf("a %s room does not relay signaling to %q", sh.Topology.Name(), msg.Target))
	}
	s.dir.Send([]Member{sh.B}, EventMessage, msg.raw)
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
	ctx, cancel := s.dirCtx()
	defer cancel()
	if s.opts.MayJoin != nil && c.role == RoleClient {
		member, err := s.dir.IsMember(ctx, c.id, join.RoomID)
		if err != nil {
			return unavailable(err)
		}
		if !member {
			if err := s.opts.MayJoin(c.id, join.RoomID, s.opts.Topology(join.RoomID)); err != nil {
				return err
			}
		}
	}
	name := join.Name
	if c.grant.name != "" {
		name = c.grant.name
	}
	res, err := s.dir.Join(ctx, join.RoomID, Member{ID: c.id, Name: name, Role: c.role}, s.opts.MaxRoomsPerSocket)
	if err != nil {
		return unavailable(err)
	}
	if res.Already {
		return c.Emit(EventJoinOK, map[string]any{"roomId": join.RoomID})
	}
	topo := res.Topology
	for _, m := range res.Existing {
		if !topo.Visible(m) {
			continue
		}
		_ = c.Emit(EventUserConnected, map[string]any{"id": m.ID, "name": m.Name})
		if st, ok := res.States[m.ID]; ok {
			_ = c.Emit(EventMediaState, map[string]any{"id": m.ID, "roomId": join.RoomID, "mic": st.Mic, "cam": st.Cam})
		}
	}
	_ = c.Emit(EventJoinOK, map[string]any{"roomId": join.RoomID})
	if topo.Visible(res.Newcomer) {
		s.dir.Send(res.Existing, EventUserConnected, map[string]any{"id": c.id, "name": name})
	}
	byID := make(map[string]Member, len(res.Existing)+1)
	for _, m := range append(res.Existing, res.Newcomer) {
		byID[m.ID] = m
	}
	for _, offer := range topo.InitOffers(res.Existing, res.Newcomer) {
		s.dir.Send([]Member{byID[offer.To]}, EventInitOffer, map[string]any{"source": offer.Source})
	}
	c.log.Info("joined room", "room", join.RoomID, "name", name, "topology", topo.Name(), "members", len(res.Existing)+1)
	if s.opts.OnJoin != nil {
		s.opts.OnJoin(RoomEvent{Room: join.RoomID, Topology: topo, Member: res.Newcomer, Members: append(res.Existing, res.Newcomer)})
	}
	return nil
}

func (s *Server) leaveRoom(c *Conn, payload []any) error {
	p, err := decodeRoom(payload)
	if err != nil {
		return err
	}
	ctx, cancel := s.dirCtx()
	defer cancel()
	res, ok, err := s.dir.Leave(ctx, c.id, p.RoomID)
	if err != nil {
		return unavailable(err)
	}
	if !ok {
		return refuse(ReasonNotInRoom, fmt.Sprintf("not in room %q", p.RoomID))
	}
	if res.Topology.Visible(res.Left) {
		s.dir.Send(res.Remaining, EventUserDisconnected, map[string]any{"id": c.id})
	}
	c.log.Info("left room", "room", p.RoomID)
	s.notifyLeave(res)
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
	ctx, cancel := s.dirCtx()
	defer cancel()
	sender, members, ok, err := s.dir.SetMediaState(ctx, c.id, p.RoomID, st)
	if err != nil {
		return unavailable(err)
	}
	if !ok {
		return refuse(ReasonNotInRoom, fmt.Sprintf("not in room %q", p.RoomID))
	}
	if s.opts.EnforceSource {
		p.raw["id"] = c.id
	}
	s.dir.Send(others(members, sender.ID), EventMediaState, p.raw)
	return nil
}

// relayToRoom relays an event unchanged to the sender's room mates.
func (s *Server) relayToRoom(c *Conn, event string, payload []any) error {
	p, err := decodeRoom(payload)
	if err != nil {
		return err
	}
	ctx, cancel := s.dirCtx()
	defer cancel()
	sender, members, ok, err := s.dir.SetMediaState(ctx, c.id, p.RoomID, nil)
	if err != nil {
		return unavailable(err)
	}
	if !ok {
		return refuse(ReasonNotInRoom, fmt.Sprintf("not in room %q", p.RoomID))
	}
	s.dir.Send(others(members, sender.ID), event, p.raw)
	return nil
}

// others is members without the socket id.
func others(members []Member, id string) []Member {
	out := make([]Member, 0, len(members))
	for _, m := range members {
		if m.ID != id {
			out = append(out, m)
		}
	}
	return out
}

// onDisconnecting tells every room the socket was in that it left.
func (s *Server) onDisconnecting(c *Conn, reason string) {
	ctx, cancel := s.dirCtx()
	defer cancel()
	left, err := s.dir.Disconnect(ctx, c.id)
	if err != nil {
		// A cluster's directory retries on its own and tells the rooms
		// then.
		c.log.Warn("socket's rooms not told yet that it left", "error", err)
	}
	s.announceDepartures(left)
	c.log.Info("socket disconnected", "reason", reason)
}

// announceDepartures tells rooms that sockets left them without a
// leave-room of their own (disconnected, or reaped with their dead node),
// with the rtc.io hint first so peers can tear down their connection at
// once.
func (s *Server) announceDepartures(left []Left) {
	for _, res := range left {
		s.dir.Send(res.Remaining, EventPeerLeft, map[string]any{"id": res.Left.ID})
		if res.Topology.Visible(res.Left) {
			s.dir.Send(res.Remaining, EventUserDisconnected, map[string]any{"id": res.Left.ID})
		}
		s.notifyLeave(res)
	}
}

func (s *Server) notifyLeave(res Left) {
	if s.opts.OnLeave != nil {
		s.opts.OnLeave(RoomEvent{Room: res.Room, Topology: res.Topology, Member: res.Left, Members: res.Remaining})
	}
}
