package clusterrooms_test

import (
	"fmt"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/rtcio-gateway/rtcio-gateway/internal/testenv"
)

// startPortCluster starts an SFU cluster of n nodes, each serving its
// media on a UDP port of its own (returned by node index), so a page's
// selected candidate pair names the node it reaches.
func startPortCluster(t *testing.T, n int, extra ...string) (*testCluster, []int) {
	t.Helper()
	c := startClusterOf(t, "sfu", 0, extra...)
	ports := make([]int, n)
	for i := range ports {
		ports[i] = testenv.FreeUDPPort(t)
		c.addNode(gatewayBin.get(t), fmt.Sprintf("node%d", i+1), fmt.Sprintf("media.udp_port=%d", ports[i]))
	}
	return c, ports
}

// TestSFUMediaRedisDown is acceptance 9 for an SFU room: Redis killed for
// 10 s, then restarted empty. The room's media needs no Redis, so the
// subscriber's page (node 2, media on node 3) never goes more than 1 s
// without a decoded frame, through the outage and the restart; every node
// stays up (liveness) and unready while Redis is away; after the restart
// the media node re-asserts its lease before any other node can claim
// the room, so the room keeps its one host and the page its one
// connection.
func TestSFUMediaRedisDown(t *testing.T) {
	testenv.SkipIfNoBrowser(t)
	c, ports := startPortCluster(t, 3)
	js := testenv.StartNodeClients(t)
	ctx, pubPage, subPage := startMediaPages(t, 90*time.Second)
	const room = "redis-down"
	run := startMediaRun(ctx, t, c, js, pubPage, subPage, 2, room)
	subPage.startGaps(ctx)

	killed, _ := c.killRedis()
	before := subPage.state(ctx)
	ready := slices.Max(c.restartRedis(killed))
	restarted := killed.Add(10 * time.Second)
	// Three lease TTLs (default 5 s) after the restart: long past the
	// moment another node could have claimed a lease nobody re-asserted.
	sampleUntil := restarted.Add(15 * time.Second)
	hosts := map[string]bool{}
	for time.Now().Before(sampleUntil) {
		if h := leaseHolder(ctx, c.rdb(), room); h != "" {
			hosts[h] = true
		}
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	subPage.waitFrames(ctx, subPage.state(ctx), 30)
	end := subPage.state(ctx)
	gap := time.Duration(end.MaxGap * float64(time.Millisecond))
	t.Logf("redis killed 10 s, restarted empty: nodes ready %v after the restart; the subscriber decoded %d frames from the outage on; longest gap %v; lease holders after the restart %v",
		ready.Round(time.Millisecond), end.Frames-before.Frames, gap.Round(time.Millisecond), hosts)
	if gap > time.Second {
		t.Errorf("longest frame gap %v through the outage and restart, want <= 1 s", gap)
	}
	if len(hosts) != 1 || !hosts[c.ids[2]] {
		t.Errorf("after the restart the room's lease was held by %v, want only its media node %s", hosts, c.ids[2])
	}
	oneConnectionTo(ctx, t, run.sub, ports[2])
}

// TestSFUMediaNodePaused is acceptance 10 with media: the room's media
// node stopped (SIGSTOP) past its lease (1 s), then woken (SIGCONT). A
// node with clients in the room takes it over: the subscriber's page
// (node 2) decodes frames from the new host within lease + 5 s. The woken
// node finds its lease gone and closes its room within 2 s. The page ends
// with one peer connection, to the new host's port: its connection to
// the old host closes (the old gateway peer left), so no client keeps two
// gateway connections.
func TestSFUMediaNodePaused(t *testing.T) {
	testenv.SkipIfNoBrowser(t)
	c, ports := startPortCluster(t, 3, "cluster.media_lease_ttl=1s", "cluster.heartbeat=200ms", "cluster.node_ttl=5s")
	js := testenv.StartNodeClients(t)
	ctx, pubPage, subPage := startMediaPages(t, 90*time.Second)
	const room = "paused"
	run := startMediaRun(ctx, t, c, js, pubPage, subPage, 2, room)
	paused := c.nodes[2]
	subPage.mark(ctx)
	if err := paused.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	served := subPage.waitFirst(ctx, 20*time.Second)
	r := c.rdb()
	host := leaseHolder(ctx, r, room)
	if served > 6*time.Second {
		t.Errorf("frames from the new host after %v, want within lease + 5 s", served)
	}
	woke := time.Now()
	if err := paused.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	closed := waitSoleGateway(ctx, t, r, room, host, woke)
	// The page's rtc.io drops its connection to the old gateway peer
	// once it is unhealthy and that peer left (its watchdog).
	var peers int
	for {
		stats, err := run.sub.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if peers = len(stats); peers == 1 {
			break
		}
		if time.Since(woke) > 20*time.Second {
			t.Fatalf("20 s after SIGCONT the subscriber still has %d peer connections", peers)
		}
		time.Sleep(100 * time.Millisecond) // polling the page: nothing to wait on
	}
	single := time.Since(woke)
	oneConnectionTo(ctx, t, run.sub, ports[c.nodeIndex(host)])
	t.Logf("SIGSTOP of %s: frames from %s after %v; after SIGCONT the old host left after %v, and the subscriber was down to one connection after %v",
		c.ids[2], host, served.Round(time.Millisecond), closed.Round(time.Millisecond), single.Round(time.Millisecond))
}
