// Package bwe decides how much media each subscriber of a room can take
// and what to ask of each publisher, for clients that send one encoding
// per track (no simulcast, no SVC): the two levers are the publisher's
// send rate (REMB) and pausing a subscriber's video.
//
// A subscriber's estimate comes from what its browser already sends: REMB
// (Chrome sends it for streams without transport-wide sequence numbers)
// and the loss in its receiver reports, held against what the gateway
// sent it. A subscriber is congested when its estimate is clearly below
// what it is being sent. The room Policy turns the estimates into one cap
// per publisher (following its congested subscribers, never below a
// floor, with bounded steps down) and into pause and resume decisions per
// subscriber (lowest priority first, with backoff against flapping).
//
// Everything here is arithmetic on reported numbers and a clock passed
// in: no goroutines, no I/O.
package bwe

import (
	"math"
	"time"

	"github.com/rtcio-gateway/rtcio-gateway/internal/defaults"
)

// EstimatorConfig tunes a subscriber's estimate. Zero values use the
// defaults.
type EstimatorConfig struct {
	// Max is the estimate before any feedback (default 3 Mbit/s).
	Max uint64
	// Window over which the sent rate is measured (default 2s).
	Window time.Duration
	// LossHigh: above this fraction lost the loss-based limit falls
	// (default 0.10); LossLow: below it the limit grows (default 0.02).
	LossHigh, LossLow float64
	// Growth per second of the loss-based limit without loss (default
	// 0.08, 8%).
	Growth float64
	// Congested: the estimate is below this fraction of the sent rate
	// (default 0.85), and the subscriber reports loss of at least
	// LossLow.
	Congested float64
	// Stale: loss reports older than this are ignored (default 3s). A
	// REMB older than this no longer holds the estimate down, but lets it
	// grow back by StaleGrowth per second from the REMB's value (default
	// 0.12, 12%): a browser stops sending REMB when it receives no video
	// (its video paused), and the last value it sent is the best guess
	// there is until a resumed video probes the link again.
	Stale       time.Duration
	StaleGrowth float64
}

func (c *EstimatorConfig) setDefaults() {
	defaults.Positive(&c.Max, 3_000_000)
	defaults.Positive(&c.Window, 2*time.Second)
	defaults.Positive(&c.LossHigh, 0.10)
	defaults.Positive(&c.LossLow, 0.02)
	defaults.Positive(&c.Growth, 0.08)
	defaults.Positive(&c.Congested, 0.85)
	defaults.Positive(&c.Stale, 3*time.Second)
	defaults.Positive(&c.StaleGrowth, 0.12)
}

// Estimator is one subscriber's estimate. It is not safe for concurrent
// use: its owner (the subscriber's RTCP path) serialises calls.
type Estimator struct {
	cfg EstimatorConfig

	remb     uint64
	rembAt   time.Time
	lossCap  uint64
	lossAt   time.Time
	lastLoss float64

	sent []sample // bytes sent, newest last, within Window

	// held is the estimate kept while the subscriber receives no video
	// (Hold), from heldAt; zero heldAt when not held.
	held   uint64
	heldAt time.Time
}

type sample struct {
	at    time.Time
	bytes int
}

// NewEstimator makes an estimate that starts at cfg.Max.
func NewEstimator(cfg EstimatorConfig) *Estimator {
	cfg.setDefaults()
	return &Estimator{cfg: cfg, lossCap: cfg.Max}
}

// OnSent records bytes sent to the subscriber (media and retransmissions).
func (e *Estimator) OnSent(bytes int, now time.Time) {
	e.sent = append(e.sent, sample{at: now, bytes: bytes})
	e.trim(now)
}

func (e *Estimator) trim(now time.Time) {
	i := 0
	for i < len(e.sent) && now.Sub(e.sent[i].at) >= e.cfg.Window {
		i++
	}
	if i > 0 {
		e.sent = append(e.sent[:0], e.sent[i:]...)
	}
}

// SentRate is what the subscriber was sent over the window, in bit/s.
func (e *Estimator) SentRate(now time.Time) uint64 {
	e.trim(now)
	total := 0
	for _, s := range e.sent {
		total += s.bytes
	}
	return uint64(float64(total*8) / e.cfg.Window.Seconds())
}

// OnREMB takes the subscriber's receiver estimate, in bit/s.
func (e *Estimator) OnREMB(bps uint64, now time.Time) {
	e.remb, e.rembAt = bps, now
}

// OnLoss takes a receiver report's fraction lost (the RTCP field: n/256).
// Above LossHigh the loss-based limit falls to the sent rate times
// (1 - loss/2); below LossLow it grows by Growth per second.
func (e *Estimator) OnLoss(fractionLost uint8, now time.Time) {
	loss := float64(fractionLost) / 256
	sent := e.SentRate(now)
	switch {
	case loss > e.cfg.LossHigh && sent > 0:
		e.lossCap = min(e.lossCap, uint64(float64(sent)*(1-loss/2)))
	case loss < e.cfg.LossLow && !e.lossAt.IsZero():
		grow := 1 + e.cfg.Growth*now.Sub(e.lossAt).Seconds()
		e.lossCap = min(e.cfg.Max, uint64(float64(e.lossCap)*grow))
	}
	e.lossAt, e.lastLoss = now, loss
}

// Hold keeps the estimate at its value now while the subscriber receives
// no video (all paused): its feedback then describes audio alone (a
// browser's REMB falls to the audio's rate, then stops), so the estimate
// grows back from the held value by StaleGrowth per second, which makes a
// resume a probe after a while, until Release.
func (e *Estimator) Hold(now time.Time) {
	if e.heldAt.IsZero() {
		e.held = e.Estimate(now)
		e.heldAt = now
	}
}

// Release ends a Hold: video flows again, and feedback from before the
// pause no longer counts.
func (e *Estimator) Release() {
	if e.heldAt.IsZero() {
		return
	}
	e.heldAt = time.Time{}
	e.rembAt, e.lossAt = time.Time{}, time.Time{}
	e.lossCap, e.lastLoss = e.cfg.Max, 0
}

// Estimate is what the subscriber can take now, in bit/s: the smaller of
// its REMB (growing back once stale) and the loss-based limit, ignoring
// stale loss reports.
func (e *Estimator) Estimate(now time.Time) uint64 {
	if !e.heldAt.IsZero() {
		grown := float64(e.held) * math.Pow(1+e.cfg.StaleGrowth, now.Sub(e.heldAt).Seconds())
		return uint64(min(grown, float64(e.cfg.Max)))
	}
	est := e.cfg.Max
	if !e.rembAt.IsZero() {
		remb := float64(e.remb)
		if age := now.Sub(e.rembAt); age > e.cfg.Stale {
			remb *= math.Pow(1+e.cfg.StaleGrowth, (age - e.cfg.Stale).Seconds())
		}
		est = min(est, uint64(min(remb, float64(e.cfg.Max))))
	}
	if !e.lossAt.IsZero() && now.Sub(e.lossAt) <= e.cfg.Stale {
		est = min(est, e.lossCap)
	}
	return est
}

// Congested reports whether the subscriber cannot take its current
// media: it is losing packets and its estimate is clearly below what it
// is being sent. A low REMB alone is not enough: a busy receiver's
// delay-based estimate dips below its incoming rate without any
// congestion, and after a pause it restarts from where it was.
func (e *Estimator) Congested(now time.Time) bool {
	sent := e.SentRate(now)
	lossy := !e.lossAt.IsZero() && now.Sub(e.lossAt) <= e.cfg.Stale && e.lastLoss >= e.cfg.LossLow
	return lossy && sent > 0 && float64(e.Estimate(now)) < e.cfg.Congested*float64(sent)
}
