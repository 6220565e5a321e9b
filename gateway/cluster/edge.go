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
// Only the bookkeeping exists: nothing in the gateway calls it yet, and
// the configuration refuses a threshold. Keys (besides the edge leases):
// room:<room>:served, a hash from a serving node to its client count, and
// room:<room>:assign, a hash from a socket to its serving node. The origin
// is recorded as "@origin" (a node id has no "@"), whoever holds the media
// lease, so its clients follow a takeover. An edge is recorded as its
// lease's value "<node>|<epoch>": the clients of an edge that died stay
// apart from those of a later edge on the same node.

// originField stands for the room's origin in the assignment hashes.
const originField = "@origin"

// assignScript assigns a socket its serving node (see above) and returns
// {field, placed, over}: placed is 1 when a new edge lease was set in
// field's node's name (the caller must tell that node to adopt it), over
// is 1 when every node was full and the origin takes the client past the
// threshold. Like placeScript it reads node and lease keys it computes:
// one Redis, not a Redis Cluster.
var assignScript = redis.NewScript(`
local served, assign, media, nodesKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local sock, limit, ttl, prefix, room = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4], ARGV[5]
local origin = '@origin'
local cur = redis.call('HGET', assign, sock)
if cur then
  return {cur, 0, 0}
end
local function take(f)
  redis.call('HINCRBY', served, f, 1)
  redis.call('HSET', assign, sock, f)
end
local function edgeLease(n)
  return prefix .. 'lease:edge:' .. room .. ':' .. n
end
if tonumber(redis.call('HGET', served, origin) or '0') < limit then
  take(origin)
  return {origin, 0, 0}
end
local flat = redis.call('HGETALL', served)
local best, bestCount = nil, -1
for i = 1, #flat, 2 do
  local f, c = flat[i], tonumber(flat[i + 1])
  if f ~= origin then
    local n = string.match(f, '^(.*)|')
    if n and redis.call('GET', edgeLease(n)) == f and c < limit and (c > bestCount or (c == bestCount and f < best)) then
      best, bestCount = f, c
    end
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
    if l and (cand == nil or l < candLoad or (l == candLoad and n < cand)) then
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
		req.Socket, req.Limit, req.TTL.Milliseconds(), c.keys.prefix, req.Room).Slice()
	if err != nil {
		return Assignment{}, fmt.Errorf("cluster: assign edge in %s: %w", req.Room, err)
	}
	field, _ := res[0].(string)
	placed, _ := res[1].(int64)
	over, _ := res[2].(int64)
	a := Assignment{Placed: placed == 1, Over: over == 1}
	if field != originField {
		a.Node, _ = splitLease(field)
		a.Lease = field
	}
	return a, nil
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
