package metrics_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/rtcio-gateway/rtcio-gateway/gateway/metrics"
)

// scrape GETs /metrics over real HTTP and parses it with Prometheus' own
// text parser, with the strict (legacy) name rules.
func scrape(t *testing.T, srv *httptest.Server) map[string]*dto.MetricFamily {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/plain; version=0.0.4")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("status %d, content type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("not Prometheus text format: %v", err)
	}
	return fams
}

// value returns the single value of an unlabelled family, or of the series
// with label reason=reason.
func value(t *testing.T, fams map[string]*dto.MetricFamily, name, reason string) float64 {
	t.Helper()
	f, ok := fams[name]
	if !ok {
		t.Fatalf("family %s missing", name)
	}
	for _, m := range f.GetMetric() {
		match := reason == ""
		for _, l := range m.GetLabel() {
			if l.GetName() == "reason" && l.GetValue() == reason {
				match = true
			}
		}
		if !match {
			continue
		}
		switch f.GetType() {
		case dto.MetricType_COUNTER:
			return m.GetCounter().GetValue()
		case dto.MetricType_GAUGE:
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("family %s has no series for reason %q", name, reason)
	return 0
}

func newServer(t *testing.T, m *metrics.Metrics) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestScrapeParsesAndMovesAsFed(t *testing.T) {
	m, err := metrics.New(metrics.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := newServer(t, m)

	// Every family is there from the start, at zero.
	fams := scrape(t, srv)
	for _, name := range []string{
		"rtcio_rooms", "rtcio_sockets", "rtcio_peer_connections", "rtcio_publications", "rtcio_down_tracks",
		"rtcio_recordings_active", "rtcio_forwarded_packets_total", "rtcio_forwarded_bytes_total",
		"rtcio_received_packets_total", "rtcio_nacks_received_total", "rtcio_nacks_sent_total",
		"rtcio_retransmitted_packets_total", "rtcio_plis_received_total", "rtcio_keyframe_requests_sent_total",
		"rtcio_keyframe_cache_hits_total", "rtcio_keyframe_cache_misses_total", "rtcio_recording_bytes_written_total",
		"rtcio_subscriber_first_keyframe_seconds", "go_goroutines", "process_cpu_seconds_total",
	} {
		if _, ok := fams[name]; !ok {
			t.Errorf("family %s missing", name)
		}
	}
	if v := value(t, fams, "rtcio_forwarded_packets_total", ""); v != 0 {
		t.Errorf("forwarded before feeding: %v", v)
	}
	if got := fams["rtcio_rooms"].GetType(); got != dto.MetricType_GAUGE {
		t.Errorf("rooms is %v, want a gauge", got)
	}
	if got := fams["rtcio_forwarded_packets_total"].GetType(); got != dto.MetricType_COUNTER {
		t.Errorf("forwarded_packets_total is %v, want a counter", got)
	}

	// A source reading atomics owned elsewhere, plus direct feeding.
	var packets, bytes, drops atomic.Uint64
	remove := m.AddSource(func(s *metrics.Snapshot) {
		s.PacketsForwarded += packets.Load()
		s.BytesForwarded += bytes.Load()
		s.DownTracks += 2
		s.AddDropped("queue_full", drops.Load())
	})
	defer remove()
	packets.Store(100)
	bytes.Store(120_000)
	drops.Store(3)
	m.Direct.Rooms.Add(1)
	m.Direct.Sockets.Add(3)
	m.Direct.RecordingBytes.Add(4096)
	m.Refused("rate_limited").Add(2)
	m.Refused("Payload Too-Large").Inc()
	m.Dropped("queue_full").Add(1) // adds to the source's queue_full
	m.ObserveFirstKeyframe(30 * time.Millisecond)
	m.ObserveFirstKeyframe(3 * time.Second)

	fams = scrape(t, srv)
	for _, c := range []struct {
		name, reason string
		want         float64
	}{
		{"rtcio_forwarded_packets_total", "", 100},
		{"rtcio_forwarded_bytes_total", "", 120_000},
		{"rtcio_down_tracks", "", 2},
		{"rtcio_rooms", "", 1},
		{"rtcio_sockets", "", 3},
		{"rtcio_recording_bytes_written_total", "", 4096},
		{"rtcio_dropped_packets_total", "queue_full", 4},
		{"rtcio_signaling_refused_total", "rate_limited", 2},
		{"rtcio_signaling_refused_total", "payload_too_large", 1},
	} {
		if got := value(t, fams, c.name, c.reason); got != c.want {
			t.Errorf("%s{reason=%q} = %v, want %v", c.name, c.reason, got, c.want)
		}
	}
	h := fams["rtcio_subscriber_first_keyframe_seconds"].GetMetric()[0].GetHistogram()
	if h.GetSampleCount() != 2 || h.GetSampleSum() < 3.02 || h.GetSampleSum() > 3.04 {
		t.Errorf("histogram count %d sum %v, want 2 and 3.03", h.GetSampleCount(), h.GetSampleSum())
	}
	for _, b := range h.GetBucket() {
		if b.GetUpperBound() == 0.05 && b.GetCumulativeCount() != 1 {
			t.Errorf("le=0.05 bucket holds %d, want 1", b.GetCumulativeCount())
		}
	}

	// Moving on: more packets, a room closes.
	packets.Add(50)
	m.Direct.Rooms.Add(-1)
	fams = scrape(t, srv)
	if got := value(t, fams, "rtcio_forwarded_packets_total", ""); got != 150 {
		t.Errorf("forwarded after 50 more: %v", got)
	}
	if got := value(t, fams, "rtcio_rooms", ""); got != 0 {
		t.Errorf("rooms after one closed: %v", got)
	}
}

func TestRemovedSourceKeepsItsCountersButNotItsGauges(t *testing.T) {
	m, err := metrics.New(metrics.Options{NoRuntimeMetrics: true})
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Uint64
	remove := m.AddSource(func(s *metrics.Snapshot) {
		s.PacketsForwarded += n.Load()
		s.Publications++
		s.AddDropped("too_old", 1)
	})
	n.Store(10)
	if s := m.Snapshot(); s.PacketsForwarded != 10 || s.Publications != 1 {
		t.Fatalf("live source: %+v", s)
	}
	n.Store(25) // counted after the last scrape, before removal
	remove()
	remove() // idempotent
	s := m.Snapshot()
	if s.PacketsForwarded != 25 || s.Publications != 0 || s.Dropped["too_old"] != 1 {
		t.Errorf("after removal: forwarded %d publications %d dropped %v, want 25, 0, too_old=1",
			s.PacketsForwarded, s.Publications, s.Dropped)
	}
}

func TestReasonsAreCleanedAndBounded(t *testing.T) {
	m, err := metrics.New(metrics.Options{NoRuntimeMetrics: true})
	if err != nil {
		t.Fatal(err)
	}
	srv := newServer(t, m)
	m.Refused("").Inc()
	m.Refused("\xff\"quote\n").Inc()
	for i := range 200 {
		m.Refused("reason-" + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + string(rune('0'+i/26))).Inc()
	}
	// A source reporting an unbounded set too.
	remove := m.AddSource(func(s *metrics.Snapshot) {
		for i := range 150 {
			s.AddDropped(strings.Repeat("z", i%50)+"\x00", 1)
		}
	})
	defer remove()

	fams := scrape(t, srv) // parses, so every label value was valid
	for _, name := range []string{"rtcio_signaling_refused_total", "rtcio_dropped_packets_total"} {
		series := fams[name].GetMetric()
		if len(series) == 0 || len(series) > 65 {
			t.Errorf("%s has %d series, want 1..65", name, len(series))
		}
		var total float64
		for _, s := range series {
			total += s.GetCounter().GetValue()
			for _, l := range s.GetLabel() {
				if strings.Trim(l.GetValue(), "abcdefghijklmnopqrstuvwxyz0123456789_") != "" {
					t.Errorf("%s reason %q not cleaned", name, l.GetValue())
				}
			}
		}
		want := map[string]float64{"rtcio_signaling_refused_total": 202, "rtcio_dropped_packets_total": 150}[name]
		if total != want {
			t.Errorf("%s sums to %v, want %v (nothing lost to the bound)", name, total, want)
		}
	}
	if got := value(t, fams, "rtcio_signaling_refused_total", "other"); got < 200-64 {
		t.Errorf("reasons past the bound: other = %v, want at least %d", got, 200-64)
	}

	// Below the bound, odd reasons keep their own (cleaned) series.
	m2, err := metrics.New(metrics.Options{NoRuntimeMetrics: true})
	if err != nil {
		t.Fatal(err)
	}
	m2.Refused("").Inc()
	m2.Refused("Bad JSON!").Add(2)
	fams = scrape(t, newServer(t, m2))
	if got := value(t, fams, "rtcio_signaling_refused_total", "unknown"); got != 1 {
		t.Errorf("empty reason counted as unknown %v times", got)
	}
	if got := value(t, fams, "rtcio_signaling_refused_total", "bad_json_"); got != 2 {
		t.Errorf("\"Bad JSON!\" counted as bad_json_ %v times", got)
	}
}

func TestNoGlobalRegistryAndInstancesAreIndependent(t *testing.T) {
	a, err := metrics.New(metrics.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := metrics.New(metrics.Options{Namespace: "edge"})
	if err != nil {
		t.Fatal(err)
	}
	a.Direct.Rooms.Add(5)
	if b.Snapshot().Rooms != 0 {
		t.Error("two Metrics share state")
	}
	fams, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if strings.HasPrefix(f.GetName(), "rtcio_") || strings.HasPrefix(f.GetName(), "edge_") {
			t.Errorf("%s registered on the global default registry", f.GetName())
		}
	}
	bf := scrape(t, newServer(t, b))
	if _, ok := bf["edge_rooms"]; !ok {
		t.Error("namespace option ignored")
	}
}
