package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Edge assignment: the bookkeeping of an SFU room that serves more clients
// than one node should (a per-node threshold). The room's origin is the
// holder of its media lease; each further node serving the room is an
// edge, under an edge lease placed like a media lease (least-loaded, in
// the chosen node's name, which adopts it). Each client is assigned the
// node that serves its media: the origin while it serves fewer than the
// threshold, else the fullest edge with room to spare (fewest inter-node
// links), else a new edge on the least-loaded live node that does not
// serve the room yet.
//
// The directory (package clusterrooms) calls it at each join and leave of
// an SFU room when cluster.max_room_peers_per_node is set. Keys (besides the edge leases):
// room:<room>:served, a hash from a serving node to its client count, and
// room:<room>:assign, a hash from a socket to its serving node. The origin
// is recorded as "@origin" (a node id has no "@"), whoever holds the media
// lease, so its clients follow a takeover. An edge is recorded as its
// lease's value "<node>|<epoch>": the clients of an edge that died stay
// apart from those of a later edge on the same node.

// originField stands for the room's origin in the assignment hashes.
const originField = "@origin"

// assignLua defines assign(sock): the choice described above, recorded in
// the served and assign hashes; it returns {field, placed, over}: placed is
// 1 when a new edge lease was set in field's node's name (the caller must
// tell that node to adopt it), over is 1 when every node was full and the
// origin takes the client past the threshold. Both scripts below start
// with it. Like placeScript it reads node and lease keys it computes: one
// Redis, not a Redis Cluster.
const assignLua = `
local served, assignKey, media, nodesKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local limit, ttl, prefix, room = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], ARGV[4]
local origin = '@origin'
local function edgeLease(n)
  return prefix .. 'lease:edge:' .. room .. ':' .. n
end
local function live(f)
  if f == origin then
    return true
  end
  local n = string.match(f, '^(.*)|')
  return n ~= nil and redis.call('GET', edgeLease(n)) == f
end
local function assign(sock)
  local function take(f)
    redis.call('HINCRBY', served, f, 1)
    redis.call('HSET', assignKey, sock, f)
  end
  if tonumber(redis.call('HGET', served, origin) or '0') < limit then
    take(origin)
    return {origin, 0, 0}
  end
  local flat = redis.call('HGETALL', served)
  local best, bestCount = nil, -1
  for i = 1, #flat, 2 do
    local f, c = flat[i], tonumber(flat[i + 1])
    if f ~= origin and c < limit and live(f) and (c > bestCount or (c == bestCount and f < best)) then
      best, bestCount = f, c
    end
  end
  if best then
    take(best)
    return {best, 0, 0}
  end
  local originNode = nil
  local m = redis.call('GET', media)
  if m then
    originNode = string.match(m, '^(.*)|')
  end
  local cand, candLoad = nil, nil
  for _, n in ipairs(redis.call('SMEMBERS', nodesKey)) do
    if n ~= originNode and redis.call('EXISTS', edgeLease(n)) == 0 and redis.call('EXISTS', prefix .. 'node:' .. n .. ':alive') == 1 then
      local l = tonumber(redis.call('GET', prefix .. 'node:' .. n .. ':load'))
      if l and l >= 0 and (cand == nil or l < candLoad or (l == candLoad and n < cand)) then
        cand, candLoad = n, l
      end
    end
  end
  if cand == nil then
    take(origin)
    return {origin, 0, 1}
  end
  redis.call('INCR', prefix .. 'node:' .. cand .. ':load')
  local lease = edgeLease(cand)
  local epoch = redis.call('INCR', lease .. ':epoch')
  redis.call('PEXPIRE', lease .. ':epoch', 3 * ttl)
  local value = cand .. '|' .. epoch
  redis.call('SET', lease, value, 'PX', ttl)
  take(value)
  return {value, 1, 0}
end
`

// assignScript assigns one socket (ARGV[5]) its serving node; an existing
// assignment is returned as is.
var assignScript = redis.NewScript(assignLua + `
local sock = ARGV[5]
local cur = redis.call('HGET', assignKey, sock)
if cur then
  return {cur, 0, 0}
end
return assign(sock)
`)

// reassignScript moves every socket whose serving node is gone (an edge
// whose lease lapsed or was placed again) to a live one, as a newcomer
// would be assigned, and rewrites the socket's member record (KEYS[5]) so
// the signaling pairs it with its new gateway peer. It returns a flat list
// {socket, field, placed, over, ...}. First it gives back their
// assignment to client members that have none, from their records' media:
// after Redis restarted empty the nodes wrote their memberships back, not
// the counts (a member whose edge is gone is then moved like any orphan).
var reassignScript = redis.NewScript(assignLua + `
local members = KEYS[5]
local assigned = {}
local flat = redis.call('HGETALL', assignKey)
for i = 1, #flat, 2 do
  assigned[flat[i]] = flat[i + 1]
end
for _, sock in ipairs(redis.call('HKEYS', members)) do
  if not assigned[sock] then
    local rec = redis.call('HGET', members, sock)
    local m = cjson.decode(string.sub(rec, string.find(rec, '|', 1, true) + 1))
    if m['role'] == 'client' then
      local f = origin
      if type(m['media']) == 'string' and m['media'] ~= '' then
        f = redis.call('GET', edgeLease(m['media'])) or (m['media'] .. '|0')
      end
      redis.call('HINCRBY', served, f, 1)
      redis.call('HSET', assignKey, sock, f)
      assigned[sock] = f
    end
  end
end
-- Each serving node's liveness is read once: a room's clients share a
-- few, and this runs every heartbeat. Sockets are taken in order, so two
-- runs over the same state move them the same way.
local socks = {}
for sock in pairs(assigned) do
  table.insert(socks, sock)
end
table.sort(socks)
local alive = {}
local out = {}
for _, sock in ipairs(socks) do
  local f = assigned[sock]
  if alive[f] == nil then
    alive[f] = live(f)
  end
  if not alive[f] then
    redis.call('HDEL', assignKey, sock)
    if redis.call('HINCRBY', served, f, -1) <= 0 then
      redis.call('HDEL', served, f)
    end
    local rec = redis.call('HGET', members, sock)
    if rec then
      local res = assign(sock)
      local sep = string.find(rec, '|', 1, true)
      local m = cjson.decode(string.sub(rec, sep + 1))
      if res[1] == origin then
        m['media'] = nil
      else
        m['media'] = string.match(res[1], '^(.*)|')
      end
      redis.call('HSET', members, sock, string.sub(rec, 1, sep) .. cjson.encode(m))
      table.insert(out, sock)
      table.insert(out, res[1])
      table.insert(out, res[2])
      table.insert(out, res[3])
    end
  end
end
return out
`)

// unassignScript takes a socket's assignment back: {field, clients left
// there}, or {"", -1} when it had none. A serving node left with no client
// is dropped from the served hash; the last assignment deletes both
// hashes.
var unassignScript = redis.NewScript(`
local served, assign = KEYS[1], KEYS[2]
local cur = redis.call('HGET', assign, ARGV[1])
if not cur then
  return {'', -1}
end
redis.call('HDEL', assign, ARGV[1])
local left = redis.call('HINCRBY', served, cur, -1)
if left <= 0 then
  redis.call('HDEL', served, cur)
end
if redis.call('HLEN', assign) == 0 then
  redis.call('DEL', served, assign)
end
return {cur, left}
`)

// EdgeLeaseName is the lease naming the node that hosts an edge of room.
func EdgeLeaseName(room, node string) string { return "edge:" + room + ":" + node }

// EdgeRequest asks for a socket's serving node in an SFU room.
type EdgeRequest struct {
	Room, Socket string
	// MediaLease is the room's media lease name (its holder is the
	// origin, which never becomes an edge of its own room).
	MediaLease string
	// Limit is the most clients one node serves in the room (at least 1).
	Limit int
	// TTL is a new edge lease's time to live (as a media lease's).
	TTL time.Duration
}

// Assignment is the node serving a socket's media in a room.
type Assignment struct {
	// Node is the edge's node; empty for the origin.
	Node string
	// Lease is the edge lease's value ("<node>|<epoch>"); empty for the
	// origin. With Placed, the caller must have Node Adopt it before its
	// TTL runs out, or it lapses.
	Lease  string
	Placed bool
	// Over is set when every node that could serve was full: the origin
	// serves the socket past the limit.
	Over bool
}

// AssignEdge assigns a socket its serving node (an existing assignment is
// returned as is). See assignScript for the choice.
func (c *Cluster) AssignEdge(ctx context.Context, req EdgeRequest) (Assignment, error) {
	if req.Limit < 1 || req.TTL <= 0 {
		return Assignment{}, fmt.Errorf("cluster: assign edge in %s: limit %d and ttl %v must be positive", req.Room, req.Limit, req.TTL)
	}
	res, err := assignScript.Run(ctx, c.rdb,
		[]string{c.keys.served(req.Room), c.keys.assign(req.Room), c.keys.lease(req.MediaLease), c.keys.nodes()},
		req.Limit, req.TTL.Milliseconds(), c.keys.prefix, req.Room, req.Socket).Slice()
	if err != nil {
		return Assignment{}, fmt.Errorf("cluster: assign edge in %s: %w", req.Room, err)
	}
	return decodeAssignment(res), nil
}

// decodeAssignment reads a script's {field, placed, over}.
func decodeAssignment(res []any) Assignment {
	field, _ := res[0].(string)
	placed, _ := res[1].(int64)
	over, _ := res[2].(int64)
	a := Assignment{Placed: placed == 1, Over: over == 1}
	if field != originField {
		a.Node, _ = splitLease(field)
		a.Lease = field
	}
	return a
}

// Moved is a socket ReassignOrphans moved to a new serving node.
type Moved struct {
	Socket string
	Assignment
}

// ReassignOrphans moves the sockets of req.Room whose edge is gone (its
// node died or left, its lease lapsed) to live serving nodes, as if they
// joined now (req.Socket is unused), and rewrites their member records'
// media. The caller tells the nodes of placed edges to adopt them, and
// the serving gateway peers to offer to the moved sockets. Atomic: two
// nodes running it at once move each socket once.
func (c *Cluster) ReassignOrphans(ctx context.Context, req EdgeRequest) ([]Moved, error) {
	if req.Limit < 1 || req.TTL <= 0 {
		return nil, fmt.Errorf("cluster: reassign in %s: limit %d and ttl %v must be positive", req.Room, req.Limit, req.TTL)
	}
	res, err := reassignScript.Run(ctx, c.rdb,
		[]string{c.keys.served(req.Room), c.keys.assign(req.Room), c.keys.lease(req.MediaLease), c.keys.nodes(), c.keys.members(req.Room)},
		req.Limit, req.TTL.Milliseconds(), c.keys.prefix, req.Room).Slice()
	if err != nil {
		return nil, fmt.Errorf("cluster: reassign in %s: %w", req.Room, err)
	}
	out := make([]Moved, 0, len(res)/4)
	for i := 0; i+3 < len(res); i += 4 {
		sock, _ := res[i].(string)
		out = append(out, Moved{Socket: sock, Assignment: decodeAssignment(res[i+1 : i+4])})
	}
	return out, nil
}

// UnassignEdge takes a socket's assignment back (it left the room) and
// returns it with the clients its node still serves there; ok is false
// when the socket had none.
func (c *Cluster) UnassignEdge(ctx context.Context, room, socket string) (a Assignment, left int, ok bool, err error) {
	res, err := unassignScript.Run(ctx, c.rdb, []string{c.keys.served(room), c.keys.assign(room)}, socket).Slice()
	if err != nil {
		return Assignment{}, 0, false, fmt.Errorf("cluster: unassign edge in %s: %w", room, err)
	}
	field, _ := res[0].(string)
	n, _ := res[1].(int64)
	if n < 0 {
		return Assignment{}, 0, false, nil
	}
	if field != originField {
		a.Node, _ = splitLease(field)
		a.Lease = field
	}
	return a, int(n), true, nil
}

// ServedBy is one serving node of a room in RoomTree.
type ServedBy struct {
	// Node is the edge's node, empty for the origin; Lease the edge
	// lease's value the clients were assigned under.
	Node, Lease string
	Clients     int
	// Live is false for an edge whose lease is gone or was placed again
	// (its node died or left): its clients are waiting to be moved.
	Live bool
}

// RoomTree reads who serves a room's clients: the origin first, then the
// edges by lease value.
func (c *Cluster) RoomTree(ctx context.Context, room string) ([]ServedBy, error) {
	m, err := c.rdb.HGetAll(ctx, c.keys.served(room)).Result()
	if err != nil {
		return nil, fmt.Errorf("cluster: room tree of %s: %w", room, err)
	}
	var out []ServedBy
	if v, ok := m[originField]; ok {
		n, _ := strconv.Atoi(v)
		out = append(out, ServedBy{Clients: n, Live: true})
	}
	edges := make([]string, 0, len(m))
	for f := range m {
		if f != originField {
			edges = append(edges, f)
		}
	}
	slices.Sort(edges)
	for _, f := range edges {
		node, _ := splitLease(f)
		n, _ := strconv.Atoi(m[f])
		cur, err := c.rdb.Get(ctx, c.keys.lease(EdgeLeaseName(room, node))).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return nil, fmt.Errorf("cluster: room tree of %s: %w", room, err)
		}
		out = append(out, ServedBy{Node: node, Lease: f, Clients: n, Live: cur == f})
	}
	return out, nil
}
