package sfu

import (
	"errors"
	"slices"
	"sync"

	"github.com/rtcio-gateway/rtcio-gateway/gateway/signaling"
)

// Manager creates a room's gateway peer when the first client joins an SFU
// room and closes it when the last client is gone. A mesh room gets one
// too, receive-only, while it is recorded: one more member of the mesh
// that records what the clients send it. Wire OnJoin and OnLeave into the
// signaling server's options.
type Manager struct {
	cfg Config

	mu      sync.Mutex
	sig     *signaling.Server
	rooms   map[string]*Room
	clients map[string]int   // clients per SFU room, for MayJoin
	holds   map[string]*held // media leases of the rooms hosted here (cluster)
	closing sync.WaitGroup
	closed  bool
}

// NewManager makes a manager; Attach must be called before clients join.
func NewManager(cfg Config) *Manager {
	cfg.setDefaults()
	return &Manager{cfg: cfg, rooms: make(map[string]*Room), clients: make(map[string]int), holds: make(map[string]*held)}
}

// Attach gives the manager the signaling server its gateway peers join.
func (m *Manager) Attach(sig *signaling.Server) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sig = sig
	if m.cfg.Identity == nil {
		m.cfg.Identity = sig.Identity
	}
}

// OnJoin starts the room's gateway peer when a client joins an SFU room
// that has none, or a mesh room recorded from its start.
func (m *Manager) OnJoin(ev signaling.RoomEvent) {
	if ev.Member.Role != signaling.RoleClient {
		return
	}
	var cfg Config
	switch ev.Topology.Name() {
	case (signaling.SFU{}).Name():
		cfg = m.cfg
	case (signaling.Mesh{}).Name():
		if m.cfg.Recorder == nil || m.cfg.RecordRoom == nil || !m.cfg.RecordRoom(ev.Room) {
			return
		}
		cfg = m.meshConfig()
	default:
		return
	}
	m.mu.Lock()
	m.countClients(ev)
	m.mu.Unlock()
	if m.cfg.Placement != nil && ev.Topology.Name() == (signaling.SFU{}).Name() {
		m.hostPlaced(ev.Room)
		return
	}
	_, _ = m.host(ev.Room, cfg)
}

// RecordMesh joins a receive-only gateway peer to a mesh room, so that its
// streams can be recorded on request, and returns it (the room's existing
// gateway peer when it has one). It leaves with the room's last client.
func (m *Manager) RecordMesh(roomID string) (*Room, error) {
	if m.cfg.Recorder == nil {
		return nil, ErrRecordingUnavailable
	}
	return m.host(roomID, m.meshConfig())
}

// meshConfig is the configuration of a mesh room's recorder peer: a plain
// receive-only participant.
func (m *Manager) meshConfig() Config {
	cfg := m.cfg
	cfg.ReceiveOnly = true
	cfg.Channels = nil
	return cfg
}

// ErrRoomStarting is returned by RecordMesh while the room's gateway peer
// is being created by another call.
var ErrRoomStarting = errors.New("sfu: the room's gateway peer is starting")

// host creates roomID's gateway peer with cfg unless the room has one.
func (m *Manager) host(roomID string, cfg Config) (*Room, error) {
	m.mu.Lock()
	if room, exists := m.rooms[roomID]; exists || m.closed || m.sig == nil {
		m.mu.Unlock()
		switch {
		case room != nil:
			return room, nil
		case exists:
			return nil, ErrRoomStarting
		}
		return nil, errors.New("sfu: the gateway is closing")
	}
	// Reserve the room before creating it: creating it joins the gateway
	// peer, which calls OnJoin again.
	m.rooms[roomID] = nil
	sig := m.sig
	m.mu.Unlock()

	room, err := newRoom(sig, roomID, cfg)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil {
		m.cfg.Logger.Error("sfu: cannot start the room's gateway peer", "room", roomID, "err", err)
		delete(m.rooms, roomID)
		return nil, err
	}
	if m.closed {
		m.closeLater(room)
		return nil, errors.New("sfu: the gateway is closing")
	}
	m.rooms[roomID] = room
	return room, nil
}

// OnLeave closes a room's gateway peer once no client is left in it.
func (m *Manager) OnLeave(ev signaling.RoomEvent) {
	m.mu.Lock()
	defer m.mu.Unlock()
	room, hosted := m.rooms[ev.Room]
	if hosted || ev.Topology.Name() == (signaling.SFU{}).Name() {
		// Unrecorded mesh rooms cost the gateway nothing to count.
		m.countClients(ev)
	}
	if room == nil {
		return
	}
	// An edge serves only the clients of its edge; the origin serves the
	// room as long as anyone is in it.
	edge := ""
	if hd := m.holds[ev.Room]; hd != nil {
		edge = hd.edge
	}
	if slices.ContainsFunc(ev.Members, func(mb signaling.Member) bool {
		return mb.Role == signaling.RoleClient && (edge == "" || mb.Media == edge)
	}) {
		if ev.Member.Role == signaling.RoleClient {
			// A client that left the room (leave-room, or gone) has no
			// business with the room's gateway peer any more.
			room.dropClient(ev.Member.ID)
		}
		return
	}
	m.retire(ev.Room)
}

// Stats returns a snapshot of every SFU room.
func (m *Manager) Stats() []RoomStats {
	m.mu.Lock()
	rooms := make([]*Room, 0, len(m.rooms))
	for _, r := range m.rooms {
		if r != nil {
			rooms = append(rooms, r)
		}
	}
	m.mu.Unlock()
	out := make([]RoomStats, 0, len(rooms))
	for _, r := range rooms {
		out = append(out, r.Stats())
	}
	return out
}

// closeLater closes a room off the signaling goroutine that reported the
// change (closing waits for the room's peers). m.mu must be held.
func (m *Manager) closeLater(room *Room) {
	m.closing.Add(1)
	go func() {
		defer m.closing.Done()
		room.Close()
	}()
}

// Room returns the media side of an SFU room, if it has one.
func (m *Manager) Room(id string) *Room {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.rooms[id]
}

// Close closes every room and waits for them.
func (m *Manager) Close() {
	m.mu.Lock()
	m.closed = true
	for id := range m.rooms {
		m.retire(id)
	}
	m.mu.Unlock()
	m.closing.Wait()
}
