package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/rtcio-gateway/rtcio-gateway/gateway/cluster"
	"github.com/rtcio-gateway/rtcio-gateway/internal/testenv"
)

func TestMain(m *testing.M) { testenv.VerifyTestMain(m) }

const waitFor = 20 * time.Second

// node opens a cluster handle for a node on redis at addr.
func node(t *testing.T, addr, id string, tune ...func(*cluster.Config)) *cluster.Cluster {
	t.Helper()
	cfg := cluster.Config{URL: "redis://" + addr + "/0", NodeID: id, Heartbeat: 50 * time.Millisecond, NodeTTL: 300 * time.Millisecond}
	for _, f := range tune {
		f(&cfg)
	}
	c, err := cluster.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// TestJoinIsAtomicAcrossNodes: 30 sockets on 3 nodes join one room at the
// same moment, 20 times over. Each pair of sockets sees each other exactly
// once (the later joiner finds the earlier one in its snapshot): 435
// sightings a round. Each leave is reported once, with the members left.
func TestJoinIsAtomicAcrossNodes(t *testing.T) {
	addr := testenv.StartRedis(t)
	nodes := []*cluster.Cluster{node(t, addr, "n1"), node(t, addr, "n2"), node(t, addr, "n3")}
	ctx := context.Background()
	for round := range 20 {
		room := fmt.Sprintf("round-%d", round)
		var mu sync.Mutex
		saw := make(map[[2]string]int)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range 30 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				id := fmt.Sprintf("s%02d", i)
				<-start
				existing, joined, err := nodes[i%3].Join(ctx, room, cluster.Member{ID: id, Name: id, Role: "client"}, 0)
				if err != nil || !joined {
					t.Errorf("join %s: %v %v", id, joined, err)
					return
				}
				mu.Lock()
				for _, m := range existing {
					pair := [2]string{min(id, m.ID), max(id, m.ID)}
					saw[pair]++
				}
				mu.Unlock()
			}()
		}
		close(start)
		wg.Wait()
		total := 0
		for pair, n := range saw {
			if n != 1 {
				t.Errorf("round %d: %v saw each other %d times", round, pair, n)
			}
			total += n
		}
		if total != 435 {
			t.Fatalf("round %d: %d sightings, want 435", round, total)
		}
		members, err := nodes[0].Members(ctx, room)
		if err != nil || len(members) != 30 {
			t.Fatalf("round %d: %d members (%v)", round, len(members), err)
		}
		for i := 1; i < len(members); i++ {
			if members[i].Seq <= members[i-1].Seq {
				t.Fatalf("members not in join order: %+v", members)
			}
		}
		for i, m := range members {
			remaining, left, err := nodes[i%3].Leave(ctx, room, m.ID)
			if err != nil || !left || len(remaining) != 29-i {
				t.Fatalf("leave %s: left %v, %d remaining, %v", m.ID, left, len(remaining), err)
			}
			if _, again, _ := nodes[(i+1)%3].Leave(ctx, room, m.ID); again {
				t.Fatalf("leave %s reported twice", m.ID)
			}
		}
	}
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	if keys, _ := rdb.Keys(ctx, "*").Result(); len(keys) != 0 {
		t.Errorf("keys left after everyone left: %v", keys)
	}
}

func TestRoomLimit(t *testing.T) {
	addr := testenv.StartRedis(t)
	c := node(t, addr, "n1")
	ctx := context.Background()
	for i := range 2 {
		if _, _, err := c.Join(ctx, "small", cluster.Member{ID: fmt.Sprint(i)}, 2); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := c.Join(ctx, "small", cluster.Member{ID: "x"}, 2); !errors.Is(err, cluster.ErrRoomFull) {
		t.Errorf("third join into a room of 2: %v, want ErrRoomFull", err)
	}
	existing, joined, err := c.Join(ctx, "small", cluster.Member{ID: "0"}, 2)
	if err != nil || joined || len(existing) != 1 {
		t.Errorf("joining again: joined %v, existing %v, %v; want not joined, the other member", joined, existing, err)
	}
}

// TestBusExactlyOnceInOrder: 10,000 envelopes from node 1 to node 2
// arrive once each and in order, also when node 2's Redis connections are
// killed in the middle.
func TestBusExactlyOnceInOrder(t *testing.T) {
	addr := testenv.StartRedis(t)
	n1 := node(t, addr, "n1")
	n2 := node(t, addr, "n2")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const total = 10000
	var mu sync.Mutex
	var got []string
	all := make(chan struct{})
	half := make(chan struct{})
	b2 := n2.NewBus(ctx, func(e cluster.Envelope) {
		mu.Lock()
		got = append(got, string(e.Payload))
		n := len(got)
		mu.Unlock()
		switch n {
		case total / 2:
			close(half)
		case total:
			close(all)
		}
	})
	b1 := n1.NewBus(ctx, func(cluster.Envelope) {})
	// n2's reader starts after what its inbox held when it started.
	select {
	case <-b2.Ready():
	case <-time.After(waitFor):
		t.Fatal("n2's inbox reader never started")
	}
	killed := 0
	for i := range total {
		if err := b1.Send("n2", "msg", []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
		if i == total/2 {
			<-half
			// The receiver's connections, and the sender's too, so that
			// a write whose answer is lost is retried.
			killed = testenv.KillRedisClients(t, addr, "rtcio-n2") + testenv.KillRedisClients(t, addr, "rtcio-n1")
		}
	}
	select {
	case <-all:
	case <-time.After(waitFor):
		mu.Lock()
		t.Fatalf("%d of %d envelopes arrived", len(got), total)
	}
	cancel()
	b1.Wait()
	b2.Wait()
	for i, p := range got {
		if p != fmt.Sprint(i) {
			t.Fatalf("envelope %d is %q", i, p)
		}
	}
	st := b2.Stats()
	t.Logf("killed %d connections of n2; n2 received %d, duplicates %d, gaps %d; n1 sent %d, retries %d", killed, st.Received, st.Duplicates, st.Gaps, b1.Stats().Sent, b1.Stats().Retries)
	if killed < 2 {
		t.Errorf("%d connections were killed, want n1's and n2's", killed)
	}
	if st.Received != total || st.Gaps != 0 {
		t.Errorf("n2 stats %+v", st)
	}
}

// TestLeaseFencing: one holder at a time; a lease taken over (its holder
// was away past the TTL) is reported lost to the old holder; a Redis that
// forgot everything gets the lease back from its holder.
func TestLeaseFencing(t *testing.T) {
	r, err := testenv.NewRedis(context.Background(), t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	a := node(t, r.Addr(), "a")
	b := node(t, r.Addr(), "b")
	ctx := context.Background()
	const ttl = 300 * time.Millisecond
	la, err := a.Claim(ctx, "room:x", ttl)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Claim(ctx, "room:x", ttl); !errors.Is(err, cluster.ErrLeaseHeld) {
		t.Fatalf("second claim: %v, want ErrLeaseHeld", err)
	}
	if err := la.Release(ctx); err != nil {
		t.Fatal(err)
	}
	lb, err := b.Claim(ctx, "room:x", ttl)
	if err != nil {
		t.Fatal(err)
	}
	if lb.Epoch != la.Epoch+1 {
		t.Errorf("epochs %d then %d", la.Epoch, lb.Epoch)
	}

	// Taken over behind its holder's back (as after a pause past the TTL):
	// the holder learns at its next renewal.
	rdb := redis.NewClient(&redis.Options{Addr: r.Addr()})
	defer rdb.Close()
	rdb.Del(ctx, "rtcio:lease:room:x")
	lc, err := a.Claim(ctx, "room:x", ttl)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-lb.Lost():
	case <-time.After(waitFor):
		t.Fatal("the old holder never learnt it lost the lease")
	}
	if node, epoch, ok, _ := b.Holder(ctx, "room:x"); !ok || node != "a" || epoch != lc.Epoch {
		t.Errorf("holder %s epoch %d, want a epoch %d", node, epoch, lc.Epoch)
	}
	_ = lb.Release(ctx) // not ours any more: must not delete a's lease
	if node, _, ok, _ := b.Holder(ctx, "room:x"); !ok || node != "a" {
		t.Errorf("a stale release took the lease from a: holder %q", node)
	}

	// Redis forgets everything: the holder re-asserts its lease.
	rdb.FlushAll(ctx)
	deadline := time.Now().Add(waitFor)
	for {
		if node, epoch, ok, _ := b.Holder(ctx, "room:x"); ok && node == "a" && epoch == lc.Epoch {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("lease not re-asserted after Redis lost it")
		}
		time.Sleep(20 * time.Millisecond) // the renewal has no event to wait on
	}
	select {
	case <-lc.Lost():
		t.Error("the holder counted a forgetful Redis as a lost lease")
	default:
	}
	_ = lc.Release(ctx)
}

// TestReaperTakesDeadNodesSockets: a node whose heartbeat stops has its
// sockets taken out of their rooms by the live nodes, each departure
// reported once in the cluster, with the members left.
func TestReaperTakesDeadNodesSockets(t *testing.T) {
	addr := testenv.StartRedis(t)
	dead := node(t, addr, "dead")
	live := []*cluster.Cluster{node(t, addr, "live1"), node(t, addr, "live2")}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// The doomed node heartbeats once, then goes silent.
	dctx, dcancel := context.WithCancel(ctx)
	var none atomic.Uint64
	healthy := make(chan bool, 16)
	go dead.RunNode(dctx, cluster.NodeHooks{Health: func(ok bool) {
		select {
		case healthy <- ok:
		default:
		}
	}}, &none)
	if !<-healthy {
		t.Fatal("first heartbeat failed")
	}
	for _, s := range []string{"d1", "d2"} {
		if err := dead.AddSocket(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	join := func(c *cluster.Cluster, room, id string) {
		if _, _, err := c.Join(ctx, room, cluster.Member{ID: id}, 0); err != nil {
			t.Fatal(err)
		}
	}
	join(live[0], "r1", "a")
	join(dead, "r1", "d1")
	join(dead, "r2", "d1")
	join(dead, "r2", "d2")
	join(live[1], "r2", "b")
	// Kill: no clean stop, the heartbeat just ends (its key expires).
	_ = dead.Close()
	dcancel()

	var mu sync.Mutex
	var deps []cluster.Departure
	got := make(chan struct{}, 8)
	var reaped atomic.Uint64
	for _, c := range live {
		go c.RunNode(ctx, cluster.NodeHooks{Reaped: func(d cluster.Departure) {
			mu.Lock()
			deps = append(deps, d)
			mu.Unlock()
			got <- struct{}{}
		}}, &reaped)
	}
	for range 3 {
		select {
		case <-got:
		case <-time.After(waitFor):
			t.Fatalf("departures: %+v", deps)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	seen := make(map[string]int)
	for _, d := range deps {
		seen[d.Room+"/"+d.Socket]++
		for _, m := range d.Remaining {
			if m.Node == "dead" && m.ID == d.Socket {
				t.Errorf("%s still listed in %s after its departure", d.Socket, d.Room)
			}
		}
	}
	for _, want := range []string{"r1/d1", "r2/d1", "r2/d2"} {
		if seen[want] != 1 {
			t.Errorf("departure %s reported %d times", want, seen[want])
		}
	}
	if reaped.Load() != 3 {
		t.Errorf("reaped %d, want 3", reaped.Load())
	}
	for room, want := range map[string]int{"r1": 1, "r2": 1} {
		if ms, _ := live[0].Members(ctx, room); len(ms) != want {
			t.Errorf("%s has %d members, want %d", room, len(ms), want)
		}
	}
}
