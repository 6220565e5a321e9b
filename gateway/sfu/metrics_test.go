package sfu_test

import (
	"net/http"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// metricsToken is the admin token the metrics tests' gateway has: by
// default /metrics on the client-facing listener needs it.
const metricsToken = "metrics-admin-token"

// scrape reads /metrics and parses it as the Prometheus text format.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+metricsToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics is not Prometheus text: %v", err)
	}
	return fams
}

func value(t *testing.T, fams map[string]*dto.MetricFamily, name string) float64 {
	t.Helper()
	f := fams[name]
	if f == nil || len(f.Metric) == 0 {
		t.Fatalf("metric %s missing", name)
	}
	m := f.Metric[0]
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	return 0
}

// TestMetricsWithPublisherAndTwoSubscribers: /metrics parses, shows the
// room's peers, publications and down-tracks, and its packet counters move.
func TestMetricsWithPublisherAndTwoSubscribers(t *testing.T) {
	gw, _ := startSFU(t)
	const room = "metrics"
	p := dial(t, gw.URL, room)
	st := publishFixture(t, p.Socket, "camera", "m-cam", map[string]any{"name": "p"})
	s1, s2 := dial(t, gw.URL, room), dial(t, gw.URL, room)
	s1.waitRTP(t, 20, trackIDs(st)...)
	s2.waitRTP(t, 20, trackIDs(st)...)

	first := scrape(t, gw.URL)
	for name, want := range map[string]float64{
		"rtcio_rooms": 1, "rtcio_sockets": 3, "rtcio_peer_connections": 3,
		"rtcio_publications": 2, "rtcio_down_tracks": 4,
	} {
		if got := value(t, first, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if got := value(t, first, "rtcio_subscriber_first_keyframe_seconds"); got < 4 {
		t.Errorf("first-keyframe histogram has %v samples, want one per down-track (4)", got)
	}
	s1.waitRTP(t, 60, trackIDs(st)...)
	second := scrape(t, gw.URL)
	for _, name := range []string{"rtcio_received_packets_total", "rtcio_forwarded_packets_total", "rtcio_forwarded_bytes_total"} {
		a, b := value(t, first, name), value(t, second, name)
		if !(a > 0 && b > a) {
			t.Errorf("%s did not move: %v then %v", name, a, b)
		}
	}
	if value(t, second, "rtcio_forwarded_packets_total") < value(t, second, "rtcio_received_packets_total") {
		t.Errorf("two subscribers got fewer packets than the publisher sent")
	}
}
