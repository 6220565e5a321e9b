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
	// Clients counts roomID's client members on every node.
	Clients(ctx context.Context, roomID string) (int, error)
	// LocalRooms lists the rooms this node's clients are in.
	LocalRooms() []string
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

// held is a media lease of a room hosted here; done ends its watch.
type held struct {
	h    Hold
	done chan struct{}
}

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
	hd := &held{h: h, done: make(chan struct{})}
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
	m.cfg.Logger.Info("sfu: hosting the room's media", "room", roomID)
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
	hosted := make([]string, 0, len(m.holds))
	for id := range m.holds {
		hosted = append(hosted, id)
	}
	m.mu.Unlock()
	for _, id := range hosted {
		n, err := m.cfg.Placement.Clients(ctx, id)
		if err != nil || n > 0 {
			continue
		}
		m.mu.Lock()
		if m.holds[id] != nil {
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
