package cluster

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// A lease names the one node that hosts something (a room's media) for a
// while. Its epoch counter lives three TTLs past the last claim or renewal,
// so a room nobody hosts any more leaves no key behind; a holder away for
// longer than that may take a free lease again, as after Redis restarted
// empty (nobody else hosts the thing then). Its value is "<node>|<epoch>"; every claim takes a new epoch, so
// a holder that was away (paused, partitioned) and comes back can tell its
// lease was taken, and anything it writes can be fenced by epoch.

// claimScript takes the lease when it is free, with the next epoch.
var claimScript = redis.NewScript(`
local lease, epochKey = KEYS[1], KEYS[2]
local node, ttl = ARGV[1], tonumber(ARGV[2])
local cur = redis.call('GET', lease)
if cur then
  return {0, cur}
end
local epoch = redis.call('INCR', epochKey)
redis.call('PEXPIRE', epochKey, 3 * ttl)
redis.call('SET', lease, node .. '|' .. epoch, 'PX', ttl)
return {epoch, node .. '|' .. epoch}
`)

// renewScript extends the lease while it is ours. A lease gone from Redis
// (Redis restarted empty) is taken again when nobody took it meanwhile and
// no newer epoch was handed out: the holder re-asserts its state.
var renewScript = redis.NewScript(`
local lease, epochKey = KEYS[1], KEYS[2]
local mine, ttl, epoch = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local cur = redis.call('GET', lease)
if cur == mine then
  redis.call('PEXPIRE', lease, ttl)
  redis.call('PEXPIRE', epochKey, 3 * ttl)
  return 1
end
if cur then
  return 0
end
local last = tonumber(redis.call('GET', epochKey) or '0')
if last > epoch then
  return 0
end
redis.call('SET', epochKey, epoch, 'PX', 3 * ttl)
redis.call('SET', lease, mine, 'PX', ttl)
return 1
`)

// releaseScript deletes the lease only while it is ours.
var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`)

// ErrLeaseHeld is returned by Claim when another node holds the lease.
var ErrLeaseHeld = errors.New("cluster: lease held by another node")

// Lease is a held lease, renewed in the background until Release or until
// it is lost.
type Lease struct {
	c     *Cluster
	name  string
	Epoch int64
	value string
	ttl   time.Duration

	lost     chan struct{}
	lostOnce sync.Once
	stop     context.CancelFunc
	done     chan struct{}
}

// Holder reads who holds a lease: node and epoch, or ok false when free.
func (c *Cluster) Holder(ctx context.Context, name string) (node string, epoch int64, ok bool, err error) {
	v, err := c.rdb.Get(ctx, c.keys.lease(name)).Result()
	if errors.Is(err, redis.Nil) {
		return "", 0, false, nil
	}
	if err != nil {
		return "", 0, false, fmt.Errorf("cluster: lease %s: %w", name, err)
	}
	node, epoch = splitLease(v)
	return node, epoch, true, nil
}

func splitLease(v string) (string, int64) {
	node, e, _ := strings.Cut(v, "|")
	epoch, _ := strconv.ParseInt(e, 10, 64)
	return node, epoch
}

// Claim takes the lease name for this node for ttl, and keeps renewing it
// every ttl/3. It fails with ErrLeaseHeld when another node has it.
func (c *Cluster) Claim(ctx context.Context, name string, ttl time.Duration) (*Lease, error) {
	res, err := claimScript.Run(ctx, c.rdb, []string{c.keys.lease(name), c.keys.leaseEpoch(name)},
		c.cfg.NodeID, ttl.Milliseconds()).Slice()
	if err != nil {
		return nil, fmt.Errorf("cluster: claim %s: %w", name, err)
	}
	epoch, _ := res[0].(int64)
	if epoch == 0 {
		holder, _ := res[1].(string)
		node, e := splitLease(holder)
		return nil, fmt.Errorf("%w: %s holds %s (epoch %d)", ErrLeaseHeld, node, name, e)
	}
	value, _ := res[1].(string)
	return c.hold(name, epoch, value, ttl), nil
}

// hold is a lease this node holds under value, renewed from now on.
func (c *Cluster) hold(name string, epoch int64, value string, ttl time.Duration) *Lease {
	rctx, stop := context.WithCancel(context.Background())
	l := &Lease{c: c, name: name, Epoch: epoch, value: value, ttl: ttl,
		lost: make(chan struct{}), stop: stop, done: make(chan struct{})}
	go l.renew(rctx)
	return l
}

// Lost is closed when the lease was found in another node's hands (or
// under a newer epoch): the holder must stop at once. A Redis that does
// not answer does not lose the lease: nobody else can claim it then either.
func (l *Lease) Lost() <-chan struct{} { return l.lost }

func (l *Lease) renew(ctx context.Context) {
	defer close(l.done)
	tick := time.NewTicker(l.ttl / 3)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		ok, err := renewScript.Run(ctx, l.c.rdb, []string{l.c.keys.lease(l.name), l.c.keys.leaseEpoch(l.name)},
			l.value, l.ttl.Milliseconds(), l.Epoch).Int()
		if err != nil {
			continue // Redis away: try again at the next tick
		}
		if ok == 0 {
			l.c.log.Warn("lease lost", "lease", l.name, "epoch", l.Epoch)
			l.lostOnce.Do(func() { close(l.lost) })
			return
		}
	}
}

// Release stops renewing and frees the lease if it is still ours.
func (l *Lease) Release(ctx context.Context) error {
	l.stop()
	<-l.done
	if err := releaseScript.Run(ctx, l.c.rdb, []string{l.c.keys.lease(l.name)}, l.value).Err(); err != nil {
		return fmt.Errorf("cluster: release %s: %w", l.name, err)
	}
	return nil
}
