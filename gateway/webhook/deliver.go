package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"
)

const userAgent = "rtcio-gateway-webhook/1"

// run is one URL's sender: events leave its queue in order, one at a time,
// so a receiver sees them in the order they happened (retries included).
func (n *Notifier) run(ctx context.Context, t *target) {
	for {
		select {
		case q, ok := <-t.queue:
			if !ok {
				return
			}
			n.deliver(ctx, t, q)
		case <-ctx.Done():
			n.abandon(t)
			return
		}
	}
}

// abandon counts what is still queued once the sender must stop.
func (n *Notifier) abandon(t *target) {
	lost := 0
	for {
		select {
		case _, ok := <-t.queue:
			if !ok {
				n.logAbandoned(t, lost)
				return
			}
			lost++
			n.dropped.Add(1)
		default:
			n.logAbandoned(t, lost)
			return
		}
	}
}

func (n *Notifier) logAbandoned(t *target, lost int) {
	if lost > 0 {
		t.log.Warn("webhook sender stopped with events still queued", "abandoned", lost)
	}
}

// deliver tries one event on one URL until it is accepted, refused for good,
// or out of attempts, age or time.
func (n *Notifier) deliver(ctx context.Context, t *target, q queued) {
	log := t.log.With("event_id", q.id, "event_type", q.typ)
	for attempt := 1; ; attempt++ {
		if ctx.Err() != nil {
			n.dropped.Add(1)
			log.Warn("webhook abandoned at shutdown", "attempt", attempt)
			return
		}
		retryAfter, err := n.post(ctx, t, q, attempt)
		if err == nil {
			n.delivered.Add(1)
			log.Debug("webhook delivered", "attempt", attempt)
			return
		}
		if ctx.Err() != nil {
			n.dropped.Add(1)
			log.Warn("webhook abandoned at shutdown", "attempt", attempt, "err", err)
			return
		}
		if !retryable(err) {
			n.failed.Add(1)
			log.Error("webhook refused by receiver, not retried", "attempt", attempt, "err", err)
			return
		}
		if attempt >= n.cfg.MaxAttempts {
			n.failed.Add(1)
			log.Error("webhook failed, attempts exhausted", "attempts", attempt, "err", err)
			return
		}
		wait := backoff(n.cfg.InitialBackoff, n.cfg.MaxBackoff, attempt)
		if retryAfter > wait {
			wait = min(retryAfter, n.cfg.MaxBackoff)
		}
		if age := time.Since(q.at) + wait; age > n.cfg.MaxAge {
			n.failed.Add(1)
			log.Error("webhook failed, event too old to retry", "attempts", attempt, "age", age.Round(time.Millisecond), "err", err)
			return
		}
		log.Warn("webhook attempt failed, will retry", "attempt", attempt, "retry_in", wait.Round(time.Millisecond), "err", err)
		timer := time.NewTimer(wait)
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			n.dropped.Add(1)
			log.Warn("webhook abandoned at shutdown while waiting to retry", "attempt", attempt)
			return
		}
		n.retried.Add(1)
	}
}

// statusError is a non-2xx answer.
type statusError struct{ code int }

func (e statusError) Error() string { return fmt.Sprintf("receiver answered %d", e.code) }

// retryable tells a passing problem from a receiver's considered refusal:
// a malformed or unauthorised request will not get better by resending it.
func retryable(err error) bool {
	var se statusError
	if !errors.As(err, &se) {
		return true // transport error: connection refused, reset, timeout
	}
	switch {
	case se.code == http.StatusRequestTimeout, se.code == http.StatusTooEarly,
		se.code == http.StatusTooManyRequests, se.code >= 500:
		return true
	}
	return false
}

// post makes one attempt. The returned duration is the receiver's
// Retry-After, when it sent one in seconds.
func (n *Notifier) post(ctx context.Context, t *target, q queued, attempt int) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.RequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url, bytes.NewReader(q.body))
	if err != nil {
		return 0, fmt.Errorf("build request: %w", err)
	}
	ts := time.Now().Unix()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set(HeaderEventID, q.id)
	req.Header.Set(HeaderEventType, string(q.typ))
	req.Header.Set(HeaderAttempt, strconv.Itoa(attempt))
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(HeaderSignature, Sign(n.secret, ts, q.body))
	resp, err := n.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("post: %w", err)
	}
	// Reading a bounded part of the body lets the connection be reused
	// without letting a receiver stream at us forever.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return 0, nil
	}
	var retryAfter time.Duration
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
		retryAfter = time.Duration(min(s, 3600)) * time.Second
	}
	return retryAfter, statusError{code: resp.StatusCode}
}

// backoff is the wait after failed attempt number attempt (1-based):
// base*2^(attempt-1) capped at maxWait, then jittered into [d/2, d] so that
// many gateways retrying against one recovering receiver spread out.
func backoff(base, maxWait time.Duration, attempt int) time.Duration {
	d := base
	for i := 1; i < attempt && d < maxWait; i++ {
		d *= 2
	}
	d = min(d, maxWait)
	half := d / 2
	return half + rand.N(d-half+1)
}
