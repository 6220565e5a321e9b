// Package logthrottle lets one log line through per interval and counts
// the rest, so that a client repeating a refused request cannot flood the
// log.
package logthrottle

import (
	"sync"
	"time"
)

// Throttle lets one log line through per second and counts the others, so
// that a client repeating a refused request cannot flood the log. The zero
// value is ready to use.
type Throttle struct {
	mu         sync.Mutex
	last       time.Time
	suppressed int
}

// Do runs log, with the number of lines suppressed since the last one, at
// most once per second.
func (t *Throttle) Do(log func(suppressed int)) {
	t.mu.Lock()
	now := time.Now()
	if now.Sub(t.last) < time.Second {
		t.suppressed++
		t.mu.Unlock()
		return
	}
	n := t.suppressed
	t.last, t.suppressed = now, 0
	t.mu.Unlock()
	log(n)
}
