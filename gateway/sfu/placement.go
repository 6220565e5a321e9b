package sfu

import (
	"context"
	"time"
)

// Placement decides which node of a cluster hosts an SFU room's media: the
// one holding the room's media lease. Nil on a single node (every room is
// hosted here). The manager claims the lease before it starts a room's
// gateway peer, so only the holder's gateway peer joins the room.
type Placement interface {
	// Claim takes roomID's media lease for this node. ok is false, with
	// no error, when another node holds it.
	Claim(ctx context.Context, roomID string) (h Hold, ok bool, err error)
	// Clients counts roomID's client members on every node; with edge
	// set, only those an edge of the room serves (Member.Media == edge).
	Clients(ctx context.Context, roomID, edge string) (int, error)
	// LocalRooms lists the rooms this node's clients are in.
	LocalRooms() []string
	// OriginLive reports whether roomID's media lease has a holder; an
	// edge of a room whose origin died closes (see Reconcile).
	OriginLive(ctx context.Context, roomID string) (bool, error)
}

// Hold is a held media lease.
type Hold interface {
	// Lost is closed when another node took the lease (this node was
	// away past its TTL): the room must be closed at once (fencing).
	Lost() <-chan struct{}
	// Release frees the lease if it is still this node's.
	Release(ctx context.Context) error
}

// placementTimeout bounds one call to the placement's store.
const placementTimeout = 2 * time.Second

// held is a media lease of a room hosted here, or an edge lease of a
// cascaded room this node is an edge of (edge names the edge: this node's
// id, as its clients' Member.Media); done ends its watch.
type held struct {
	h    Hold
	edge string
	// since is when the edge started: its first client's member record
	// is written by another node at about the same time (see Reconcile).
	since time.Time
	done  chan struct{}
}

// edgeGrace is how long a new edge is kept without clients.
const edgeGrace = 2 * placementTimeout

// hostPlaced starts roomID's gateway peer if this node gets the room's
// media lease. Another node holding it hosts the room: this one's clients
// reach its gateway peer through the cluster's signaling.
func (m *Manager) hostPlaced(roomID string) {
	m.mu.Lock()
	_, exists := m.rooms[roomID]
	closed := m.closed
	m.mu.Unlock()
	if exists || closed {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), placementTimeout)
	defer cancel()
	h, ok, err := m.cfg.Placement.Claim(ctx, roomID)
	if err != nil {
		m.cfg.Logger.Warn("sfu: cannot claim the room's media lease", "room", roomID, "err", err)
		return
	}
	if !ok {
		return
	}
	m.HostHeld(roomID, h)
}

// HostHeld starts roomID's gateway peer under a media lease this node
// already holds: one another node placed here (least-loaded placement)
// and this node adopted. A room that cannot start here (the node is
// closing) frees the lease at once, for another node to take.
func (m *Manager) HostHeld(roomID string, h Hold) {
	m.hostHeld(roomID, &held{h: h, done: make(chan struct{})})
}

// HostEdge starts the gateway peer of an edge of a cascaded room under the
// edge lease this node adopted: it serves the room's clients whose
// Member.Media is edge, and links to the origin's gateway peer (the
// signaling pairs them). It closes when its last client left, or when
// the room's origin is gone (Reconcile).
func (m *Manager) HostEdge(roomID, edge string, h Hold) {
	m.hostHeld(roomID, &held{h: h, edge: edge, since: time.Now(), done: make(chan struct{})})
}

func (m *Manager) hostHeld(roomID string, hd *held) {
	room, err := m.host(roomID, m.cfg)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil || m.rooms[roomID] != room || m.holds[roomID] != nil {
		// Not started (or closing): the lease must not keep other nodes
		// from hosting the room.
		m.releaseLater(hd)
		return
	}
	m.holds[roomID] = hd
	m.cfg.Logger.Info("sfu: hosting the room's media", "room", roomID, "edge", hd.edge)
	m.closing.Add(1)
	go m.watch(roomID, hd)
}

// watch closes the room at once when its lease was taken by another node:
// two nodes must never both send the room's media (fencing).
func (m *Manager) watch(roomID string, hd *held) {
	defer m.closing.Done()
	select {
	case <-hd.done:
	case <-hd.h.Lost():
		m.mu.Lock()
		if m.holds[roomID] == hd {
			m.cfg.Logger.Warn("sfu: the room's media lease was lost; closing it here", "room", roomID)
			m.retire(roomID)
		}
		m.mu.Unlock()
	}
}

// retire closes roomID's gateway peer, and only then frees its media lease:
// no other node may host the room while this one's peer is still in it.
// m.mu must be held.
func (m *Manager) retire(roomID string) {
	room := m.rooms[roomID]
	delete(m.rooms, roomID)
	hd := m.holds[roomID]
	delete(m.holds, roomID)
	if hd != nil {
		close(hd.done)
	}
	m.closing.Add(1)
	go func() {
		defer m.closing.Done()
		if room != nil {
			room.Close()
		}
		if hd != nil {
			m.release(hd)
		}
	}()
}

// releaseLater frees a lease off the caller's goroutine. m.mu must be held.
func (m *Manager) releaseLater(hd *held) {
	m.closing.Add(1)
	go func() {
		defer m.closing.Done()
		m.release(hd)
	}()
}

func (m *Manager) release(hd *held) {
	ctx, cancel := context.WithTimeout(context.Background(), placementTimeout)
	defer cancel()
	if err := hd.h.Release(ctx); err != nil {
		m.cfg.Logger.Warn("sfu: cannot release a media lease", "err", err)
	}
}

// Reconcile brings this node's hosting in line with the cluster; the
// cluster wiring calls it every heartbeat. A hosted room whose clients all
// left (on any node) is closed and its lease freed; a room this node has
// clients in and nobody hosts (its media node died, or handed it over) is
// claimed, and its gateway peer joins and offers to every client.
func (m *Manager) Reconcile(ctx context.Context) {
	if m.cfg.Placement == nil {
		return
	}
	m.mu.Lock()
	hosted := make(map[string]*held, len(m.holds))
	for id, hd := range m.holds {
		hosted[id] = hd
	}
	m.mu.Unlock()
	for id, hd := range hosted {
		// A room (or an edge) without clients closes: their leaves were
		// seen by other nodes, or its first client's join failed.
		n, err := m.cfg.Placement.Clients(ctx, id, hd.edge)
		retire := err == nil && n == 0 && (hd.edge == "" || time.Since(hd.since) > edgeGrace)
		if hd.edge != "" && !retire {
			// An edge of a room whose origin died closes: its clients are
			// moved to live gateway peers, and a node with clients in the
			// room takes it over (close and retake, not a live re-root).
			live, err := m.cfg.Placement.OriginLive(ctx, id)
			retire = err == nil && !live
		}
		if !retire {
			continue
		}
		m.mu.Lock()
		if m.holds[id] == hd {
			m.retire(id)
		}
		m.mu.Unlock()
	}
	for _, id := range m.cfg.Placement.LocalRooms() {
		if ctx.Err() != nil {
			return
		}
		m.hostPlaced(id)
	}
}

// Load is this node's media load for least-loaded placement: the clients
// the gateway peers of its hosted SFU rooms serve (their peer
// connections), a hosted room counting at least one while its first
// client connects. -1 once the manager is closing (draining): the node
// takes no new rooms.
func (m *Manager) Load() int {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return -1
	}
	rooms := make([]*Room, 0, len(m.holds))
	starting := 0
	for id := range m.holds {
		if r := m.rooms[id]; r != nil {
			rooms = append(rooms, r)
		} else {
			starting++
		}
	}
	for id, r := range m.rooms {
		if r == nil && m.holds[id] == nil {
			starting++ // reserved: its gateway peer is being created
		}
	}
	m.mu.Unlock()
	load := starting
	for _, r := range rooms {
		load += max(1, len(r.sock.Peers()))
	}
	return load
}

// Origins lists the SFU rooms whose origin this node hosts (it holds
// their media lease): the cluster wiring moves the clients of their dead
// edges (ReassignOrphans) every heartbeat.
func (m *Manager) Origins() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]string, 0, len(m.holds))
	for id, hd := range m.holds {
		if hd.edge == "" && m.rooms[id] != nil {
			out = append(out, id)
		}
	}
	return out
}

// Invite makes roomID's gateway peer here offer to clientID, a client
// moved to it from a dead edge (its join is long past, so no init-offer
// comes from the signaling). It reports whether the room has a gateway
// peer here; one already connected to the client is left as it is.
func (m *Manager) Invite(roomID, clientID string) bool {
	room := m.Room(roomID)
	if room == nil {
		return false
	}
	room.invite(clientID)
	return true
}
