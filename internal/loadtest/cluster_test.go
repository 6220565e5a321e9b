package loadtest

import (
	"context"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/redis/go-redis/v9"

	"github.com/rtcio-gateway/rtcio-gateway/internal/testenv"
)

// startClusterNodes runs n gateway processes of one cluster on redis at
// addr (SFU rooms, media on loopback), node i with extra(i) more flags
// (extra may be nil), and returns their URLs and processes; they stop with
// the test.
func startClusterNodes(ctx context.Context, t testing.TB, bin, addr string, n int, extra func(i int) []string) ([]string, []*Process) {
	t.Helper()
	var urls []string
	var procs []*Process
	for i := range n {
		httpPort, err := FreePort("tcp4")
		if err != nil {
			t.Fatal(err)
		}
		udpPort, err := FreePort("udp4")
		if err != nil {
			t.Fatal(err)
		}
		url := fmt.Sprintf("http://127.0.0.1:%d", httpPort)
		args := []string{"--set", "redis.url=redis://" + addr + "/0",
			"--set", fmt.Sprintf("cluster.node_id=node%d", i+1)}
		if extra != nil {
			args = append(args, extra(i)...)
		}
		p, err := Start(ctx, ProcessOptions{Bin: bin, Args: GatewayArgs(httpPort, udpPort, "", args...), URL: url, ReadyPath: "/readyz"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := p.Stop(); err != nil {
				t.Errorf("node%d stop: %v", i+1, err)
			}
		})
		urls = append(urls, url)
		procs = append(procs, p)
	}
	return urls, procs
}

// clusterRun is what a cluster smoke test runs against: a setup whose
// GatewayURLs are n gateway processes of one cluster (the first one
// measured), the test's context and a client of their redis-server.
type clusterRun struct {
	s     Setup
	ctx   context.Context
	urls  []string
	procs []*Process
	rdb   *redis.Client
}

// startClusterRun starts a redis-server and n gateway processes on it
// (node i with extra(i) more flags) for one test of at most 90 s.
func startClusterRun(t testing.TB, n int, extra func(i int) []string) *clusterRun {
	t.Helper()
	c := &clusterRun{s: smokeSetup(t)}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	c.ctx = ctx
	srv := testenv.StartRedisServer(t)
	c.urls, c.procs = startClusterNodes(ctx, t, c.s.GatewayBin, srv.Addr(), n, extra)
	c.s.GatewayURLs, c.s.GatewayPID = c.urls, c.procs[0].PID
	c.rdb = redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { _ = c.rdb.Close() })
	return c
}

// A meeting of four Go peers spread over two gateway processes of one
// cluster (one redis-server), as --url a,b runs it: participants alternate
// between the nodes, the room's media lives on one of them, and every
// participant still receives every other one's streams without loss; both
// nodes carried signaling for the other (cross-node envelopes).
func TestSmokeMeetingAcrossNodes(t *testing.T) {
	c := startClusterRun(t, 2, nil)
	ctx, urls := c.ctx, c.urls
	r, err := c.s.RunGateway(ctx, smokeConfig(Meeting, 4, 0))
	if err != nil {
		t.Fatal(err)
	}
	// Four participants, each receiving the three others' video.
	assertComplete(t, r, 4, 12)
	for i, u := range urls {
		recv, err := scrapeSum(ctx, u, "rtcio_cluster_envelopes_received_total")
		if err != nil {
			t.Fatal(err)
		}
		if recv == 0 {
			t.Errorf("node%d received no envelope from the other node: the participants were not spread", i+1)
		}
		t.Logf("node%d: %.0f envelopes received from the other node", i+1, recv)
	}
	t.Logf("join to first keyframe: p50 %.0f ms, max %.0f ms; forwarded %d packets",
		r.JoinKeyMs.P50, r.JoinKeyMs.Max, r.Forwarded)
}

// scrapeSum sums a counter or gauge family of a gateway's /metrics.
func scrapeSum(ctx context.Context, url, name string) (float64, error) {
	fams, err := scrapeMetrics(ctx, url)
	if err != nil {
		return 0, err
	}
	return familySum(fams, name), nil
}

// familySum sums a counter or gauge family of one scrape.
func familySum(fams map[string]*dto.MetricFamily, name string) float64 {
	sum := 0.0
	if f := fams[name]; f != nil {
		for _, m := range f.GetMetric() {
			// One of the two is set, by the family's type.
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return sum
}

// A recorded SFU room of two Go peers on two nodes is recorded by the node
// holding its media lease (read from Redis while the media flows): its
// recording directory gets the room's manifest and one non-empty file per
// published stream, the other node's gets nothing.
func TestRecordingOnTheMediaNode(t *testing.T) {
	dirs := []string{t.TempDir(), t.TempDir()}
	c := startClusterRun(t, 2, func(i int) []string {
		return []string{"--set", "recording.mode=all", "--set", "recording.dir=" + dirs[i]}
	})
	ctx, rdb := c.ctx, c.rdb
	cfg := smokeConfig(Meeting, 2, 0)
	var holder string
	var leaseErr error
	cfg.OnWindow = func(ctx context.Context, _ time.Duration) {
		all, err := rdb.Keys(ctx, "rtcio:lease:media:*").Result()
		var keys []string
		for _, k := range all {
			if !strings.HasSuffix(k, ":epoch") {
				keys = append(keys, k)
			}
		}
		if err != nil || len(keys) != 1 {
			leaseErr = fmt.Errorf("media leases %v (%v), want one", keys, err)
			return
		}
		v, err := rdb.Get(ctx, keys[0]).Result()
		holder, _, _ = strings.Cut(v, "|")
		leaseErr = err
	}
	r, err := c.s.RunGateway(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	assertComplete(t, r, 2, 2)
	if leaseErr != nil {
		t.Fatal(leaseErr)
	}
	media := map[string]int{"node1": 0, "node2": 1}[holder]
	if holder == "" || (holder != "node1" && holder != "node2") {
		t.Fatalf("media lease held by %q", holder)
	}
	// The recorder finishes when the room closes, after the peers left.
	for {
		manifests, webm := recordedFiles(t, dirs[media])
		if manifests == 1 && webm == 2 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("%s (the media node) recorded %d room manifests and %d non-empty WebM files, want 1 and 2", holder, manifests, webm)
		}
		time.Sleep(50 * time.Millisecond) // the recorder has no event to wait on from here
	}
	other := 1 - media
	if n := countFiles(t, dirs[other]); n != 0 {
		t.Errorf("node%d, which did not host the room's media, wrote %d files", other+1, n)
	}
	t.Logf("media on %s (participant 0 connected to node1, participant 1 to node2): its directory holds the room's recording (both publishers), the other none", holder)
}

// recordedFiles counts room manifests and non-empty WebM files under dir.
func recordedFiles(t *testing.T, dir string) (manifests, webm int) {
	t.Helper()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case strings.HasSuffix(path, ".room.json"):
			manifests++
		case strings.HasSuffix(path, ".webm") && info.Size() > 0:
			webm++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return manifests, webm
}

// countFiles counts the regular files under dir.
func countFiles(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			n++
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// mediaLeaseHolder is the node holding room's media lease ("" when free).
func mediaLeaseHolder(ctx context.Context, rdb *redis.Client, room string) string {
	v, _ := rdb.Get(ctx, "rtcio:lease:media:"+room).Result()
	node, _, _ := strings.Cut(v, "|")
	return node
}

// With least-loaded placement, a meeting whose two Go peers connect to
// node1 and node2 has its media on node3, the node with nothing to do (two
// rooms pinned first load node1 and node2): each peer's only peer
// connection goes to a node its socket is not on, its signaling through
// Redis, and every stream still arrives without loss.
func TestSmokeMeetingMediaOnThirdNode(t *testing.T) {
	c := startClusterRun(t, 3, func(int) []string {
		return []string{"--set", "cluster.placement=least-loaded", "--set", "cluster.heartbeat=200ms", "--set", "cluster.node_ttl=1s"}
	})
	ctx, rdb, urls, s := c.ctx, c.rdb, c.urls, c.s
	// Two rooms with one idle peer each, both joined through node1: the
	// first is hosted by node1 (a tie goes to the joining node), the
	// second by node2.
	for i, want := range []string{"node1", "node2"} {
		room := fmt.Sprintf("pin-%d", i)
		tg := &GatewayTarget{URL: urls[0], Room: room}
		conn, err := tg.Join(ctx, NewParticipant(i, room))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		for {
			load, _ := rdb.Get(ctx, "rtcio:node:"+want+":load").Result()
			if mediaLeaseHolder(ctx, rdb, room) == want && load == "1" {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("room %s: lease held by %q, want %s with load 1 (%q)", room, mediaLeaseHolder(ctx, rdb, room), want, load)
			}
			time.Sleep(20 * time.Millisecond) // polling Redis: nothing to wait on
		}
	}
	s.GatewayURLs, s.GatewayPID = urls[:2], c.procs[2].PID
	cfg := smokeConfig(Meeting, 2, 0)
	var holder string
	cfg.OnWindow = func(ctx context.Context, _ time.Duration) {
		keys, _ := rdb.Keys(ctx, "rtcio:lease:media:loadtest-*").Result()
		for _, k := range keys {
			if !strings.HasSuffix(k, ":epoch") {
				holder = mediaLeaseHolder(ctx, rdb, strings.TrimPrefix(k, "rtcio:lease:media:"))
			}
		}
	}
	r, err := s.RunGateway(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if holder != "node3" {
		t.Fatalf("the meeting's media was on %q, want node3", holder)
	}
	assertComplete(t, r, 2, 2)
	t.Logf("media on node3, peers on node1 and node2: join to first keyframe p50 %.0f ms, max %.0f ms; node3 CPU %v",
		r.JoinKeyMs.P50, r.JoinKeyMs.Max, r.TargetCPU)
}
