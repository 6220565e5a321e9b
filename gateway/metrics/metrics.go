// Package metrics is the gateway's Prometheus surface: the metric families
// an operator watches (rooms, sockets, peer connections, publications,
// down-tracks; packets and bytes forwarded; drops by reason; NACKs,
// retransmissions, PLIs; keyframe-cache hits; signaling refusals by reason;
// recordings; time from a subscriber's join to its first keyframe), on a
// registry of its own and served by Handler at /metrics.
//
// The media plane already counts everything in atomics, so the usual way to
// feed these metrics is a Source: a function called on each scrape that adds
// its current counts to a Snapshot. The hot path then makes no Prometheus
// call at all. Code without counters of its own can increment the atomics in
// Direct, or the per-reason counters from Dropped and Refused, instead.
// Scrape cost grows with the number of sources, not with traffic.
//
// A removed source's counters are kept (its gauges are not), so totals never
// go backwards when a room closes.
package metrics

import (
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// DefaultNamespace prefixes every metric name: rtcio_rooms, ...
const DefaultNamespace = "rtcio"

// DefaultFirstKeyframeBuckets spans what a viewer notices: under a quarter
// second is instant (the keyframe cache), several seconds is a black tile.
func DefaultFirstKeyframeBuckets() []float64 {
	return []float64{0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16}
}

// Options configures New. The zero value is ready to use.
type Options struct {
	// Namespace prefixes metric names (default "rtcio").
	Namespace string
	// FirstKeyframeBuckets are the histogram buckets, in seconds, of
	// subscriber join to first keyframe (default
	// DefaultFirstKeyframeBuckets).
	FirstKeyframeBuckets []float64
	// NoRuntimeMetrics leaves out the Go runtime and process collectors
	// (go_*, process_*).
	NoRuntimeMetrics bool
	// Logger receives errors met while serving /metrics.
	Logger *slog.Logger
}

// Metrics holds one gateway's metrics. It is safe for concurrent use.
type Metrics struct {
	// Direct is added to what the sources report; increment it where no
	// counter exists yet.
	Direct Counters

	reg           *prometheus.Registry
	log           *slog.Logger
	firstKeyframe prometheus.Histogram
	estimates     prometheus.Histogram
	rembBitrates  prometheus.Histogram
	dropped       *reasonCounters
	refused       *reasonCounters

	// mu is held for a whole scrape, so adding or removing a source never
	// interleaves with one and a total is never counted twice.
	mu      sync.Mutex
	sources map[uint64]Source
	nextID  uint64
	retired Snapshot // counters of removed sources
}

// Source adds its current values to s. It is called on every scrape with
// the Metrics' lock held: it must be quick and must not call AddSource or a
// remove function.
type Source func(s *Snapshot)

// New returns Metrics on a registry of their own.
func New(opts Options) (*Metrics, error) {
	ns := opts.Namespace
	if ns == "" {
		ns = DefaultNamespace
	}
	buckets := opts.FirstKeyframeBuckets
	if len(buckets) == 0 {
		buckets = DefaultFirstKeyframeBuckets()
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	m := &Metrics{
		reg:     prometheus.NewRegistry(),
		log:     log.With("component", "metrics"),
		dropped: newReasonCounters(),
		refused: newReasonCounters(),
		sources: make(map[uint64]Source),
	}
	m.firstKeyframe = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: ns,
		Name:      "subscriber_first_keyframe_seconds",
		Help:      "Time from a subscriber joining a video track to the first keyframe it was sent.",
		Buckets:   buckets,
	})
	rates := []float64{100e3, 200e3, 300e3, 500e3, 750e3, 1e6, 1.5e6, 2e6, 3e6}
	m.estimates = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: ns,
		Name:      "subscriber_estimate_bits_per_second",
		Help:      "SFU subscribers' bandwidth estimates, one observation per subscriber per decision.",
		Buckets:   rates,
	})
	m.rembBitrates = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: ns,
		Name:      "remb_sent_bits_per_second",
		Help:      "The caps sent to publishers in REMB.",
		Buckets:   rates,
	})
	cs := []prometheus.Collector{newCollector(m, ns), m.firstKeyframe, m.estimates, m.rembBitrates}
	if !opts.NoRuntimeMetrics {
		cs = append(cs, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	for _, c := range cs {
		if err := m.reg.Register(c); err != nil {
			return nil, fmt.Errorf("metrics: register collector: %w", err)
		}
	}
	return m, nil
}

// Registry is the registry behind Handler, for callers that add metrics of
// their own.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// AddSource makes src part of every scrape until remove is called. remove
// is idempotent; it reads src once more so the source's final counts stay
// in the totals.
func (m *Metrics) AddSource(src Source) (remove func()) {
	m.mu.Lock()
	id := m.nextID
	m.nextID++
	m.sources[id] = src
	m.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			m.mu.Lock()
			defer m.mu.Unlock()
			var last Snapshot
			src(&last)
			m.retired.addCounters(&last)
			delete(m.sources, id)
		})
	}
}

// Dropped returns the counter of packets dropped for reason. Look it up once
// and keep the pointer: Add on it is one atomic operation. Reasons are
// cleaned to [a-z0-9_]; beyond a fixed number of distinct reasons, new ones
// share the counter "other".
func (m *Metrics) Dropped(reason string) *Counter { return m.dropped.get(reason) }

// Refused returns the counter of signaling messages refused for reason, as
// Dropped does for packets.
func (m *Metrics) Refused(reason string) *Counter { return m.refused.get(reason) }

// ObserveFirstKeyframe records how long a subscriber waited, from joining a
// video track to the first keyframe sent to it.
func (m *Metrics) ObserveFirstKeyframe(d time.Duration) { m.firstKeyframe.Observe(d.Seconds()) }

// ObserveEstimate records one subscriber's bandwidth estimate.
func (m *Metrics) ObserveEstimate(bps uint64) { m.estimates.Observe(float64(bps)) }

// ObserveREMB records a cap sent to a publisher.
func (m *Metrics) ObserveREMB(bps uint64) {
	m.Direct.REMBSent.Add(1)
	m.rembBitrates.Observe(float64(bps))
}

// Snapshot returns the current values: the sum of Direct, every source and
// the removed sources' counters. Tests and the admin API can read it without
// parsing the Prometheus text.
func (m *Metrics) Snapshot() Snapshot { return m.snapshot() }

func (m *Metrics) snapshot() Snapshot {
	m.mu.Lock()
	defer m.mu.Unlock()
	var s Snapshot
	s.addCounters(&m.retired)
	m.Direct.addTo(&s)
	for _, src := range m.sources {
		src(&s)
	}
	m.dropped.addTo(&s, (*Snapshot).AddDropped)
	m.refused.addTo(&s, (*Snapshot).AddRefused)
	return s
}

// Handler serves the registry in the Prometheus text format (or OpenMetrics
// when the scraper asks for it).
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:          slogPrinter{m.log},
		ErrorHandling:     promhttp.ContinueOnError,
		Registry:          m.reg,
		EnableOpenMetrics: true,
	})
}

// slogPrinter adapts slog to promhttp's Println-style error log.
type slogPrinter struct{ log *slog.Logger }

func (p slogPrinter) Println(v ...any) { p.log.Error("serving /metrics", "err", fmt.Sprint(v...)) }
