package clusterrooms_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/rtcio-gateway/rtcio-gateway/internal/testenv"
)

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
	// Each node serves its media on one UDP port, so the page's selected
	// candidate pair names the node it reaches.
	c := startClusterOf(t, "sfu", 0)
	ports := make([]int, 3)
	for i := range ports {
		ports[i] = testenv.FreeUDPPort(t)
		c.addNode(gatewayBin.get(t), fmt.Sprintf("node%d", i+1), fmt.Sprintf("media.udp_port=%d", ports[i]))
	}
	js := testenv.StartNodeClients(t)
	ctx, pubPage, subPage := startMediaPages(t, 90*time.Second)
	const room = "redis-down"
	run := startMediaRun(ctx, t, c, js, pubPage, subPage, 2, room)
	subPage.startGaps(ctx)

	killed := time.Now()
	c.redis.Kill()
	for i := range c.nodes {
		c.waitStatus(i, "/readyz", http.StatusServiceUnavailable, 10*time.Second)
		if got := c.status(i, "/healthz"); got != http.StatusOK {
			t.Errorf("%s /healthz answered %d while Redis is down", c.ids[i], got)
		}
	}
	// The outage lasts 10 s, as in the acceptance scenario.
	time.Sleep(time.Until(killed.Add(10 * time.Second)))
	during := subPage.state(ctx)
	for i, n := range c.nodes {
		if err, exited := n.Wait(0); exited {
			t.Fatalf("%s exited while Redis was down: %v", c.ids[i], err)
		}
	}
	restarted := time.Now()
	if err := c.redis.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	for i := range c.nodes {
		c.waitStatus(i, "/readyz", http.StatusOK, 30*time.Second)
	}
	ready := time.Since(restarted)
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
	t.Logf("redis killed 10 s, restarted empty: nodes ready %v after the restart; the subscriber decoded %d frames during the outage, %d in all; longest gap %v; lease holders after the restart %v",
		ready.Round(time.Millisecond), during.Frames, end.Frames, gap.Round(time.Millisecond), hosts)
	if gap > time.Second {
		t.Errorf("longest frame gap %v through the outage and restart, want <= 1 s", gap)
	}
	if len(hosts) != 1 || !hosts[c.ids[2]] {
		t.Errorf("after the restart the room's lease was held by %v, want only its media node %s", hosts, c.ids[2])
	}
	oneConnectionTo(ctx, t, run.sub, ports[2])
}
