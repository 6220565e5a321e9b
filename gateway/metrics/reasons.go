package metrics

import (
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// maxReasons bounds the distinct reason labels of one family: reasons come
// from code, but one built from input by mistake must not blow up the
// number of series.
const maxReasons = 64

// otherReason collects whatever comes past maxReasons.
const otherReason = "other"

// Counter is a monotonic counter fed directly; Add is one atomic operation.
type Counter struct{ v atomic.Uint64 }

// Add adds n.
func (c *Counter) Add(n uint64) { c.v.Add(n) }

// Inc adds one.
func (c *Counter) Inc() { c.v.Add(1) }

// Load returns the current value.
func (c *Counter) Load() uint64 { return c.v.Load() }

// reasonCounters are the direct counters of one labelled family.
type reasonCounters struct {
	mu sync.Mutex
	m  map[string]*Counter
}

func newReasonCounters() *reasonCounters { return &reasonCounters{m: make(map[string]*Counter)} }

func (r *reasonCounters) get(reason string) *Counter {
	reason = cleanReason(reason)
	r.mu.Lock()
	defer r.mu.Unlock()
	if c, ok := r.m[reason]; ok {
		return c
	}
	if len(r.m) >= maxReasons {
		reason = otherReason
		if c, ok := r.m[reason]; ok {
			return c
		}
	}
	c := &Counter{}
	r.m[reason] = c
	return c
}

func (r *reasonCounters) addTo(s *Snapshot, add func(*Snapshot, string, uint64)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for reason, c := range r.m {
		add(s, reason, c.Load())
	}
}

// cleanReason makes a valid, tidy label value: lower case [a-z0-9_], at most
// 48 bytes, "unknown" when nothing is left.
func cleanReason(reason string) string {
	const maxLen = 48
	var b strings.Builder
	for _, r := range strings.ToLower(reason) {
		if b.Len() >= maxLen {
			break
		}
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r == '_' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	if b.Len() == 0 {
		return "unknown"
	}
	return b.String()
}

// boundReasons cleans the reasons a source reported and keeps at most
// maxReasons of them (the first in sorted order, so the choice is stable
// from one scrape to the next), the rest summed as "other".
func boundReasons(in map[string]uint64) map[string]uint64 {
	if len(in) == 0 {
		return nil
	}
	clean := make(map[string]uint64, len(in))
	for r, n := range in {
		clean[cleanReason(r)] += n
	}
	if len(clean) <= maxReasons {
		return clean
	}
	keys := make([]string, 0, len(clean))
	for r := range clean {
		if r != otherReason {
			keys = append(keys, r)
		}
	}
	slices.Sort(keys)
	out := make(map[string]uint64, maxReasons+1)
	if n, ok := clean[otherReason]; ok {
		out[otherReason] = n
	}
	for i, r := range keys {
		if i < maxReasons {
			out[r] = clean[r]
		} else {
			out[otherReason] += clean[r]
		}
	}
	return out
}
