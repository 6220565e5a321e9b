package loadtest

import (
	"context"
	"sync"
	"testing"
	"time"
)

// TestSmokeMeetingCascaded: a meeting of 4 Go participants spread over 2
// nodes with cluster.max_room_peers_per_node=2: the room's origin serves
// two of them and an edge on the other node the two others; each receives
// the three others' streams without loss, and while the media flows each
// node has exactly one link and three peer connections (two clients and
// the link's end): one inter-node peer connection.
func TestSmokeMeetingCascaded(t *testing.T) {
	c := startClusterRun(t, 2, func(int) []string {
		return []string{"--set", "cluster.max_room_peers_per_node=2"}
	})
	cfg := smokeConfig(Meeting, 4, 0)
	var mu sync.Mutex
	seen := make([][2]float64, len(c.urls))
	cfg.OnWindow = func(ctx context.Context, _ time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		for i, u := range c.urls {
			links, err := scrapeSum(ctx, u, "rtcio_sfu_links")
			if err != nil {
				t.Error(err)
				return
			}
			pcs, err := scrapeSum(ctx, u, "rtcio_peer_connections")
			if err != nil {
				t.Error(err)
				return
			}
			seen[i] = [2]float64{links, pcs}
		}
	}
	r, err := c.s.RunGateway(c.ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	assertComplete(t, r, 4, 12)
	mu.Lock()
	defer mu.Unlock()
	for i, s := range seen {
		t.Logf("node%d: %v links, %v peer connections", i+1, s[0], s[1])
		if s != [2]float64{1, 3} {
			t.Errorf("node%d: %v links and %v peer connections, want 1 and 3", i+1, s[0], s[1])
		}
	}
}
