package signaling

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Directory is where the server keeps who is in which room, and how its
// events reach sockets. The server's own directory keeps everything in this
// process (a single node); a cluster's keeps membership in shared storage
// and carries events to sockets connected to other nodes. The server's
// hardening (source, shared room, rate, tokens) runs on the node that holds
// the sending socket, before the directory is asked anything, so it holds
// whichever directory is used.
//
// Every method is safe for concurrent use. A method that fails returns an
// error that is not a Refusal: the server refuses the request with
// cluster-unavailable.
type Directory interface {
	// Connect records a socket connected to this process.
	Connect(ctx context.Context, id string, role Role) error
	// Join adds m to roomID, unless the socket is already in maxRooms
	// rooms (0: no bound), and returns the room as it was before: two
	// sockets joining one room at once each see the other exactly once.
	Join(ctx context.Context, roomID string, m Member, maxRooms int) (Joined, error)
	// Leave takes socket id out of roomID; ok is false when it was not in.
	Leave(ctx context.Context, id, roomID string) (res Left, ok bool, err error)
	// Disconnect takes a socket that is going away out of every room.
	Disconnect(ctx context.Context, id string) ([]Left, error)
	// SetMediaState records st as the socket's latest media-state (nil:
	// keep it) and returns the socket and the room's members; ok is false
	// when the socket is not in the room.
	SetMediaState(ctx context.Context, id, roomID string, st *MediaState) (sender Member, members []Member, ok bool, err error)
	// SharedRoom finds a room holding both a and b.
	SharedRoom(ctx context.Context, a, b string) (Shared, bool, error)
	// IsMember reports whether socket id is in roomID.
	IsMember(ctx context.Context, id, roomID string) (bool, error)
	// Rooms is a snapshot of every room, sorted by id.
	Rooms(ctx context.Context) ([]RoomInfo, error)
	// Send emits an event to these members wherever they are connected.
	// Events one caller sends to one socket arrive in the order sent;
	// members no longer connected are skipped.
	Send(to []Member, event string, args ...any)
	// SendIDs is Send for sockets known only by id.
	SendIDs(ids []string, event string, args ...any)
}

// DirectoryEnv is what the server hands the directory it builds.
type DirectoryEnv struct {
	// Topology resolves a room's policy; every node resolves a room alike.
	Topology func(roomID string) Topology
	// Emit delivers an event to the sockets with these ids connected to
	// this process, skipping the others. It does not block.
	Emit   func(ids []string, event string, args []any)
	Logger *slog.Logger
}

// Joined is what a join hands back for the events it causes.
type Joined struct {
	// Already is set when the socket was in the room before.
	Already  bool
	Topology Topology
	Newcomer Member
	// Existing are the members before the join, in join order.
	Existing []Member
	// States holds the last media-state of existing members that have one.
	States map[string]MediaState
}

// Left is a socket's departure from one room.
type Left struct {
	Room     string
	Topology Topology
	Left     Member
	// Remaining are the members after it left, in join order.
	Remaining []Member
}

// Shared is a room two sockets are both in.
type Shared struct {
	Room     string
	Topology Topology
	A, B     Member
}

// directoryTimeout bounds one directory call made while handling an event:
// a cluster whose storage does not answer must not hold a socket's event
// queue for long.
const directoryTimeout = 3 * time.Second

func (s *Server) dirCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), directoryTimeout)
}

// unavailable turns a directory failure into the refusal the client sees.
func unavailable(err error) error {
	var r *Refusal
	if errors.As(err, &r) {
		return err
	}
	return refuse(ReasonClusterUnavailable, fmt.Sprintf("room state is unavailable: %v", err))
}

// Rooms returns a snapshot of every room and its members (in a cluster,
// of every node's rooms). A directory that does not answer gives none,
// with a log line.
func (s *Server) Rooms() []RoomInfo {
	ctx, cancel := s.dirCtx()
	defer cancel()
	rooms, err := s.dir.Rooms(ctx)
	if err != nil {
		s.log.Warn("rooms not listed", "error", err)
	}
	return rooms
}

// AnnounceDepartures tells the remaining members of each room that a
// socket left it without leaving on its own: a cluster's reaper calls it
// for the sockets of a dead node.
func (s *Server) AnnounceDepartures(left []Left) { s.announceDepartures(left) }

// connect records a socket in the directory. A failure is logged: a
// cluster's directory writes its sockets again once its storage is back.
func (s *Server) connect(id string, role Role) {
	ctx, cancel := s.dirCtx()
	defer cancel()
	if err := s.dir.Connect(ctx, id, role); err != nil {
		s.log.Warn("socket not recorded in the directory yet", "socket", id, "error", err)
	}
}

// ErrNotKickable is returned by Kick for an in-process participant (a
// room's gateway peer): closing it would leave its room without the peer
// every later joiner negotiates with, while the room lives on.
var ErrNotKickable = errors.New("signaling: the gateway's own participant cannot be kicked")

// RemoteKicker is implemented by a directory whose sockets can be on other
// nodes: it has the node holding socket id disconnect it, and reports
// false when no node holds it.
type RemoteKicker interface {
	KickRemote(ctx context.Context, id string) (bool, error)
}

// Kick disconnects a network client, on this node or (in a cluster) on the
// node that holds it; its rooms see it leave exactly as on any other
// disconnect. It reports false when no such socket is connected,
// and ErrNotKickable for the gateway's own participants.
func (s *Server) Kick(id string) (bool, error) {
	s.mu.Lock()
	c := s.conns[id]
	s.mu.Unlock()
	if c == nil {
		if rk, ok := s.dir.(RemoteKicker); ok {
			ctx, cancel := s.dirCtx()
			defer cancel()
			return rk.KickRemote(ctx, id)
		}
		return false, nil
	}
	if c.local != nil {
		return true, ErrNotKickable
	}
	c.log.Info("socket kicked")
	c.sock.Disconnect(true)
	return true, nil
}

// localDirectory is the single-node directory: the registry in this
// process, and delivery straight to this process's sockets.
type localDirectory struct {
	reg  *registry
	emit func(ids []string, event string, args []any)
}

func newLocalDirectory(env DirectoryEnv) *localDirectory {
	return &localDirectory{reg: newRegistry(env.Topology), emit: env.Emit}
}

func (d *localDirectory) Connect(_ context.Context, id string, role Role) error {
	d.reg.addSocket(id, role)
	return nil
}

func (d *localDirectory) Join(_ context.Context, roomID string, m Member, maxRooms int) (Joined, error) {
	return d.reg.join(m.ID, roomID, m.Name, maxRooms)
}

func (d *localDirectory) Leave(_ context.Context, id, roomID string) (Left, bool, error) {
	res, ok := d.reg.leave(id, roomID)
	return res, ok, nil
}

func (d *localDirectory) Disconnect(_ context.Context, id string) ([]Left, error) {
	return d.reg.removeSocket(id), nil
}

func (d *localDirectory) SetMediaState(_ context.Context, id, roomID string, st *MediaState) (Member, []Member, bool, error) {
	sender, members, _, ok := d.reg.setMediaState(id, roomID, st)
	return sender, members, ok, nil
}

func (d *localDirectory) SharedRoom(_ context.Context, a, b string) (Shared, bool, error) {
	sh, ok := d.reg.sharedRoom(a, b)
	return sh, ok, nil
}

func (d *localDirectory) IsMember(_ context.Context, id, roomID string) (bool, error) {
	return d.reg.isMember(id, roomID), nil
}

func (d *localDirectory) Rooms(context.Context) ([]RoomInfo, error) { return d.reg.snapshot(), nil }

func (d *localDirectory) Send(to []Member, event string, args ...any) {
	d.emit(ids(to, nil), event, args)
}

func (d *localDirectory) SendIDs(ids []string, event string, args ...any) { d.emit(ids, event, args) }
