package clusterrooms_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rtcio-gateway/rtcio-gateway/internal/testenv"
)

// startCascade runs a cluster of two nodes whose SFU rooms cascade past
// limit clients per node; node1 hosts the origin of every room the test
// joins first through it.
func startCascade(t *testing.T, limit string, extra ...string) *testCluster {
	t.Helper()
	c := startClusterOf(t, "sfu", 2, append([]string{"cluster.max_room_peers_per_node=" + limit, "cluster.media_lease_ttl=2s"}, extra...)...)
	return c
}

// servedBy waits until the room's gateway peers are on the nodes want
// (sorted), as the cluster's member records say.
func (c *testCluster) servedBy(ctx context.Context, room string, want ...string) {
	c.t.Helper()
	r := c.rdb()
	for {
		g, err := gatewayMembers(ctx, r, room)
		if err != nil {
			c.t.Fatal(err)
		}
		slices.Sort(g)
		if slices.Equal(g, want) {
			return
		}
		if ctx.Err() != nil {
			c.t.Fatalf("room %s: gateway peers on %v, want %v", room, g, want)
		}
		time.Sleep(20 * time.Millisecond) // polling Redis: nothing to wait on
	}
}

// TestCascadeEdgeKilled is acceptance 4: a room of three Go clients, all
// connected to node1's signaling, with at most 2 clients per node: node1's
// origin serves two, node2's edge the third. After kill -9 of node2 the
// third client is moved to the origin (past the threshold: no other node
// is left), which offers to it without a rejoin: it receives the others'
// video again within 15 s, and they its own. The origin's clients never
// lose each other's video for more than 1 s meanwhile.
func TestCascadeEdgeKilled(t *testing.T) {
	c := startCascade(t, "2")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	const room = "edge-killed"
	url := c.nodes[0].URL
	a := dialGoPeer(ctx, t, url)
	a.join(ctx, room)
	if h := claimedBy(ctx, t, c.rdb(), room); h != "node1" {
		t.Fatalf("origin on %q, want node1", h)
	}
	a.publish("camera", "cam-a", "a")
	b := dialGoPeer(ctx, t, url)
	b.join(ctx, room)
	b.publish("camera", "cam-b", "b")
	e := dialGoPeer(ctx, t, url)
	e.join(ctx, room)
	e.publish("camera", "cam-e", "e")
	c.servedBy(ctx, room, "node1", "node2")
	a.waitVideo(ctx, 20, "cam-b", "cam-e")
	b.waitVideo(ctx, 20, "cam-a", "cam-e")
	e.waitVideo(ctx, 20, "cam-a", "cam-b")
	if p := e.Peers(); len(p) != 1 {
		t.Fatalf("the edge's client has peers %v, want its edge's gateway peer only", p)
	}

	a.startGaps()
	b.startGaps()
	if err := c.nodes[1].Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	e.waitVideo(ctx, 20, "cam-a", "cam-b")
	back := time.Since(killed)
	a.waitVideo(ctx, 20, "cam-e")
	b.waitVideo(ctx, 20, "cam-e")
	t.Logf("the dead edge's client receives again %v after the kill; its own video is back at the origin's clients %v after it", back, time.Since(killed))
	if back > 15*time.Second {
		t.Errorf("the dead edge's client received again only %v after the kill, want <= 15 s", back)
	}
	ga, gb := a.gap("cam-b"), b.gap("cam-a")
	t.Logf("the origin's clients' longest gaps in each other's video: %v, %v", ga, gb)
	if ga > time.Second || gb > time.Second {
		t.Errorf("the origin's clients lost each other's video for %v and %v, want <= 1 s", ga, gb)
	}
	c.servedBy(ctx, room, "node1")
}

// streamsOf is the sorted "event:name" of what a peer got.
func streamsOf(evs []peerEvent) []string {
	out := make([]string, 0, len(evs))
	for _, e := range evs {
		out = append(out, e.Event+":"+e.Name)
	}
	slices.Sort(out)
	return out
}

// TestCascadeLateJoinerOnEdge is acceptance 2: at most 2 clients per node,
// the publisher on the origin. A late joiner on the edge gets every live
// stream (with its event and name) within 2 s of its join. After the
// publisher untracked one stream and emitted another again under a new
// name, a later joiner on the edge and one on the origin both get exactly
// the live streams, the re-emitted one under its new name: the edge asks
// the origin, which asks the publisher again.
func TestCascadeLateJoinerOnEdge(t *testing.T) {
	c := startCascade(t, "2", "media.metadata_wait=1s")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	const room = "late-edge"
	url := c.nodes[0].URL
	events := []string{"camera", "screen"}
	p := dialGoPeer(ctx, t, url)
	p.join(ctx, room)
	p.publish("camera", "cam-p", "p")
	scr := p.publish("screen", "scr-p", "slides")
	extra := p.publish("camera", "cam2-p", "extra")
	o := dialGoPeer(ctx, t, c.nodes[1].URL, events...)
	o.join(ctx, room)
	e := dialGoPeer(ctx, t, c.nodes[1].URL, events...)
	e.join(ctx, room)
	c.servedBy(ctx, room, "node1", "node2")
	e.waitVideo(ctx, 20, "cam-p", "scr-p", "cam2-p")

	late := dialGoPeer(ctx, t, c.nodes[1].URL, events...)
	joined := time.Now()
	late.join(ctx, room)
	late.waitFor(ctx, "every live stream", func(g *goPeer) bool { return len(g.events) >= 3 })
	took := time.Since(joined)
	if got := streamsOf(late.eventsSince(0)); !slices.Equal(got, []string{"camera:extra", "camera:p", "screen:slides"}) {
		t.Fatalf("the late joiner on the edge got %v", got)
	}
	late.waitVideo(ctx, 20, "cam-p", "scr-p", "cam2-p")
	t.Logf("the late joiner on the edge got every live stream %v after its join", took)
	if took > 2*time.Second {
		t.Errorf("the late joiner on the edge got the live streams only %v after its join, want <= 2 s", took)
	}

	// The publisher untracks one stream and emits another again.
	p.UntrackStream(extra)
	if err := p.Emit("screen", map[string]any{"name": "renamed", "stream": scr}); err != nil {
		t.Fatal(err)
	}
	// Both are decided in the publisher's own registry when the calls
	// return: a later joiner's gateway peer asks the publisher from now on.
	// A place is freed on the edge, then one on the origin, and later
	// joiners take them (a joiner goes to the origin while it has room).
	if err := late.Close(); err != nil {
		t.Fatal(err)
	}
	onEdge := dialGoPeer(ctx, t, c.nodes[1].URL, events...)
	onEdge.join(ctx, room)
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	onOrigin := dialGoPeer(ctx, t, c.nodes[1].URL, events...)
	onOrigin.join(ctx, room)
	for name, g := range map[string]*goPeer{"edge": onEdge, "origin": onOrigin} {
		g.waitVideo(ctx, 20, "cam-p", "scr-p")
		g.waitFor(ctx, "the live streams", func(g *goPeer) bool { return len(g.events) >= 2 })
		if got := streamsOf(g.eventsSince(0)); !slices.Equal(got, []string{"camera:p", "screen:renamed"}) {
			t.Errorf("the later joiner on the %s got %v, want exactly camera:p and screen:renamed", name, got)
		}
	}
	// The edge's joiner: the origin refused to confirm the untracked
	// stream to the edge (and so the edge never replays it); the origin's
	// joiner: the untracked stream was left out when its replay started.
	for !strings.Contains(c.nodes[0].Logs(), "not confirming to a link a stream the publisher no longer confirms") {
		if ctx.Err() != nil {
			t.Fatal("the origin never refused the untracked stream to the edge")
		}
		time.Sleep(50 * time.Millisecond) // polling a process's log: nothing to wait on
	}
	if got := streamsOf(onEdge.eventsSince(0)); !slices.Equal(got, []string{"camera:p", "screen:renamed"}) {
		t.Errorf("the later joiner on the edge got %v in the end", got)
	}
}

// metricValue sums the samples of one family of a node's /metrics.
func metricValue(ctx context.Context, t *testing.T, url, name string) float64 {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	sum, found := 0.0, false
	for _, line := range strings.Split(string(body), "\n") {
		if !strings.HasPrefix(line, name+" ") && !strings.HasPrefix(line, name+"{") {
			continue
		}
		f, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			t.Fatalf("%s: %q", name, line)
		}
		sum, found = sum+f, true
	}
	if !found {
		t.Fatalf("%s/metrics (%s) has no %s: %.300s", url, res.Status, name, body)
	}
	return sum
}

// TestCascadeBrowsersAcrossNodes is acceptance 1: at most 2 clients per
// node, 4 participants over 2 nodes, 2 Chromium pages and 2 Go peers, all
// publishing a camera. node1's origin serves a Go peer and a page, node2's
// edge the others. Each receives the 3 others (the pages decode frames of
// 3 videos, the Go peers receive RTP of 3 videos): 12 receptions. Each
// page has one peer connection; each node's gateway peer has three, its
// two clients and the one link between the nodes.
func TestCascadeBrowsersAcrossNodes(t *testing.T) {
	testenv.SkipIfNoBrowser(t)
	c := startCascade(t, "2", "metrics.public=true")
	ctx, pageA, pageB := startMediaPages(t, 150*time.Second)
	const room = "browsers"
	g1 := dialGoPeer(ctx, t, c.nodes[0].URL)
	g1.join(ctx, room)
	if h := claimedBy(ctx, t, c.rdb(), room); h != "node1" {
		t.Fatalf("origin on %q, want node1", h)
	}
	g1.publish("camera", "cam-g1", "g1")
	pa := pageA.connect(ctx, c.nodes[0].URL, "page-a")
	publishVideo(ctx, t, pa, room)
	g2 := dialGoPeer(ctx, t, c.nodes[1].URL)
	g2.join(ctx, room)
	g2.publish("camera", "cam-g2", "g2")
	pb := pageB.connect(ctx, c.nodes[1].URL, "page-b")
	published := time.Now()
	publishVideo(ctx, t, pb, room)
	c.servedBy(ctx, room, "node1", "node2")

	threeVideos := func(g *goPeer) bool {
		n := 0
		for id, count := range g.packets {
			if g.video[id] && count >= 20 {
				n++
			}
		}
		return n >= 3
	}
	g1.waitFor(ctx, "3 videos", threeVideos)
	g2.waitFor(ctx, "3 videos", threeVideos)
	for _, p := range []*testenv.ConformancePeer{pa, pb} {
		if _, err := p.WaitForStats(ctx, `Object.values(s).length === 1 && Object.values(s).every((p) => p.inbound.filter((i) => i.kind === 'video' && i.framesDecoded > 10).length >= 3)`); err != nil {
			t.Fatalf("%s does not decode 3 videos over one connection: %v", p.ID, err)
		}
	}
	t.Logf("12 receptions within %v of the last participant's publishing", time.Since(published))
	for i, n := range c.nodes {
		links, pcs := metricValue(ctx, t, n.URL, "rtcio_sfu_links"), metricValue(ctx, t, n.URL, "rtcio_peer_connections")
		t.Logf("node%d: %v peer connections, %v links", i+1, pcs, links)
		if links != 1 || pcs != 3 {
			t.Errorf("node%d: %v peer connections and %v links, want 3 (2 clients, 1 link) and 1", i+1, pcs, links)
		}
	}
}

// TestCascadeOriginKilled: at most 2 clients per node, all three clients
// connected to node2's signaling, the origin on node1 and the edge on
// node2. After kill -9 of node1 the edge closes, node2 takes the room
// over and serves all three (close and retake): every client receives
// the two others' video again, without a rejoin.
func TestCascadeOriginKilled(t *testing.T) {
	c := startCascade(t, "2")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	const room = "origin-killed"
	// The first join goes through node1, so node1 holds the origin; the
	// clients themselves connect to node2, which survives.
	anchor := dialGoPeer(ctx, t, c.nodes[0].URL)
	anchor.join(ctx, room)
	if h := claimedBy(ctx, t, c.rdb(), room); h != "node1" {
		t.Fatalf("origin on %q, want node1", h)
	}
	peers := make([]*goPeer, 3)
	for i := range peers {
		peers[i] = dialGoPeer(ctx, t, c.nodes[1].URL)
		peers[i].join(ctx, room)
		peers[i].publish("camera", fmt.Sprintf("cam-%d", i), fmt.Sprint(i))
	}
	c.servedBy(ctx, room, "node1", "node2")
	others := func(i int) []string {
		var out []string
		for j := range peers {
			if j != i {
				out = append(out, fmt.Sprintf("cam-%d", j))
			}
		}
		return out
	}
	for i, p := range peers {
		p.waitVideo(ctx, 20, others(i)...)
	}
	if err := c.nodes[0].Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	for i, p := range peers {
		p.waitVideo(ctx, 20, others(i)...)
	}
	t.Logf("every client receives the others again %v after kill -9 of the origin's node", time.Since(killed))
	c.servedBy(ctx, room, "node2")
	if h := claimedBy(ctx, t, c.rdb(), room); h != "node2" {
		t.Fatalf("origin on %q after the kill, want node2", h)
	}
}

// memberMedia reads a member's edge (its record's media) from Redis.
func memberMedia(ctx context.Context, t *testing.T, c *testCluster, room, id string) string {
	t.Helper()
	raw, err := c.rdb().HGet(ctx, "rtcio:room:"+room+":members", id).Result()
	if err != nil {
		t.Fatalf("member %s of %s: %v", id, room, err)
	}
	_, js, _ := strings.Cut(raw, "|")
	var m struct{ Media string }
	if err := json.Unmarshal([]byte(js), &m); err != nil {
		t.Fatal(err)
	}
	return m.Media
}

// TestCascadeRedisRestart: a cascaded room (origin on node1 with two
// clients, an edge on node2 with one) while Redis is down for 10 s and
// comes back empty. The media keeps flowing; once the nodes wrote their
// state back the origin's node rebuilds the assignment counts from the
// member records, so a newcomer finds the origin full and is served by
// node2's edge, and receives the others.
func TestCascadeRedisRestart(t *testing.T) {
	c := startCascade(t, "2")
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	const room = "redis-restart"
	peers := make([]*goPeer, 3)
	for i := range peers {
		peers[i] = dialGoPeer(ctx, t, c.nodes[0].URL)
		peers[i].join(ctx, room)
		if i == 0 {
			if h := claimedBy(ctx, t, c.rdb(), room); h != "node1" {
				t.Fatalf("origin on %q, want node1", h)
			}
		}
		peers[i].publish("camera", fmt.Sprintf("cam-%d", i), fmt.Sprint(i))
	}
	c.servedBy(ctx, room, "node1", "node2")
	peers[2].waitVideo(ctx, 20, "cam-0", "cam-1")

	killed, _ := c.killRedis()
	ready := c.restartRedis(killed)
	peers[2].waitVideo(ctx, 20, "cam-0", "cam-1")
	r := c.rdb()
	for {
		served, err := r.HGetAll(ctx, "rtcio:room:"+room+":served").Result()
		if err != nil {
			t.Fatal(err)
		}
		if served["@origin"] == "2" && len(served) == 2 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("assignment counts after the restart: %v, want 2 on the origin and 1 on the edge", served)
		}
		time.Sleep(50 * time.Millisecond) // polling Redis: nothing to wait on
	}
	late := dialGoPeer(ctx, t, c.nodes[0].URL)
	late.join(ctx, room)
	if m := memberMedia(ctx, t, c, room, late.ID()); m != "node2" {
		t.Fatalf("the newcomer after the restart is served by %q, want node2's edge", m)
	}
	late.waitVideo(ctx, 20, "cam-0", "cam-1", "cam-2")
	t.Logf("nodes ready %v after Redis restarted empty; the edge's client still receives, the newcomer went to the edge", ready)
}
