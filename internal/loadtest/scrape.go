package loadtest

import (
	"context"
	"fmt"
	"net/http"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// gatewayRefusals reads the gateway's signaling refusals from its /metrics:
// per reason, plus "descriptions" for the session descriptions refused (a
// meeting that forms needs both to stay at zero for offers and answers).
func gatewayRefusals(ctx context.Context, baseURL string) (map[string]float64, error) {
	fams, err := scrapeMetrics(ctx, baseURL)
	if err != nil {
		return nil, err
	}
	out := make(map[string]float64)
	if f := fams["rtcio_signaling_refused_total"]; f != nil {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" {
					out[l.GetValue()] += m.GetCounter().GetValue()
				}
			}
		}
	}
	if f := fams["rtcio_signaling_descriptions_refused_total"]; f != nil {
		for _, m := range f.GetMetric() {
			if v := m.GetCounter().GetValue(); v > 0 {
				out["descriptions"] += v
			}
		}
	}
	return out, nil
}

// refusalsOf adds up the refusals of every gateway of a run.
func refusalsOf(ctx context.Context, urls []string) (map[string]float64, error) {
	sum := make(map[string]float64)
	for _, u := range urls {
		r, err := gatewayRefusals(ctx, u)
		if err != nil {
			return nil, err
		}
		for k, v := range r {
			sum[k] += v
		}
	}
	return sum, nil
}

// scrapeMetrics reads a gateway's /metrics.
func scrapeMetrics(ctx context.Context, baseURL string) (map[string]*dto.MetricFamily, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, baseURL+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := oneShotClient().Do(req)
	if err != nil {
		return nil, fmt.Errorf("loadtest: scrape metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("loadtest: scrape metrics: %s", resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("loadtest: parse metrics: %w", err)
	}
	return fams, nil
}
