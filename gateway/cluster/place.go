package cluster

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Least-loaded placement. Every node that takes part publishes its load
// with its heartbeat (node:<node>:load, a number that expires after two
// heartbeats, so a node that stopped heartbeating stops being a candidate
// well before its leases run out). Placing a lease picks, in one script,
// the live node with the least load and takes the lease in its name; it
// adds one to that node's load at once, so placements in a burst spread
// before the next heartbeats correct the figures. The chosen node learns
// it holds the lease from the caller (through its inbox) and adopts it
// (Adopt); until then nobody renews it, so a node that never adopts (it
// died meanwhile) lets it expire, and the lease is placed again.

// placeScript takes a free lease in the name of the least-loaded live
// node: among the nodes with both a heartbeat and a published load, the
// smallest load wins; a tie goes to the calling node, then to the first
// node id in byte order. No candidate: the calling node (the fallback).
var placeScript = redis.NewScript(`
local lease, epochKey, nodesKey = KEYS[1], KEYS[2], KEYS[3]
local self, ttl, prefix = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local cur = redis.call('GET', lease)
if cur then
  return {0, cur}
end
local best, bestLoad = nil, nil
for _, n in ipairs(redis.call('SMEMBERS', nodesKey)) do
  if redis.call('EXISTS', prefix .. 'node:' .. n .. ':alive') == 1 then
    local l = tonumber(redis.call('GET', prefix .. 'node:' .. n .. ':load'))
    if l then
      if best == nil or l < bestLoad or (l == bestLoad and best ~= self and (n == self or n < best)) then
        best, bestLoad = n, l
      end
    end
  end
end
if best == nil then
  best = self
else
  redis.call('INCR', prefix .. 'node:' .. best .. ':load')
end
local epoch = redis.call('INCR', epochKey)
redis.call('PEXPIRE', epochKey, 3 * ttl)
redis.call('SET', lease, best .. '|' .. epoch, 'PX', ttl)
return {epoch, best .. '|' .. epoch}
`)

// Placed is the outcome of Place: the lease was free and is now held in
// Node's name (Lease is set when Node is this node); or it was already
// held (Held true, Node its holder).
type Placed struct {
	Node  string
	Value string // the lease's value, "<node>|<epoch>", for Adopt
	Held  bool
	Lease *Lease
}

// Place takes lease name, when it is free, in the name of the least-loaded
// live node (see placeScript). When that is this node, the lease is
// renewed from now on (Placed.Lease); another node must be told to Adopt
// Placed.Value before ttl runs out, or the lease lapses.
func (c *Cluster) Place(ctx context.Context, name string, ttl time.Duration) (Placed, error) {
	res, err := placeScript.Run(ctx, c.rdb, []string{c.keys.lease(name), c.keys.leaseEpoch(name), c.keys.nodes()},
		c.cfg.NodeID, ttl.Milliseconds(), c.keys.prefix).Slice()
	if err != nil {
		return Placed{}, fmt.Errorf("cluster: place %s: %w", name, err)
	}
	epoch, _ := res[0].(int64)
	value, _ := res[1].(string)
	node, e := splitLease(value)
	if epoch == 0 {
		return Placed{Node: node, Value: value, Held: true}, nil
	}
	p := Placed{Node: node, Value: value}
	if node == c.cfg.NodeID {
		p.Lease = c.hold(name, e, value, ttl)
	}
	return p, nil
}

// Adopt takes over the renewal of lease name, placed in this node's name
// by another node (Place) with value. It fails with ErrLeaseHeld when the
// lease is no longer that value (it lapsed and was placed again).
func (c *Cluster) Adopt(ctx context.Context, name, value string, ttl time.Duration) (*Lease, error) {
	node, epoch := splitLease(value)
	if node != c.cfg.NodeID {
		return nil, fmt.Errorf("%w: placed for %s, not this node", ErrLeaseHeld, node)
	}
	ok, err := renewScript.Run(ctx, c.rdb, []string{c.keys.lease(name), c.keys.leaseEpoch(name)},
		value, ttl.Milliseconds(), epoch).Int()
	if err != nil {
		return nil, fmt.Errorf("cluster: adopt %s: %w", name, err)
	}
	if ok == 0 {
		return nil, fmt.Errorf("%w: %s was placed again", ErrLeaseHeld, name)
	}
	return c.hold(name, epoch, value, ttl), nil
}

// PublishLoad writes this node's load for least-loaded placement; it
// expires after two heartbeats. A negative load withdraws the node (it is
// draining): it is no longer chosen.
func (c *Cluster) PublishLoad(ctx context.Context, load int) error {
	key := c.keys.nodeLoad(c.cfg.NodeID)
	var err error
	if load < 0 {
		err = c.rdb.Del(ctx, key).Err()
	} else {
		err = c.rdb.Set(ctx, key, load, 2*c.cfg.Heartbeat).Err()
	}
	if err != nil {
		return fmt.Errorf("cluster: publish load: %w", err)
	}
	return nil
}
