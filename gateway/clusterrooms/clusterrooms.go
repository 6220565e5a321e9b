// Package clusterrooms is the signaling server's directory for a cluster of
// gateways: room membership and media-state live in Redis (through package
// cluster, changed atomically), and an event for a socket connected to
// another node travels through that node's inbox stream, in order per
// sending node and exactly once. It also keeps this node's part of the
// state (its sockets and their rooms) so it can write it again when Redis
// lost it, tells rooms of the sockets of dead nodes (the reaper), and
// reports whether Redis answers (readiness).
//
// The signaling server sees only signaling.Directory; nothing here runs
// the protocol's checks, which the server applies before it asks.
package clusterrooms

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rtcio-gateway/rtcio-gateway/gateway/cluster"
	"github.com/rtcio-gateway/rtcio-gateway/gateway/signaling"
)

// Rooms is one node's directory. Create it with New, hand Bind to the
// signaling server (Options.Directory), then Start it.
type Rooms struct {
	c   *cluster.Cluster
	log *slog.Logger
	env signaling.DirectoryEnv

	bus     *cluster.Bus
	healthy atomic.Bool
	// settled is when, after a re-assert, every live node has had a
	// heartbeat to write its state again (unix nanoseconds): joins wait
	// for it, or a newcomer could miss the members of a node that had not
	// re-asserted yet, and they it.
	settled atomic.Int64
	// reasserted is when this node last re-asserted its state (unix
	// nanoseconds; 0: never), for MayReconcile.
	reasserted atomic.Int64
	// srv is the signaling server, set by Start.
	srv Server
	// placement is the node's SFU room placement, if it made one.
	placement *Placement

	mu sync.Mutex
	// local is this node's part of the state, to write again when Redis
	// forgot it.
	local map[string]*localSocket
	// pending are sockets that went away while Redis did not answer:
	// their rooms are told once it does.
	pending map[string]*localSocket
	// edges are the cascaded rooms this node is an edge of, by their
	// edge lease (cascade.go).
	edges map[string]*cluster.Lease

	reaped, undeliverable, sendFailed atomic.Uint64
	wg                                sync.WaitGroup
}

type localSocket struct {
	role  signaling.Role
	rooms map[string]signaling.Member
	media map[string]string
}

// New makes the directory of the node c is for.
func New(c *cluster.Cluster, log *slog.Logger) *Rooms {
	if log == nil {
		log = slog.Default()
	}
	return &Rooms{c: c, log: log.With("component", "clusterrooms", "node", c.NodeID()),
		local: make(map[string]*localSocket), pending: make(map[string]*localSocket), edges: make(map[string]*cluster.Lease)}
}

// Bind is the signaling server's Options.Directory.
func (r *Rooms) Bind(env signaling.DirectoryEnv) (signaling.Directory, error) {
	if env.Emit == nil || env.Topology == nil {
		return nil, errors.New("clusterrooms: the server's emitter and topology are required")
	}
	r.env = env
	return r, nil
}

// Server is what the directory needs of the signaling server
// (*signaling.Server).
type Server interface {
	// AnnounceDepartures tells rooms that sockets left them.
	AnnounceDepartures([]signaling.Left)
	// Kick disconnects a network client.
	Kick(id string) (bool, error)
}

// Start runs the node (heartbeat, reaper, re-assert) and its inbox until
// ctx ends. It does not wait for Redis: the node serves while Redis is
// away, and is Ready once its inbox reads and its heartbeat went through.
func (r *Rooms) Start(ctx context.Context, srv Server) {
	r.srv = srv
	r.bus = r.c.NewBus(ctx, r.deliver)
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		r.c.RunNode(ctx, cluster.NodeHooks{
			Reaped:   r.onReaped,
			Reassert: r.reassert,
			Evicted:  r.evicted,
			Health:   r.onHealth,
			Load:     r.placement.publishedLoad(),
		}, &r.reaped)
	}()
}

// evicted disconnects this node's sockets after the cluster declared the
// node dead and told their rooms they left: the clients reconnect and
// join again, so every room's presence is whole. (The gateway's own
// participants cannot be kicked; they are written back as on a re-assert.)
func (r *Rooms) evicted(ctx context.Context) {
	r.mu.Lock()
	ids := make([]string, 0, len(r.local))
	for id := range r.local {
		ids = append(ids, id)
	}
	r.mu.Unlock()
	kept := 0
	for _, id := range ids {
		r.mu.Lock()
		ls := r.local[id]
		// Forgotten first: the reaper already took it out of Redis, and
		// its disconnect must not tell its rooms a second time.
		delete(r.local, id)
		r.mu.Unlock()
		if _, err := r.srv.Kick(id); err != nil {
			r.mu.Lock()
			r.local[id] = ls
			r.mu.Unlock()
			kept++
		}
	}
	if kept > 0 {
		r.reassert(ctx)
	}
	r.log.Warn("evicted: sockets disconnected", "sockets", len(ids)-kept)
}

// Ready reports whether the node can take joins: Redis answered its last
// heartbeat, its inbox reads (no event sent to it from now on is lost), and
// after Redis came back empty, every node has had time to re-assert.
func (r *Rooms) Ready() bool {
	if r.bus == nil || !r.healthy.Load() || time.Now().UnixNano() < r.settled.Load() {
		return false
	}
	select {
	case <-r.bus.Ready():
		return true
	default:
		return false
	}
}

// MayReconcile reports whether the node may claim SFU rooms nobody hosts
// and close hosted rooms without clients: it is Ready, and it re-asserted
// its state (Redis came back empty) at least grace ago. With grace the
// media lease TTL, every live holder has renewed, and so re-taken, the
// leases Redis forgot (a holder renews every third of the TTL), and every
// node has written its clients back: a reconcile before that would see
// rooms without a host, or without clients, that have both, and take a
// live room from its media node.
func (r *Rooms) MayReconcile(grace time.Duration) bool {
	return r.Ready() && time.Since(time.Unix(0, r.reasserted.Load())) >= grace
}

// Wait waits for the goroutines Start started, after its context ended.
func (r *Rooms) Wait() {
	r.wg.Wait()
	if r.bus != nil {
		r.bus.Wait()
	}
}

// Stats counts what the node did across the cluster.
type Stats struct {
	Bus cluster.BusStats
	// Reaped are sockets of dead nodes this node took out of rooms;
	// Undeliverable events for sockets whose node is unknown; SendFailed
	// events dropped because the outbox to their node was full.
	Reaped, Undeliverable, SendFailed uint64
	// LocalRooms counts the rooms this node's sockets are in.
	LocalRooms int
}

// Stats returns the node's counters (and resets the bus's lag maximum).
func (r *Rooms) Stats() Stats {
	st := Stats{Reaped: r.reaped.Load(), Undeliverable: r.undeliverable.Load(), SendFailed: r.sendFailed.Load()}
	r.mu.Lock()
	rooms := make(map[string]struct{})
	for _, ls := range r.local {
		for room := range ls.rooms {
			rooms[room] = struct{}{}
		}
	}
	r.mu.Unlock()
	st.LocalRooms = len(rooms)
	if r.bus != nil {
		st.Bus = r.bus.Stats()
	}
	return st
}

func (r *Rooms) onHealth(ok bool) {
	if was := r.healthy.Swap(ok); was != ok {
		if ok {
			r.log.Info("redis answers again")
		} else {
			r.log.Warn("redis does not answer: new joins are refused (cluster-unavailable)")
		}
	}
	if ok {
		r.flushPending()
	}
}

// errUnavailable refuses a join at once while the last heartbeat failed,
// instead of waiting for Redis's timeout on every join.
var errUnavailable = errors.New("clusterrooms: redis does not answer")

// Connect implements signaling.Directory.
func (r *Rooms) Connect(ctx context.Context, id string, role signaling.Role) error {
	r.mu.Lock()
	r.local[id] = &localSocket{role: role, rooms: make(map[string]signaling.Member), media: make(map[string]string)}
	r.mu.Unlock()
	return r.c.AddSocket(ctx, id)
}

// Join implements signaling.Directory.
func (r *Rooms) Join(ctx context.Context, roomID string, m signaling.Member, maxRooms int) (signaling.Joined, error) {
	if !r.Ready() {
		return signaling.Joined{}, errUnavailable
	}
	r.mu.Lock()
	ls := r.local[m.ID]
	if ls == nil {
		r.mu.Unlock()
		return signaling.Joined{}, signaling.Refuse(signaling.ReasonShuttingDown, "socket is gone")
	}
	_, already := ls.rooms[roomID]
	if !already && maxRooms > 0 && len(ls.rooms) >= maxRooms {
		r.mu.Unlock()
		return signaling.Joined{}, signaling.Refuse(signaling.ReasonTooManyRooms, "socket is already in the maximum number of rooms")
	}
	m.Role = ls.role
	r.mu.Unlock()
	topo := r.env.Topology(roomID)
	if already {
		return signaling.Joined{Already: true, Topology: topo}, nil
	}
	m.JoinedAt = time.Now().UTC()
	m.Node = r.c.NodeID()
	cascaded := r.placement.cascading() && topo.Name() == (signaling.SFU{}).Name()
	if cascaded {
		if m.Role == signaling.RoleClient {
			media, err := r.assign(ctx, roomID, m.ID)
			if err != nil {
				return signaling.Joined{}, err
			}
			m.Media = media
		} else {
			m.Media = r.edgeOf(roomID)
		}
	}
	existing, states, joined, err := r.c.JoinWithStates(ctx, roomID, toCluster(m), 0)
	if err != nil {
		if cascaded {
			r.unassign(context.WithoutCancel(ctx), roomID, m)
		}
		return signaling.Joined{}, err
	}
	r.mu.Lock()
	if ls := r.local[m.ID]; ls != nil {
		ls.rooms[roomID] = m
	}
	r.mu.Unlock()
	if !joined {
		return signaling.Joined{Already: true, Topology: topo}, nil
	}
	res := signaling.Joined{Topology: topo, Newcomer: m, Existing: fromCluster(existing), States: make(map[string]signaling.MediaState)}
	for id, raw := range states {
		var st signaling.MediaState
		if json.Unmarshal([]byte(raw), &st) == nil {
			res.States[id] = st
		}
	}
	return res, nil
}

// Leave implements signaling.Directory.
func (r *Rooms) Leave(ctx context.Context, id, roomID string) (signaling.Left, bool, error) {
	gone, remaining, left, err := r.c.LeaveMember(ctx, roomID, id)
	if err != nil {
		return signaling.Left{}, false, err
	}
	r.mu.Lock()
	if ls := r.local[id]; ls != nil {
		delete(ls.rooms, roomID)
		delete(ls.media, roomID)
	}
	r.mu.Unlock()
	if !left {
		return signaling.Left{}, false, nil
	}
	r.unassign(ctx, roomID, fromMember(gone))
	return signaling.Left{Room: roomID, Topology: r.env.Topology(roomID), Left: fromMember(gone), Remaining: fromCluster(remaining)}, true, nil
}

// Disconnect implements signaling.Directory. When Redis does not answer,
// the socket is remembered and its rooms are told once Redis is back.
func (r *Rooms) Disconnect(ctx context.Context, id string) ([]signaling.Left, error) {
	r.mu.Lock()
	ls := r.local[id]
	delete(r.local, id)
	r.mu.Unlock()
	if ls == nil {
		return nil, nil
	}
	out, err := r.disconnect(ctx, id, ls, false)
	if err != nil {
		r.mu.Lock()
		r.pending[id] = ls
		r.mu.Unlock()
		return out, err
	}
	return out, nil
}

// disconnect takes socket id out of its rooms and forgets it. afterLoss
// is set for a socket that went while Redis was away: a room that no
// longer lists it (Redis restarted empty) is told all the same, since
// nobody told it before.
func (r *Rooms) disconnect(ctx context.Context, id string, ls *localSocket, afterLoss bool) ([]signaling.Left, error) {
	var out []signaling.Left
	rooms := make([]string, 0, len(ls.rooms))
	for room := range ls.rooms {
		rooms = append(rooms, room)
	}
	slices.Sort(rooms)
	for _, room := range rooms {
		res, ok, err := r.Leave(ctx, id, room)
		if err != nil {
			return out, err
		}
		if !ok && afterLoss {
			members, err := r.c.Members(ctx, room)
			if err != nil {
				return out, err
			}
			res, ok = signaling.Left{Room: room, Topology: r.env.Topology(room), Left: ls.rooms[room], Remaining: fromCluster(members)}, true
		}
		if ok {
			out = append(out, res)
		}
		delete(ls.rooms, room)
	}
	return out, r.c.RemoveSocket(ctx, id)
}

// flushPending tells the rooms of sockets that went while Redis was away.
func (r *Rooms) flushPending() {
	r.mu.Lock()
	if len(r.pending) == 0 {
		r.mu.Unlock()
		return
	}
	pending := r.pending
	r.pending = make(map[string]*localSocket)
	r.mu.Unlock()
	for id, ls := range pending {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		left, err := r.disconnect(ctx, id, ls, true)
		cancel()
		if r.srv != nil {
			r.srv.AnnounceDepartures(left)
		}
		if err != nil {
			r.mu.Lock()
			r.pending[id] = ls
			r.mu.Unlock()
		}
	}
}

// SetMediaState implements signaling.Directory.
func (r *Rooms) SetMediaState(ctx context.Context, id, roomID string, st *signaling.MediaState) (signaling.Member, []signaling.Member, bool, error) {
	state := ""
	if st != nil {
		b, err := json.Marshal(st)
		if err != nil {
			return signaling.Member{}, nil, false, fmt.Errorf("clusterrooms: media-state: %w", err)
		}
		state = string(b)
	}
	members, ok, err := r.c.SetMediaState(ctx, roomID, id, state)
	if err != nil || !ok {
		return signaling.Member{}, nil, false, err
	}
	if state != "" {
		r.mu.Lock()
		if ls := r.local[id]; ls != nil {
			ls.media[roomID] = state
		}
		r.mu.Unlock()
	}
	all := fromCluster(members)
	i := slices.IndexFunc(all, func(m signaling.Member) bool { return m.ID == id })
	if i < 0 {
		return signaling.Member{}, nil, false, nil
	}
	return all[i], all, true, nil
}

// SharedRoom implements signaling.Directory.
func (r *Rooms) SharedRoom(ctx context.Context, a, b string) (signaling.Shared, bool, error) {
	room, ma, mb, ok, err := r.c.SharedRoom(ctx, a, b)
	if err != nil || !ok {
		return signaling.Shared{}, false, err
	}
	return signaling.Shared{Room: room, Topology: r.env.Topology(room), A: fromMember(ma), B: fromMember(mb)}, true, nil
}

// IsMember implements signaling.Directory.
func (r *Rooms) IsMember(ctx context.Context, id, roomID string) (bool, error) {
	return r.c.IsMember(ctx, roomID, id)
}

// Rooms implements signaling.Directory: every room of the cluster.
func (r *Rooms) Rooms(ctx context.Context) ([]signaling.RoomInfo, error) {
	ids, err := r.c.Rooms(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]signaling.RoomInfo, 0, len(ids))
	for _, id := range ids {
		members, err := r.c.Members(ctx, id)
		if err != nil {
			return nil, err
		}
		if len(members) == 0 {
			continue // emptied since it was listed
		}
		states, err := r.c.MediaStates(ctx, id)
		if err != nil {
			return nil, err
		}
		info := signaling.RoomInfo{ID: id, Topology: r.env.Topology(id).Name(), Created: members[0].JoinedAt}
		for _, m := range members {
			mi := signaling.MemberInfo{ID: m.ID, Name: m.Name, Role: m.Role, JoinedAt: m.JoinedAt}
			var st signaling.MediaState
			if raw, ok := states[m.ID]; ok && json.Unmarshal([]byte(raw), &st) == nil {
				mi.MediaState = &st
			}
			info.Members = append(info.Members, mi)
		}
		out = append(out, info)
	}
	return out, nil
}

// reassert writes this node's sockets and their rooms again after Redis
// lost them (restarted empty). Nobody is told anything: the rooms' members
// knew each other before, and still do.
func (r *Rooms) reassert(ctx context.Context) {
	r.mu.Lock()
	type entry struct {
		id    string
		rooms []signaling.Member
		names []string
		media map[string]string
	}
	var all []entry
	for id, ls := range r.local {
		e := entry{id: id, media: make(map[string]string, len(ls.media))}
		for room, m := range ls.rooms {
			e.names = append(e.names, room)
			e.rooms = append(e.rooms, m)
		}
		for room, st := range ls.media {
			e.media[room] = st
		}
		all = append(all, e)
	}
	r.mu.Unlock()
	n := 0
	for _, e := range all {
		if err := r.c.AddSocket(ctx, e.id); err != nil {
			r.log.Warn("re-assert: socket not written", "socket", e.id, "error", err)
			continue
		}
		for i, room := range e.names {
			if _, _, err := r.c.Join(ctx, room, toCluster(e.rooms[i]), 0); err != nil {
				r.log.Warn("re-assert: membership not written", "socket", e.id, "room", room, "error", err)
				continue
			}
			if st, ok := e.media[room]; ok {
				_, _, _ = r.c.SetMediaState(ctx, room, e.id, st)
			}
			n++
		}
	}
	// Every other live node notices within one heartbeat of Redis being
	// back; two leave room for one that is late.
	now := time.Now()
	r.reasserted.Store(now.UnixNano())
	r.settled.Store(now.Add(2 * r.c.Heartbeat()).UnixNano())
	r.log.Info("re-asserted this node's state", "sockets", len(all), "memberships", n)
}

// onReaped tells a room that a socket of a dead node left it.
func (r *Rooms) onReaped(d cluster.Departure) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	r.unassign(ctx, d.Room, fromMember(d.Member))
	cancel()
	if r.srv == nil {
		return
	}
	r.srv.AnnounceDepartures([]signaling.Left{{Room: d.Room, Topology: r.env.Topology(d.Room), Left: fromMember(d.Member), Remaining: fromCluster(d.Remaining)}})
}

func toCluster(m signaling.Member) cluster.Member {
	return cluster.Member{ID: m.ID, Name: m.Name, Role: m.Role.String(), Node: m.Node, JoinedAt: m.JoinedAt, Media: m.Media}
}

func fromMember(m cluster.Member) signaling.Member {
	role := signaling.RoleClient
	if m.Role == signaling.RoleGateway.String() {
		role = signaling.RoleGateway
	}
	return signaling.Member{ID: m.ID, Name: m.Name, Role: role, JoinedAt: m.JoinedAt, Node: m.Node, Media: m.Media}
}

func fromCluster(ms []cluster.Member) []signaling.Member {
	out := make([]signaling.Member, len(ms))
	for i, m := range ms {
		out[i] = fromMember(m)
	}
	return out
}
