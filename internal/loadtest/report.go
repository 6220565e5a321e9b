package loadtest

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
)

// WriteTable prints results side by side, one column per result, and, when
// there are exactly two (gateway then bare), their ratio.
func WriteTable(w io.Writer, results ...*Result) error {
	if len(results) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	ratio := len(results) == 2 && results[0].Target == "gateway" && results[1].Target == "bare"
	head := []string{"metric"}
	for _, r := range results {
		head = append(head, r.Target)
	}
	if ratio {
		head = append(head, "gateway/bare")
	}
	row := func(name string, f func(*Result) float64, format string, withRatio bool) {
		cells := []string{name}
		for _, r := range results {
			cells = append(cells, fmt.Sprintf(format, f(r)))
		}
		if ratio {
			cell := ""
			if b := f(results[1]); withRatio && b != 0 {
				cell = fmt.Sprintf("%.2f", f(results[0])/b)
			}
			cells = append(cells, cell)
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t")+"\t")
	}
	r0 := results[0]
	fmt.Fprintf(w, "scenario %s: %d publishers, %d subscribers, %d streams, %s media, window %v\n",
		r0.Config.Scenario, r0.Config.Publishers, r0.Subscribers, r0.Streams, r0.Config.Media.Source, r0.Window.Round(1e6))
	fmt.Fprintln(tw, strings.Join(head, "\t")+"\t")
	row("forwarded packets/s", func(r *Result) float64 { return r.PacketsPerSecond }, "%.0f", true)
	row("forwarded Mbit/s", func(r *Result) float64 { return r.Mbps }, "%.1f", true)
	row("server CPU (cores)", func(r *Result) float64 { return r.TargetCPUCores }, "%.3f", true)
	row("server CPU us/packet", func(r *Result) float64 { return r.CPUPerPacket }, "%.2f", true)
	row("  of which user us/packet", func(r *Result) float64 { return r.UserPerPacket }, "%.2f", true)
	row("  of which kernel us/packet", func(r *Result) float64 { return r.SystemPerPacket }, "%.2f", true)
	row("load generator CPU (cores)", func(r *Result) float64 { return r.LoadgenCores }, "%.3f", false)
	row("loss total %", func(r *Result) float64 { return r.LossTotal }, "%.3f", false)
	row("loss worst subscriber %", func(r *Result) float64 { return r.LossMax }, "%.3f", false)
	row("missing streams", func(r *Result) float64 { return float64(r.Missing) }, "%.0f", false)
	row("latency p50 us", func(r *Result) float64 { return r.LatencyUs.P50 }, "%.0f", true)
	row("latency p99 us", func(r *Result) float64 { return r.LatencyUs.P99 }, "%.0f", true)
	row("latency max us", func(r *Result) float64 { return r.LatencyUs.Max }, "%.0f", true)
	row("join->first packet p50 ms", func(r *Result) float64 { return r.JoinFirstMs.P50 }, "%.1f", true)
	row("join->first packet max ms", func(r *Result) float64 { return r.JoinFirstMs.Max }, "%.1f", true)
	row("join->first keyframe p50 ms", func(r *Result) float64 { return r.JoinKeyMs.P50 }, "%.1f", true)
	row("join->first keyframe max ms", func(r *Result) float64 { return r.JoinKeyMs.Max }, "%.1f", true)
	row("last joiner first keyframe ms", func(r *Result) float64 { return r.LastJoinKeyMs }, "%.1f", true)
	row("offers per client p50", func(r *Result) float64 { return r.Offers.P50 }, "%.0f", true)
	row("offers per client per join", func(r *Result) float64 { return r.OffersPerJoin }, "%.2f", true)
	row("RSS per participant MiB", func(r *Result) float64 { return r.RSSPerParticipant / (1 << 20) }, "%.2f", true)
	row("RSS at end MiB", func(r *Result) float64 { return float64(r.RSSEnd) / (1 << 20) }, "%.1f", true)
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("loadtest: table: %w", err)
	}
	for _, r := range results {
		for _, e := range r.Errors {
			fmt.Fprintf(w, "%s: %s\n", r.Target, e)
		}
	}
	return nil
}

// Medians takes repeated runs (each a gateway result, optionally followed by
// a bare one) and returns, per position, a result whose table figures are
// the medians over the runs, each figure taken on its own. Quote these, not
// one run, on a machine shared with other work.
func Medians(runs [][]*Result) []*Result {
	if len(runs) == 0 {
		return nil
	}
	var out []*Result
	for pos := range runs[0] {
		var rs []*Result
		for _, run := range runs {
			if pos < len(run) {
				rs = append(rs, run[pos])
			}
		}
		m := *rs[0]
		m.Loss, m.Errors, m.KeyframeRequests = nil, nil, nil
		med := func(f func(*Result) *float64) {
			vals := make([]float64, len(rs))
			for i, r := range rs {
				vals[i] = *f(r)
			}
			*f(&m) = median(vals)
		}
		med(func(r *Result) *float64 { return &r.PacketsPerSecond })
		med(func(r *Result) *float64 { return &r.Mbps })
		med(func(r *Result) *float64 { return &r.TargetCPUCores })
		med(func(r *Result) *float64 { return &r.CPUPerPacket })
		med(func(r *Result) *float64 { return &r.LoadgenCores })
		med(func(r *Result) *float64 { return &r.UserPerPacket })
		med(func(r *Result) *float64 { return &r.SystemPerPacket })
		med(func(r *Result) *float64 { return &r.LossTotal })
		med(func(r *Result) *float64 { return &r.LossMax })
		med(func(r *Result) *float64 { return &r.LatencyUs.P50 })
		med(func(r *Result) *float64 { return &r.LatencyUs.P99 })
		med(func(r *Result) *float64 { return &r.LatencyUs.Max })
		med(func(r *Result) *float64 { return &r.JoinFirstMs.P50 })
		med(func(r *Result) *float64 { return &r.JoinFirstMs.Max })
		med(func(r *Result) *float64 { return &r.JoinKeyMs.P50 })
		med(func(r *Result) *float64 { return &r.JoinKeyMs.Max })
		med(func(r *Result) *float64 { return &r.LastJoinKeyMs })
		med(func(r *Result) *float64 { return &r.Offers.P50 })
		med(func(r *Result) *float64 { return &r.OffersPerJoin })
		med(func(r *Result) *float64 { return &r.RSSPerParticipant })
		ends := make([]float64, len(rs))
		missing := make([]float64, len(rs))
		for i, r := range rs {
			ends[i] = float64(r.RSSEnd)
			missing[i] = float64(r.Missing)
		}
		m.RSSEnd = int64(median(ends))
		m.Missing = int(median(missing))
		m.Target = rs[0].Target
		out = append(out, &m)
	}
	return out
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
