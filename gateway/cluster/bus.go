package cluster

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Envelope is one event for sockets on another node.
type Envelope struct {
	// From and Incarnation identify the sending process; Seq numbers its
	// envelopes to this node from 1, in the order they were sent.
	From, Incarnation string
	Seq               uint64
	Kind              string
	Payload           []byte
	Sent              time.Time
}

// BusStats counts what the bus did.
type BusStats struct {
	Sent, Received, Duplicates, Gaps, Dropped, Retries uint64
	// LagMax is the longest time an envelope took from Send to delivery
	// since the last Stats call, in microseconds.
	LagMaxMicros uint64
}

// inboxIdleTTL, in node TTLs, is how long an inbox nobody writes to
// lives.
const inboxIdleTTL = 10

// ErrOutboxFull is returned by Send when too many envelopes wait for one
// node (Redis is slow or away); the envelope is dropped and counted.
var ErrOutboxFull = errors.New("cluster: outbox full")

// Bus carries envelopes between nodes: each node reads its own inbox, a
// Redis Stream, from where it left off, so a dropped connection loses
// nothing; each sender retries until Redis took an envelope, and the
// receiver drops what it already had by sequence number, so nothing is
// delivered twice. Envelopes from one node to another arrive in the order
// Send was called.
type Bus struct {
	c       *Cluster
	ctx     context.Context
	deliver func(Envelope)
	wg      sync.WaitGroup

	mu       sync.Mutex
	outboxes map[string]*outbox
	ready    chan struct{}

	sent, received, duplicates, gaps, dropped, retries, lagMax atomic.Uint64
}

type outbox struct {
	node string
	ch   chan Envelope
	seq  uint64
}

// NewBus starts this node's inbox reader; deliver runs on the reader's
// goroutine for every envelope, in order, and must not block for long.
// The bus stops with ctx; Wait waits for its goroutines.
func (c *Cluster) NewBus(ctx context.Context, deliver func(Envelope)) *Bus {
	b := &Bus{c: c, ctx: ctx, deliver: deliver, outboxes: make(map[string]*outbox), ready: make(chan struct{})}
	b.wg.Add(1)
	go b.readInbox()
	return b
}

// Ready is closed once the inbox reader knows where to start: envelopes
// sent to this node from then on are delivered.
func (b *Bus) Ready() <-chan struct{} { return b.ready }

// Wait waits for the bus's goroutines after its context ended.
func (b *Bus) Wait() { b.wg.Wait() }

// Send queues an envelope for node. It does not wait for Redis.
func (b *Bus) Send(node, kind string, payload []byte) error {
	b.mu.Lock()
	ob := b.outboxes[node]
	if ob == nil {
		ob = &outbox{node: node, ch: make(chan Envelope, b.c.cfg.OutboxSize)}
		b.outboxes[node] = ob
		b.wg.Add(1)
		go b.drain(ob)
	}
	b.mu.Unlock()
	select {
	case ob.ch <- Envelope{Kind: kind, Payload: payload, Sent: time.Now()}:
		return nil
	default:
		b.dropped.Add(1)
		return fmt.Errorf("%w: to node %s", ErrOutboxFull, node)
	}
}

// drain writes one node's envelopes to its inbox in order. An envelope is
// retried with its sequence number until Redis takes it: if a write went
// through but its answer was lost, the copy is dropped by the receiver.
// When the bus stops, what is still queued is flushed (see flush),
// starting with the envelope whose write the stop interrupted.
func (b *Bus) drain(ob *outbox) {
	defer b.wg.Done()
	for {
		select {
		case <-b.ctx.Done():
			b.flush(ob, nil)
			return
		case env := <-ob.ch:
			ob.seq++
			env.Seq = ob.seq
			if !b.write(b.ctx, ob, env) {
				b.flush(ob, &env)
				return
			}
		}
	}
}

// flush writes the envelopes still queued for a node once the bus stopped
// (pending first: its write was cut short, and may have gone through, in
// which case the receiver drops the copy), within one heartbeat: a
// draining node's last events are its sockets' departures, and the room
// mates on other nodes must get them rather than wait for the reaper.
// What cannot be written in time is dropped and counted.
func (b *Bus) flush(ob *outbox, pending *Envelope) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(b.ctx), b.c.cfg.Heartbeat)
	defer cancel()
	if pending != nil && !b.write(ctx, ob, *pending) {
		b.dropped.Add(uint64(1 + len(ob.ch)))
		return
	}
	for {
		select {
		case env := <-ob.ch:
			ob.seq++
			env.Seq = ob.seq
			if !b.write(ctx, ob, env) {
				b.dropped.Add(uint64(1 + len(ob.ch)))
				return
			}
		default:
			return
		}
	}
}

// write writes one numbered envelope to the node's inbox, retrying until
// Redis takes it or ctx ends (false).
func (b *Bus) write(ctx context.Context, ob *outbox, env Envelope) bool {
	backoff := 20 * time.Millisecond
	for {
		// The inbox expires when nobody wrote to it for a while: the
		// inbox of a node that died is gone then, even if an envelope
		// was still on its way when the reaper deleted it. A live node
		// reads continuously, so what expires was long read.
		pipe := b.c.rdb.TxPipeline()
		inbox := b.c.keys.inbox(ob.node)
		pipe.XAdd(ctx, &redis.XAddArgs{
			Stream: inbox,
			MaxLen: int64(b.c.cfg.InboxMaxLen),
			Approx: true,
			Values: []any{
				"f", b.c.cfg.NodeID, "i", b.c.incarnation, "s", env.Seq,
				"k", env.Kind, "p", env.Payload, "t", env.Sent.UnixMicro(),
			},
		})
		pipe.PExpire(ctx, inbox, inboxIdleTTL*b.c.cfg.NodeTTL)
		if _, err := pipe.Exec(ctx); err == nil {
			b.sent.Add(1)
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		b.retries.Add(1)
		select {
		case <-ctx.Done():
			return false
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

// readInbox reads this node's inbox from where it stood when the node
// started, and after any error from the last entry it read.
func (b *Bus) readInbox() {
	defer b.wg.Done()
	stream := b.c.keys.inbox(b.c.cfg.NodeID)
	last := ""
	type sender struct {
		incarnation string
		seq         uint64
	}
	senders := make(map[string]*sender)
	backoff := 20 * time.Millisecond
	failing := false
	fail := func(err error) {
		if !failing && b.ctx.Err() == nil {
			// Once per outage: the reader retries quietly until it reads.
			b.c.log.Warn("inbox read failed; retrying from the last entry read", "error", err)
		}
		failing = true
		b.pause(&backoff)
	}
	for b.ctx.Err() == nil {
		if last == "" {
			// Start after what is there now: older entries were for an
			// earlier process with this node id, whose sockets are gone.
			msgs, err := b.c.rdb.XRevRangeN(b.ctx, stream, "+", "-", 1).Result()
			if err != nil {
				fail(err)
				continue
			}
			last = "0-0"
			if len(msgs) == 1 {
				last = msgs[0].ID
			}
			close(b.ready)
		}
		res, err := b.c.rdb.XRead(b.ctx, &redis.XReadArgs{Streams: []string{stream, last}, Count: 512, Block: time.Second}).Result()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			fail(err)
			continue
		}
		if failing {
			b.c.log.Info("inbox reads again", "from", last)
		}
		failing, backoff = false, 20*time.Millisecond
		for _, s := range res {
			for _, msg := range s.Messages {
				last = msg.ID
				env, ok := parseEnvelope(msg.Values)
				if !ok {
					continue
				}
				st := senders[env.From]
				if st == nil || st.incarnation != env.Incarnation {
					// A new sending process numbers from 1 again.
					st = &sender{incarnation: env.Incarnation}
					senders[env.From] = st
				}
				switch {
				case env.Seq <= st.seq:
					b.duplicates.Add(1)
					continue
				case env.Seq > st.seq+1:
					b.gaps.Add(env.Seq - st.seq - 1)
				}
				st.seq = env.Seq
				b.received.Add(1)
				if lag := time.Since(env.Sent).Microseconds(); lag > 0 {
					for {
						cur := b.lagMax.Load()
						if uint64(lag) <= cur || b.lagMax.CompareAndSwap(cur, uint64(lag)) {
							break
						}
					}
				}
				b.deliver(env)
			}
		}
	}
}

func (b *Bus) pause(backoff *time.Duration) {
	select {
	case <-b.ctx.Done():
	case <-time.After(*backoff):
	}
	*backoff = min(2**backoff, time.Second)
}

func parseEnvelope(v map[string]any) (Envelope, bool) {
	str := func(k string) string { s, _ := v[k].(string); return s }
	seq, err := strconv.ParseUint(str("s"), 10, 64)
	if err != nil || str("f") == "" {
		return Envelope{}, false
	}
	sent, _ := strconv.ParseInt(str("t"), 10, 64)
	return Envelope{From: str("f"), Incarnation: str("i"), Seq: seq, Kind: str("k"),
		Payload: []byte(str("p")), Sent: time.UnixMicro(sent)}, true
}

// Stats returns the bus's counters and resets LagMaxMicros.
func (b *Bus) Stats() BusStats {
	return BusStats{
		Sent: b.sent.Load(), Received: b.received.Load(), Duplicates: b.duplicates.Load(),
		Gaps: b.gaps.Load(), Dropped: b.dropped.Load(), Retries: b.retries.Load(),
		LagMaxMicros: b.lagMax.Swap(0),
	}
}
