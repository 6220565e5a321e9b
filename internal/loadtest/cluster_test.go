package loadtest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/rtcio-gateway/rtcio-gateway/internal/testenv"
)

// startClusterNodes runs n gateway processes of one cluster on redis at
// addr (SFU rooms, media on loopback), and returns their URLs and
// processes; they stop with the test.
func startClusterNodes(ctx context.Context, t *testing.T, bin, addr string, n int, extra ...string) ([]string, []*Process) {
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
		args := append([]string{"--set", "redis.url=redis://" + addr + "/0",
			"--set", fmt.Sprintf("cluster.node_id=node%d", i+1)}, extra...)
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

// A meeting of four Go peers spread over two gateway processes of one
// cluster (one redis-server), as --url a,b runs it: participants alternate
// between the nodes, the room's media lives on one of them, and every
// participant still receives every other one's streams without loss; both
// nodes carried signaling for the other (cross-node envelopes).
func TestSmokeMeetingAcrossNodes(t *testing.T) {
	s := smokeSetup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	redis := testenv.StartRedisServer(t)
	urls, procs := startClusterNodes(ctx, t, s.GatewayBin, redis.Addr(), 2)
	s.GatewayURLs, s.GatewayPID = urls, procs[0].PID
	r, err := s.RunGateway(ctx, smokeConfig(Meeting, 4, 0))
	if err != nil {
		t.Fatal(err)
	}
	// Four participants, each receiving the three others' video.
	assertComplete(t, r, 4, 12)
	for i, u := range urls {
		recv, err := scrapeCounter(ctx, u, "rtcio_cluster_envelopes_received_total")
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

// scrapeCounter sums a counter family of a gateway's /metrics.
func scrapeCounter(ctx context.Context, url, name string) (float64, error) {
	fams, err := scrapeMetrics(ctx, url)
	if err != nil {
		return 0, err
	}
	sum := 0.0
	if f := fams[name]; f != nil {
		for _, m := range f.GetMetric() {
			sum += m.GetCounter().GetValue()
		}
	}
	return sum, nil
}
