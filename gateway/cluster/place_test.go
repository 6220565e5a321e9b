package cluster_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/rtcio-gateway/rtcio-gateway/gateway/cluster"
	"github.com/rtcio-gateway/rtcio-gateway/internal/testenv"
)

// loadedNode is a node heartbeating with a load the test sets.
type loadedNode struct {
	c      *cluster.Cluster
	id     string
	load   atomic.Int64
	cancel context.CancelFunc
	done   chan struct{}
}

func runLoaded(t *testing.T, addr, id string) *loadedNode {
	t.Helper()
	n := &loadedNode{c: node(t, addr, id), id: id, done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	var reaped atomic.Uint64
	go func() {
		defer close(n.done)
		n.c.RunNode(ctx, cluster.NodeHooks{Load: func() int { return int(n.load.Load()) }}, &reaped)
	}()
	t.Cleanup(n.stop)
	return n
}

func (n *loadedNode) stop() {
	n.cancel()
	<-n.done
}

// waitLoads sets the nodes' loads and waits until Redis shows them (a
// negative load: no key).
func waitLoads(t *testing.T, rdb *redis.Client, nodes []*loadedNode, loads ...int) {
	t.Helper()
	for i, n := range nodes {
		n.load.Store(int64(loads[i]))
	}
	deadline := time.Now().Add(waitFor)
	for i := 0; i < len(nodes); {
		v, err := rdb.Get(context.Background(), "rtcio:node:"+nodes[i].id+":load").Result()
		want := strconv.Itoa(loads[i])
		if (loads[i] < 0 && errors.Is(err, redis.Nil)) || (err == nil && v == want) {
			i++
			continue
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %s: load %q (%v), want %s", nodes[i].id, v, err, want)
		}
		time.Sleep(10 * time.Millisecond) // the heartbeat has no event to wait on
	}
}

// TestPlaceLeastLoaded: Place takes a free lease in the name of the live
// node with the least published load (a tie goes to the caller), tells
// nothing to a node that published none or withdrew, and falls back to the
// caller; only the chosen node can adopt the lease, and only while it
// still carries the placed value.
func TestPlaceLeastLoaded(t *testing.T) {
	addr := testenv.StartRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	ctx := context.Background()
	const ttl = 300 * time.Millisecond

	// No node publishes a load: the caller is the fallback.
	solo := node(t, addr, "solo")
	p, err := solo.Place(ctx, "media:r0", ttl)
	if err != nil || p.Node != "solo" || p.Lease == nil || p.Held {
		t.Fatalf("fallback: %+v, %v", p, err)
	}
	var held sync.WaitGroup
	release := func(l *cluster.Lease) {
		held.Add(1)
		defer held.Done()
		if err := l.Release(ctx); err != nil {
			t.Error(err)
		}
	}
	release(p.Lease)

	nodes := []*loadedNode{runLoaded(t, addr, "n1"), runLoaded(t, addr, "n2"), runLoaded(t, addr, "n3")}
	n1, n2, n3 := nodes[0], nodes[1], nodes[2]
	waitLoads(t, rdb, nodes, 5, 2, 7)
	p, err = n1.c.Place(ctx, "media:r1", ttl)
	if err != nil || p.Node != "n2" || p.Lease != nil || p.Held {
		t.Fatalf("least loaded: %+v, %v; want placed for n2", p, err)
	}
	if again, err := n3.c.Place(ctx, "media:r1", ttl); err != nil || !again.Held || again.Node != "n2" {
		t.Fatalf("placing a held lease: %+v, %v", again, err)
	}
	if _, err := n3.c.Adopt(ctx, "media:r1", p.Value, ttl); !errors.Is(err, cluster.ErrLeaseHeld) {
		t.Fatalf("n3 adopted n2's lease: %v", err)
	}
	l, err := n2.c.Adopt(ctx, "media:r1", p.Value, ttl)
	if err != nil {
		t.Fatal(err)
	}
	// Renewed by its adopter past its first TTL.
	deadline := time.Now().Add(3 * ttl)
	for time.Now().Before(deadline) {
		if h, _, ok, _ := n1.c.Holder(ctx, "media:r1"); !ok || h != "n2" {
			t.Fatalf("adopted lease held by %q (%v)", h, ok)
		}
		time.Sleep(ttl / 4) // sampling the lease over time
	}
	release(l)

	// A tie goes to the caller.
	waitLoads(t, rdb, nodes, 1, 1, 1)
	if p, err := n3.c.Place(ctx, "media:r2", ttl); err != nil || p.Node != "n3" || p.Lease == nil {
		t.Fatalf("tie: %+v, %v; want n3", p, err)
	} else {
		release(p.Lease)
	}

	// A withdrawn node (draining) is never chosen.
	waitLoads(t, rdb, nodes, 4, -1, 6)
	if p, err := n3.c.Place(ctx, "media:r3", ttl); err != nil || p.Node != "n1" {
		t.Fatalf("withdrawn n2: %+v, %v; want n1", p, err)
	}

	// A node that stopped heartbeating is never chosen.
	waitLoads(t, rdb, nodes, 0, 9, 6)
	n1.stop()
	p, err = n2.c.Place(ctx, "media:r4", ttl)
	if err != nil || p.Node != "n3" {
		t.Fatalf("n1 stopped: %+v, %v; want n3", p, err)
	}

	// Not adopted in time: the lease lapses, is taken again, and the old
	// placement can no longer be adopted.
	stale := p.Value
	for {
		if _, _, ok, _ := n2.c.Holder(ctx, "media:r4"); !ok {
			break
		}
		time.Sleep(20 * time.Millisecond) // waiting for a TTL: nothing to wait on
	}
	l, err = n2.c.Claim(ctx, "media:r4", ttl)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n3.c.Adopt(ctx, "media:r4", stale, ttl); !errors.Is(err, cluster.ErrLeaseHeld) {
		t.Fatalf("a lapsed placement was adopted: %v", err)
	}
	release(l)
	held.Wait()
}
