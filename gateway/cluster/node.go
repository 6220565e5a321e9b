package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Departure is a socket taken out of a room by the reaper, because its node
// died.
type Departure struct {
	Room, Socket, Node string
	// Member is the socket's record in the room.
	Member Member
	// Remaining are the room's members after it left, in join order.
	Remaining []Member
}

// NodeHooks are what RunNode tells its caller.
type NodeHooks struct {
	// Reaped runs for every socket of a dead node taken out of a room,
	// once in the whole cluster (on the node that reaped it).
	Reaped func(Departure)
	// Reassert runs when this node's heartbeat finds that Redis forgot it
	// (Redis restarted empty): the node should write its sockets and rooms
	// again.
	Reassert func(ctx context.Context)
	// Evicted runs instead of Reassert when the node was declared dead
	// and reaped while it was away (paused, partitioned): its room mates
	// were told its sockets left, so writing them back silently would
	// split presence. The node should disconnect its sockets; their
	// clients reconnect and join again.
	Evicted func(ctx context.Context)
	// Health runs after every heartbeat with whether Redis answered.
	Health func(ok bool)
	// Load, when set, is this node's load, published with every
	// heartbeat for least-loaded placement (PublishLoad; negative:
	// withdrawn, the node takes no new rooms).
	Load func() int
}

// AddSocket records that socket id is connected to this node, so that the
// reaper can take it out of its rooms if the node dies.
func (c *Cluster) AddSocket(ctx context.Context, id string) error {
	pipe := c.rdb.TxPipeline()
	pipe.SAdd(ctx, c.keys.nodeSockets(c.cfg.NodeID), id)
	pipe.Set(ctx, c.keys.socketNode(id), c.cfg.NodeID, 0)
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("cluster: add socket: %w", err)
	}
	return nil
}

// RemoveSocket forgets socket id once it left all its rooms.
func (c *Cluster) RemoveSocket(ctx context.Context, id string) error {
	pipe := c.rdb.TxPipeline()
	pipe.SRem(ctx, c.keys.nodeSockets(c.cfg.NodeID), id)
	pipe.Del(ctx, c.keys.socketRooms(id), c.keys.socketNode(id))
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("cluster: remove socket: %w", err)
	}
	return nil
}

// LiveNodes lists the nodes whose heartbeat is current.
func (c *Cluster) LiveNodes(ctx context.Context) ([]string, error) {
	nodes, err := c.rdb.SMembers(ctx, c.keys.nodes()).Result()
	if err != nil {
		return nil, fmt.Errorf("cluster: nodes: %w", err)
	}
	var live []string
	for _, n := range nodes {
		if ok, err := c.rdb.Exists(ctx, c.keys.nodeAlive(n)).Result(); err == nil && ok == 1 {
			live = append(live, n)
		}
	}
	return live, nil
}

// RunNode heartbeats this node and reaps dead ones until ctx ends, then
// removes this node's heartbeat. reaped counts the sockets it reaped.
func (c *Cluster) RunNode(ctx context.Context, hooks NodeHooks, reaped *atomic.Uint64) {
	tick := time.NewTicker(c.cfg.Heartbeat)
	defer tick.Stop()
	known := false // this process has written its heartbeat before
	for {
		ok := c.heartbeat(ctx, &known, hooks)
		if hooks.Health != nil {
			hooks.Health(ok)
		}
		if ok && hooks.Load != nil {
			if err := c.PublishLoad(ctx, hooks.Load()); err != nil {
				c.log.Debug("load not published", "err", err)
			}
		}
		if ok {
			c.reap(ctx, hooks, reaped)
		}
		select {
		case <-ctx.Done():
			// A clean stop: the others need not wait for the TTL.
			stop, cancel := context.WithTimeout(context.Background(), time.Second)
			c.rdb.Del(stop, c.keys.nodeAlive(c.cfg.NodeID), c.keys.nodeLoad(c.cfg.NodeID))
			cancel()
			return
		case <-tick.C:
		}
	}
}

// heartbeat refreshes this node's key; when Redis no longer had it (but
// this process wrote it before), the node's state was lost and is
// re-asserted.
func (c *Cluster) heartbeat(ctx context.Context, known *bool, hooks NodeHooks) bool {
	prev, err := c.rdb.SetArgs(ctx, c.keys.nodeAlive(c.cfg.NodeID), c.incarnation,
		redis.SetArgs{TTL: c.cfg.NodeTTL, Get: true}).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return false
	}
	if err := c.rdb.SAdd(ctx, c.keys.nodes(), c.cfg.NodeID).Err(); err != nil {
		return false
	}
	lost := *known && prev != c.incarnation
	first := !*known
	*known = true
	switch {
	case first:
		// A new process with this id: an old one's eviction mark is moot.
		c.rdb.Del(ctx, c.keys.reaped(c.cfg.NodeID))
	case lost:
		evicted, err := c.rdb.Del(ctx, c.keys.reaped(c.cfg.NodeID)).Result()
		if err != nil {
			return false
		}
		if evicted == 1 {
			c.log.Warn("this node was declared dead and reaped while away; disconnecting its sockets")
			if hooks.Evicted != nil {
				hooks.Evicted(ctx)
			}
			break
		}
		c.log.Warn("redis forgot this node; re-asserting its state")
		if hooks.Reassert != nil {
			hooks.Reassert(ctx)
		}
	}
	return true
}

// reap takes the sockets of every dead node out of their rooms. One live
// node reaps a given dead node at a time (a short Redis lock), and Leave
// reports each departure once even if two reapers overlap.
func (c *Cluster) reap(ctx context.Context, hooks NodeHooks, reaped *atomic.Uint64) {
	nodes, err := c.rdb.SMembers(ctx, c.keys.nodes()).Result()
	if err != nil {
		return
	}
	for _, n := range nodes {
		if n == c.cfg.NodeID {
			continue
		}
		alive, err := c.rdb.Exists(ctx, c.keys.nodeAlive(n)).Result()
		if err != nil || alive == 1 {
			continue
		}
		got, err := c.rdb.SetNX(ctx, c.keys.reaping(n), c.cfg.NodeID, c.cfg.NodeTTL).Result()
		if err != nil || !got {
			continue
		}
		sockets, err := c.rdb.SMembers(ctx, c.keys.nodeSockets(n)).Result()
		if err != nil {
			continue
		}
		// Marked before its sockets go, so a node that was only away
		// learns, when it is back, that its rooms were told it left.
		if len(sockets) > 0 {
			c.rdb.Set(ctx, c.keys.reaped(n), c.cfg.NodeID, time.Hour)
		}
		for _, s := range sockets {
			rooms, err := c.RoomsOf(ctx, s)
			if err != nil {
				continue
			}
			for _, room := range rooms {
				gone, remaining, left, err := c.LeaveMember(ctx, room, s)
				if err != nil || !left {
					continue
				}
				reaped.Add(1)
				if hooks.Reaped != nil {
					hooks.Reaped(Departure{Room: room, Socket: s, Node: n, Member: gone, Remaining: remaining})
				}
			}
			c.rdb.Del(ctx, c.keys.socketRooms(s), c.keys.socketNode(s))
			c.rdb.SRem(ctx, c.keys.nodeSockets(n), s)
		}
		// Its inbox holds only events for sockets that are gone.
		c.rdb.Del(ctx, c.keys.inbox(n), c.keys.nodeSockets(n))
		c.rdb.SRem(ctx, c.keys.nodes(), n)
		c.log.Info("reaped dead node", "dead", n, "sockets", len(sockets))
	}
}
