package signaling

import (
	"slices"
	"sync"
	"time"
)

// Role says what kind of participant a socket is.
type Role int

const (
	// RoleClient is a browser or any other rtc.io peer.
	RoleClient Role = iota
	// RoleGateway is the gateway's own peer in a room (SFU policy).
	RoleGateway
)

func (r Role) String() string {
	if r == RoleGateway {
		return "gateway"
	}
	return "client"
}

// MediaState is the latest media-state a socket announced.
type MediaState struct {
	Mic bool `json:"mic"`
	Cam bool `json:"cam"`
}

// Member is one socket in one room.
type Member struct {
	ID       string
	Name     string
	Role     Role
	JoinedAt time.Time
	// Node is the cluster node the socket is connected to; empty in a
	// single node, and for sockets of this node in a local directory.
	Node string
	// Media is, in an SFU room cascaded over several nodes, the edge a
	// member belongs to: for a client, the node of the edge gateway that
	// serves its media; for a gateway peer, the node it is the edge of.
	// Empty means the room's origin (the media lease holder), which is
	// every member while a room does not cascade (package clusterrooms
	// sets it when cluster.max_room_peers_per_node is on).
	Media string
}

// room is the registry's record of one room. Members are kept in join order
// so backfill reaches a newcomer in the order people arrived.
type room struct {
	id       string
	topology Topology
	created  time.Time
	members  []Member
}

func (r *room) indexOf(id string) int {
	return slices.IndexFunc(r.members, func(m Member) bool { return m.ID == id })
}

// socketState is what the registry remembers about one connected socket.
type socketState struct {
	role       Role
	rooms      []string
	mediaState *MediaState
}

// registry is the authoritative membership of every room on this server.
// Every change happens under one mutex and returns a snapshot, so that two
// sockets joining one room at the same time always see each other exactly
// once; the caller emits events from the snapshot outside the lock (emitting
// can re-enter the registry through disconnect hooks).
type registry struct {
	mu       sync.Mutex
	rooms    map[string]*room
	sockets  map[string]*socketState
	topology func(roomID string) Topology
	now      func() time.Time
}

func newRegistry(topology func(roomID string) Topology) *registry {
	return &registry{
		rooms:    make(map[string]*room),
		sockets:  make(map[string]*socketState),
		topology: topology,
		now:      time.Now,
	}
}

func (g *registry) addSocket(id string, role Role) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.sockets[id] = &socketState{role: role}
}

// join adds socket id to roomID unless it would exceed maxRooms.
func (g *registry) join(id, roomID, name string, maxRooms int) (Joined, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	s, ok := g.sockets[id]
	if !ok {
		return Joined{}, refuse(ReasonShuttingDown, "socket is gone")
	}
	r := g.rooms[roomID]
	if r != nil && r.indexOf(id) >= 0 {
		return Joined{Already: true, Topology: r.topology}, nil
	}
	if maxRooms > 0 && len(s.rooms) >= maxRooms {
		return Joined{}, refuse(ReasonTooManyRooms, "socket is already in the maximum number of rooms")
	}
	if r == nil {
		r = &room{id: roomID, topology: g.topology(roomID), created: g.now()}
		g.rooms[roomID] = r
	}
	newcomer := Member{ID: id, Name: name, Role: s.role, JoinedAt: g.now()}
	res := Joined{
		Topology: r.topology,
		Newcomer: newcomer,
		Existing: slices.Clone(r.members),
		States:   make(map[string]MediaState),
	}
	for _, m := range r.members {
		if st := g.sockets[m.ID]; st != nil && st.mediaState != nil {
			res.States[m.ID] = *st.mediaState
		}
	}
	r.members = append(r.members, newcomer)
	s.rooms = append(s.rooms, roomID)
	return res, nil
}

func (g *registry) leave(id, roomID string) (Left, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.leaveLocked(id, roomID)
}

func (g *registry) leaveLocked(id, roomID string) (Left, bool) {
	r := g.rooms[roomID]
	if r == nil {
		return Left{}, false
	}
	i := r.indexOf(id)
	if i < 0 {
		return Left{}, false
	}
	left := r.members[i]
	r.members = slices.Delete(r.members, i, i+1)
	if s := g.sockets[id]; s != nil {
		s.rooms = slices.DeleteFunc(s.rooms, func(x string) bool { return x == roomID })
	}
	res := Left{Room: roomID, Topology: r.topology, Left: left, Remaining: slices.Clone(r.members)}
	if len(r.members) == 0 {
		delete(g.rooms, roomID)
	}
	return res, true
}

// removeSocket takes a disconnecting socket out of every room and forgets
// its media-state, returning one leave snapshot per room it was in.
func (g *registry) removeSocket(id string) []Left {
	g.mu.Lock()
	defer g.mu.Unlock()
	s := g.sockets[id]
	if s == nil {
		return nil
	}
	var out []Left
	for _, roomID := range slices.Clone(s.rooms) {
		if res, ok := g.leaveLocked(id, roomID); ok {
			out = append(out, res)
		}
	}
	delete(g.sockets, id)
	return out
}

// setMediaState remembers a socket's latest state and returns the room's
// members, or false when the socket is not in the room.
func (g *registry) setMediaState(id, roomID string, st *MediaState) (Member, []Member, Topology, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	r := g.rooms[roomID]
	if r == nil {
		return Member{}, nil, nil, false
	}
	i := r.indexOf(id)
	if i < 0 {
		return Member{}, nil, nil, false
	}
	if st != nil {
		if s := g.sockets[id]; s != nil {
			copied := *st
			s.mediaState = &copied
		}
	}
	return r.members[i], slices.Clone(r.members), r.topology, true
}

// sharedRoom reports whether a and b are together in some room, and returns
// that room and the two members.
func (g *registry) sharedRoom(a, b string) (Shared, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	r, i, j := g.sharedLocked(a, b)
	if r == nil {
		return Shared{}, false
	}
	return Shared{Room: r.id, Topology: r.topology, A: r.members[i], B: r.members[j]}, true
}

// sharedLocked finds a room holding a and b, and their indexes in it.
func (g *registry) sharedLocked(a, b string) (*room, int, int) {
	sa := g.sockets[a]
	if sa == nil {
		return nil, 0, 0
	}
	for _, roomID := range sa.rooms {
		r := g.rooms[roomID]
		if r == nil {
			continue
		}
		i, j := r.indexOf(a), r.indexOf(b)
		if i >= 0 && j >= 0 {
			return r, i, j
		}
	}
	return nil, 0, 0
}

// RoomInfo is a snapshot of one room for the admin API.
type RoomInfo struct {
	ID       string       `json:"id"`
	Topology string       `json:"topology"`
	Created  time.Time    `json:"created"`
	Members  []MemberInfo `json:"members"`
}

// MemberInfo is a snapshot of one member for the admin API.
type MemberInfo struct {
	ID         string      `json:"id"`
	Name       string      `json:"name"`
	Role       string      `json:"role"`
	JoinedAt   time.Time   `json:"joinedAt"`
	MediaState *MediaState `json:"mediaState,omitempty"`
}

func (g *registry) snapshot() []RoomInfo {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]RoomInfo, 0, len(g.rooms))
	for _, r := range g.rooms {
		info := RoomInfo{ID: r.id, Topology: r.topology.Name(), Created: r.created}
		for _, m := range r.members {
			mi := MemberInfo{ID: m.ID, Name: m.Name, Role: m.Role.String(), JoinedAt: m.JoinedAt}
			if s := g.sockets[m.ID]; s != nil && s.mediaState != nil {
				st := *s.mediaState
				mi.MediaState = &st
			}
			info.Members = append(info.Members, mi)
		}
		out = append(out, info)
	}
	slices.SortFunc(out, func(a, b RoomInfo) int {
		if a.ID < b.ID {
			return -1
		}
		if a.ID > b.ID {
			return 1
		}
		return 0
	})
	return out
}

// isMember reports whether socket id is in roomID.
func (g *registry) isMember(id, roomID string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	st := g.sockets[id]
	return st != nil && slices.Contains(st.rooms, roomID)
}
