// Package speaker finds a room's active speaker from the audio levels that
// publishers put in their RTP packets (RFC 6464: 0 is the loudest, 127 is
// silence, in -dBov). Each audio source's loudness above a floor is
// smoothed over a short window; another source takes over only after it
// has been clearly louder than the current speaker for a hold time, so a
// cough or a burst of cross-talk does not move the spotlight, and a
// speaker who pauses keeps it until someone else speaks.
package speaker

import (
	"math"
	"sync"
	"time"

	"github.com/rtcio-gateway/rtcio-gateway/internal/defaults"
)

// Config tunes the detector. The zero value uses the defaults.
type Config struct {
	// Floor is the level (in -dBov, RFC 6464) at or above which a packet
	// counts as silence. Default 60 (-60 dBov).
	Floor uint8
	// Window is the smoothing time constant of each source's loudness.
	// Default 300ms.
	Window time.Duration
	// Hold is how long a challenger must stay clearly louder than the
	// current speaker before it takes over. Default 400ms.
	Hold time.Duration
	// Margin is how much louder "clearly louder" is: the challenger's
	// score must exceed the speaker's times 1+Margin. Default 0.5.
	Margin float64
	// MinScore is the smoothed loudness (dB above Floor) a source needs to
	// count as speaking at all. Default 6.
	MinScore float64
	// Timeout: a source without packets for this long is silent.
	// Default 1s.
	Timeout time.Duration
}

func (c *Config) setDefaults() {
	defaults.Positive(&c.Floor, 60)
	defaults.Positive(&c.Window, 300*time.Millisecond)
	defaults.Positive(&c.Hold, 400*time.Millisecond)
	defaults.Positive(&c.Margin, 0.5)
	defaults.Positive(&c.MinScore, 6)
	defaults.Positive(&c.Timeout, time.Second)
}

// Detector follows one room's audio sources. It is safe for concurrent
// use: Observe is called from the sources' packet paths, Tick from the
// room's clock.
type Detector struct {
	cfg Config

	mu         sync.Mutex
	sources    map[string]*source
	current    string
	challenger string
	since      time.Time
}

type source struct {
	score float64 // smoothed dB above the floor
	last  time.Time
}

// New makes a detector.
func New(cfg Config) *Detector {
	cfg.setDefaults()
	return &Detector{cfg: cfg, sources: make(map[string]*source)}
}

// Observe takes one packet's audio level from source id at time at.
func (d *Detector) Observe(id string, level uint8, at time.Time) {
	x := 0.0
	if level < d.cfg.Floor {
		x = float64(d.cfg.Floor - level)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.sources[id]
	if s == nil {
		s = &source{last: at}
		d.sources[id] = s
	}
	// An exponential moving average whose weight follows the time since
	// the last packet, so it does not depend on the packet rate.
	dt := at.Sub(s.last)
	if dt < 0 {
		dt = 0
	}
	alpha := 1 - math.Exp(-float64(dt)/float64(d.cfg.Window))
	s.score += alpha * (x - s.score)
	s.last = at
}

// Remove forgets a source (its stream ended). If it was the speaker, the
// room has none until someone speaks.
func (d *Detector) Remove(id string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.sources, id)
	if d.current == id {
		d.current = ""
	}
	if d.challenger == id {
		d.challenger = ""
	}
}

// Current is the active speaker's id ("" for none yet).
func (d *Detector) Current() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.current
}

// Tick decides at time now; it returns the new speaker and the previous
// one when the speaker changed.
func (d *Detector) Tick(now time.Time) (speaker, previous string, changed bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	best, bestScore := "", 0.0
	for id, s := range d.sources {
		sc := d.scoreAt(s, now)
		if sc > bestScore || (sc == bestScore && id == d.current) {
			best, bestScore = id, sc
		}
	}
	if bestScore < d.cfg.MinScore || best == d.current {
		d.challenger = ""
		return d.current, "", false
	}
	curScore := 0.0
	if s := d.sources[d.current]; s != nil {
		curScore = d.scoreAt(s, now)
	}
	if bestScore <= curScore*(1+d.cfg.Margin) {
		d.challenger = ""
		return d.current, "", false
	}
	if d.challenger != best {
		d.challenger, d.since = best, now
	}
	// The first speaker of a silent room needs no hold: there is nobody
	// to flap with.
	if d.current != "" && now.Sub(d.since) < d.cfg.Hold {
		return d.current, "", false
	}
	previous, d.current, d.challenger = d.current, best, ""
	return d.current, previous, true
}

// scoreAt is s's loudness at now: nothing once it stopped sending.
func (d *Detector) scoreAt(s *source, now time.Time) float64 {
	if now.Sub(s.last) > d.cfg.Timeout {
		return 0
	}
	return s.score
}
