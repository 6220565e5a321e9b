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
	// Media is the edge of a cascaded SFU room the member belongs to
	// (signaling.Member.Media); absent for the origin.
	Media string `json:"media,omitempty"`
	// Seq orders the room's members by join, across nodes.
	Seq int64 `json:"-"`
}

// ErrRoomFull is returned by Join when the room has its maximum of members.
var ErrRoomFull = errors.New("cluster: room is full")

// A member is stored as "<seq>|<json>", so a snapshot sorts by join order
// without a second lookup.
// The join answers with the media-states of the members already there
// (room:<r>:media, socket id -> state), read in the same step, so a state
// announced while someone joins reaches the newcomer exactly once: in the
// snapshot or in the announcement that follows it.
var joinScript = redis.NewScript(`
local members, seqKey, socketRooms, rooms, media = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local id, value, room, limit = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
if redis.call('HEXISTS', members, id) == 1 then
  return {0, redis.call('HVALS', members), {}}
end
local existing = redis.call('HVALS', members)
if limit > 0 and #existing >= limit then
  return {-1, {}, {}}
end
local seq = redis.call('INCR', seqKey)
redis.call('HSET', members, id, seq .. '|' .. value)
redis.call('SADD', socketRooms, room)
redis.call('SADD', rooms, room)
return {seq, existing, redis.call('HGETALL', media)}
`)

var leaveScript = redis.NewScript(`
local members, socketRooms, rooms, seqKey, media = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local id, room = ARGV[1], ARGV[2]
redis.call('SREM', socketRooms, room)
local mine = redis.call('HGET', members, id)
if not mine then
  return {0, {}, ''}
end
redis.call('HDEL', members, id)
redis.call('HDEL', media, id)
local rest = redis.call('HVALS', members)
if #rest == 0 then
  redis.call('DEL', members, seqKey, media)
  redis.call('SREM', rooms, room)
end
return {1, rest, mine}
`)

// mediaScript records a member's media-state (when one is given) and
// answers with the room's members, or nothing when id is not a member.
var mediaScript = redis.NewScript(`
local members, media = KEYS[1], KEYS[2]
local id, state = ARGV[1], ARGV[2]
if redis.call('HEXISTS', members, id) == 0 then
  return {0, {}}
end
if state ~= '' then
  redis.call('HSET', media, id, state)
end
return {1, redis.call('HVALS', members)}
`)

// sharedScript finds a room holding both sockets, among the rooms of the
// first. It names keys it computes (one per room of a), which a Redis
// Cluster would refuse; the gateway needs one Redis, not a Redis Cluster.
var sharedScript = redis.NewScript(`
local prefix, a, b = ARGV[1], ARGV[2], ARGV[3]
for _, room in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local pair = redis.call('HMGET', prefix .. 'room:' .. room .. ':members', a, b)
  if pair[1] and pair[2] then
    return {room, pair[1], pair[2]}
  end
end
return {}
`)

// Join adds m to room atomically and returns the members that were there
// before, in join order. Two sockets joining one room at once on two nodes
// each see the other exactly once: in the snapshot of the later one. A
// socket already in the room is not added again (joined is false). limit
// bounds the room's members (0: none).
func (c *Cluster) Join(ctx context.Context, room string, m Member, limit int) (existing []Member, joined bool, err error) {
	existing, _, joined, err = c.JoinWithStates(ctx, room, m, limit)
	return existing, joined, err
}

// JoinWithStates is Join that also returns the media-states the existing
// members announced in the room (socket id -> the state as SetMediaState
// stored it), read in the same atomic step.
func (c *Cluster) JoinWithStates(ctx context.Context, room string, m Member, limit int) (existing []Member, states map[string]string, joined bool, err error) {
	m.Node = c.cfg.NodeID
	if m.JoinedAt.IsZero() {
		m.JoinedAt = time.Now().UTC()
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, nil, false, fmt.Errorf("cluster: join: %w", err)
	}
	res, err := joinScript.Run(ctx, c.rdb,
		[]string{c.keys.members(room), c.keys.joinSeq(room), c.keys.socketRooms(m.ID), c.keys.rooms(), c.keys.media(room)},
		m.ID, string(b), room, limit).Slice()
	if err != nil {
		return nil, nil, false, fmt.Errorf("cluster: join %s: %w", room, err)
	}
	seq, _ := res[0].(int64)
	if seq < 0 {
		return nil, nil, false, ErrRoomFull
	}
	existing, err = decodeMembers(res[1])
	if err != nil {
		return nil, nil, false, err
	}
	if seq == 0 {
		// Already a member: the snapshot includes the socket itself.
		existing = without(existing, m.ID)
	}
	pairs, _ := res[2].([]any)
	states = make(map[string]string, len(pairs)/2)
	for i := 0; i+1 < len(pairs); i += 2 {
		k, _ := pairs[i].(string)
		v, _ := pairs[i+1].(string)
		states[k] = v
	}
	return existing, states, seq > 0, nil
}

// Leave takes id out of room atomically and returns the members left, in
// join order. left is false when id was not a member (a second Leave of
// the same socket, by its node and by a reaper, reports it once).
func (c *Cluster) Leave(ctx context.Context, room, id string) (remaining []Member, left bool, err error) {
	_, remaining, left, err = c.LeaveMember(ctx, room, id)
	return remaining, left, err
}

// LeaveMember is Leave that also returns the member that left.
func (c *Cluster) LeaveMember(ctx context.Context, room, id string) (gone Member, remaining []Member, left bool, err error) {
	res, err := leaveScript.Run(ctx, c.rdb,
		[]string{c.keys.members(room), c.keys.socketRooms(id), c.keys.rooms(), c.keys.joinSeq(room), c.keys.media(room)},
		id, room).Slice()
	if err != nil {
		return Member{}, nil, false, fmt.Errorf("cluster: leave %s: %w", room, err)
	}
	if n, _ := res[0].(int64); n == 0 {
		return Member{}, nil, false, nil
	}
	if remaining, err = decodeMembers(res[1]); err != nil {
		return Member{}, nil, false, err
	}
	me, err := decodeMembers([]any{res[2]})
	if err != nil || len(me) != 1 {
		return Member{}, nil, false, fmt.Errorf("cluster: leave %s: member record: %w", room, err)
	}
	return me[0], remaining, true, nil
}

// SetMediaState stores state (when not empty) as member id's latest
// media-state in room and returns the room's members; ok is false when id
// is not a member.
func (c *Cluster) SetMediaState(ctx context.Context, room, id, state string) (members []Member, ok bool, err error) {
	res, err := mediaScript.Run(ctx, c.rdb, []string{c.keys.members(room), c.keys.media(room)}, id, state).Slice()
	if err != nil {
		return nil, false, fmt.Errorf("cluster: media-state in %s: %w", room, err)
	}
	if n, _ := res[0].(int64); n == 0 {
		return nil, false, nil
	}
	members, err = decodeMembers(res[1])
	return members, err == nil, err
}

// SharedRoom finds a room holding both a and b, and the two members.
func (c *Cluster) SharedRoom(ctx context.Context, a, b string) (room string, ma, mb Member, ok bool, err error) {
	res, err := sharedScript.Run(ctx, c.rdb, []string{c.keys.socketRooms(a)}, c.keys.prefix, a, b).Slice()
	if err != nil {
		return "", Member{}, Member{}, false, fmt.Errorf("cluster: shared room of %s and %s: %w", a, b, err)
	}
	if len(res) != 3 {
		return "", Member{}, Member{}, false, nil
	}
	room, _ = res[0].(string)
	pair, err := decodeMembers(res[1:])
	if err != nil || len(pair) != 2 {
		return "", Member{}, Member{}, false, fmt.Errorf("cluster: shared room of %s and %s: %w", a, b, err)
	}
	// decodeMembers sorts by join order; put them back as asked.
	if pair[0].ID != a {
		pair[0], pair[1] = pair[1], pair[0]
	}
	return room, pair[0], pair[1], true, nil
}

// IsMember reports whether socket id is in room.
func (c *Cluster) IsMember(ctx context.Context, room, id string) (bool, error) {
	ok, err := c.rdb.HExists(ctx, c.keys.members(room), id).Result()
	if err != nil {
		return false, fmt.Errorf("cluster: member of %s: %w", room, err)
	}
	return ok, nil
}

// MediaStates returns the media-states stored in room.
func (c *Cluster) MediaStates(ctx context.Context, room string) (map[string]string, error) {
	m, err := c.rdb.HGetAll(ctx, c.keys.media(room)).Result()
	if err != nil {
		return nil, fmt.Errorf("cluster: media-states of %s: %w", room, err)
	}
	return m, nil
}

// NodeOf names the node socket id is connected to, or "" when none.
func (c *Cluster) NodeOf(ctx context.Context, id string) (string, error) {
	n, err := c.rdb.Get(ctx, c.keys.socketNode(id)).Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("cluster: node of %s: %w", id, err)
	}
	return n, nil
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
