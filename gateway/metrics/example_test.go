package metrics_test

import (
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"sync/atomic"

	"github.com/rtcio-gateway/rtcio-gateway/gateway/metrics"
)

// A component that already counts in atomics becomes a source read on each
// scrape; event-driven code increments counters directly.
func Example() {
	m, err := metrics.New(metrics.Options{NoRuntimeMetrics: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	var forwarded atomic.Uint64 // owned by the media plane
	remove := m.AddSource(func(s *metrics.Snapshot) {
		s.PacketsForwarded += forwarded.Load()
		s.Publications++
	})
	defer remove()

	forwarded.Add(1200)
	m.Direct.Rooms.Add(1)
	m.Refused("rate_limited").Inc()

	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, "rtcio_forwarded_packets_total") || strings.HasPrefix(line, "rtcio_rooms") ||
			strings.HasPrefix(line, "rtcio_signaling_refused_total") {
			fmt.Println(line)
		}
	}
	// Output:
	// rtcio_forwarded_packets_total 1200
	// rtcio_rooms 1
	// rtcio_signaling_refused_total{reason="rate_limited"} 1
}
