package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Member is one socket in a room, wherever it is connected.
type Member struct {
	ID       string    `json:"id"`
	Name     string    `json:"name"`
	Role     string    `json:"role"`
	Node     string    `json:"node"`
	JoinedAt time.Time `json:"joinedAt"`
	// Seq orders the room's members by join, across nodes.
	Seq int64 `json:"-"`
}

// ErrRoomFull is returned by Join when the room has its maximum of members.
var ErrRoomFull = errors.New("cluster: room is full")

// A member is stored as "<seq>|<json>", so a snapshot sorts by join order
// without a second lookup.
var joinScript = redis.NewScript(`
local members, seqKey, socketRooms, rooms = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local id, value, room, limit = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
if redis.call('HEXISTS', members, id) == 1 then
  return {0, redis.call('HVALS', members)}
end
local existing = redis.call('HVALS', members)
if limit > 0 and #existing >= limit then
  return {-1, {}}
end
local seq = redis.call('INCR', seqKey)
redis.call('HSET', members, id, seq .. '|' .. value)
redis.call('SADD', socketRooms, room)
redis.call('SADD', rooms, room)
return {seq, existing}
`)

var leaveScript = redis.NewScript(`
local members, socketRooms, rooms, seqKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local id, room = ARGV[1], ARGV[2]
redis.call('SREM', socketRooms, room)
if redis.call('HDEL', members, id) == 0 then
  return {0, {}}
end
local rest = redis.call('HVALS', members)
if #rest == 0 then
  redis.call('DEL', members, seqKey)
  redis.call('SREM', rooms, room)
end
return {1, rest}
`)

// Join adds m to room atomically and returns the members that were there
// before, in join order. Two sockets joining one room at once on two nodes
// each see the other exactly once: in the snapshot of the later one. A
// socket already in the room is not added again (joined is false). limit
// bounds the room's members (0: none).
func (c *Cluster) Join(ctx context.Context, room string, m Member, limit int) (existing []Member, joined bool, err error) {
	m.Node = c.cfg.NodeID
	if m.JoinedAt.IsZero() {
		m.JoinedAt = time.Now().UTC()
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, false, fmt.Errorf("cluster: join: %w", err)
	}
	res, err := joinScript.Run(ctx, c.rdb,
		[]string{c.keys.members(room), c.keys.joinSeq(room), c.keys.socketRooms(m.ID), c.keys.rooms()},
		m.ID, string(b), room, limit).Slice()
	if err != nil {
		return nil, false, fmt.Errorf("cluster: join %s: %w", room, err)
	}
	seq, _ := res[0].(int64)
	if seq < 0 {
		return nil, false, ErrRoomFull
	}
	existing, err = decodeMembers(res[1])
	if err != nil {
		return nil, false, err
	}
	if seq == 0 {
		// Already a member: the snapshot includes the socket itself.
		existing = without(existing, m.ID)
	}
	return existing, seq > 0, nil
}

// Leave takes id out of room atomically and returns the members left, in
// join order. left is false when id was not a member (a second Leave of
// the same socket, by its node and by a reaper, reports it once).
func (c *Cluster) Leave(ctx context.Context, room, id string) (remaining []Member, left bool, err error) {
	res, err := leaveScript.Run(ctx, c.rdb,
		[]string{c.keys.members(room), c.keys.socketRooms(id), c.keys.rooms(), c.keys.joinSeq(room)},
		id, room).Slice()
	if err != nil {
		return nil, false, fmt.Errorf("cluster: leave %s: %w", room, err)
	}
	if n, _ := res[0].(int64); n == 0 {
		return nil, false, nil
	}
	remaining, err = decodeMembers(res[1])
	return remaining, true, err
}

// Members returns room's members in join order.
func (c *Cluster) Members(ctx context.Context, room string) ([]Member, error) {
	vals, err := c.rdb.HVals(ctx, c.keys.members(room)).Result()
	if err != nil {
		return nil, fmt.Errorf("cluster: members of %s: %w", room, err)
	}
	out := make([]any, len(vals))
	for i, v := range vals {
		out[i] = v
	}
	return decodeMembers(out)
}

// Rooms lists the rooms that have members.
func (c *Cluster) Rooms(ctx context.Context) ([]string, error) {
	rooms, err := c.rdb.SMembers(ctx, c.keys.rooms()).Result()
	if err != nil {
		return nil, fmt.Errorf("cluster: rooms: %w", err)
	}
	sort.Strings(rooms)
	return rooms, nil
}

// RoomsOf lists the rooms a socket is in.
func (c *Cluster) RoomsOf(ctx context.Context, id string) ([]string, error) {
	rooms, err := c.rdb.SMembers(ctx, c.keys.socketRooms(id)).Result()
	if err != nil {
		return nil, fmt.Errorf("cluster: rooms of %s: %w", id, err)
	}
	sort.Strings(rooms)
	return rooms, nil
}

// decodeMembers parses "<seq>|<json>" values and sorts them by seq.
func decodeMembers(v any) ([]Member, error) {
	vals, _ := v.([]any)
	out := make([]Member, 0, len(vals))
	for _, x := range vals {
		s, _ := x.(string)
		seqStr, js, ok := strings.Cut(s, "|")
		if !ok {
			return nil, fmt.Errorf("cluster: malformed member %q", s)
		}
		var m Member
		if err := json.Unmarshal([]byte(js), &m); err != nil {
			return nil, fmt.Errorf("cluster: member %q: %w", s, err)
		}
		seq, err := strconv.ParseInt(seqStr, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("cluster: member %q: %w", s, err)
		}
		m.Seq = seq
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Seq < out[j].Seq })
	return out, nil
}

func without(ms []Member, id string) []Member {
	out := ms[:0]
	for _, m := range ms {
		if m.ID != id {
			out = append(out, m)
		}
	}
	return out
}
