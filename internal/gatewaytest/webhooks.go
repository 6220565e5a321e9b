package gatewaytest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/rtcio-gateway/rtcio-gateway/gateway/webhook"
)

// WebhookLog is a webhook receiver that keeps every signed event it was
// sent (an unsigned or badly signed one is answered 401 and not kept).
type WebhookLog struct {
	// URL is where the gateway posts (webhooks.urls).
	URL string

	mu      sync.Mutex
	events  []webhook.Event
	arrived chan struct{}
}

// StartWebhookLog starts a receiver checking signatures with secret; it
// stops when the test ends.
func StartWebhookLog(t testing.TB, secret string) *WebhookLog {
	h := &WebhookLog{arrived: make(chan struct{}, 1)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := webhook.Verify([]byte(secret), r.Header, body, time.Now(), time.Minute); err != nil {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var ev webhook.Event
		if err := json.Unmarshal(body, &ev); err != nil {
			t.Errorf("webhook body: %v", err)
			return
		}
		h.mu.Lock()
		h.events = append(h.events, ev)
		h.mu.Unlock()
		select {
		case h.arrived <- struct{}{}:
		default:
		}
	}))
	t.Cleanup(srv.Close)
	h.URL = srv.URL
	return h
}

// Events returns a copy of the events received so far, in arrival order.
func (h *WebhookLog) Events() []webhook.Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]webhook.Event(nil), h.events...)
}

// WaitFor waits until cond holds for the events received so far, or fails
// the test after timeout.
func (h *WebhookLog) WaitFor(t testing.TB, what string, timeout time.Duration, cond func([]webhook.Event) bool) {
	t.Helper()
	deadline := time.After(timeout)
	for !cond(h.Events()) {
		select {
		case <-h.arrived:
		case <-deadline:
			t.Fatalf("no %s webhook within %v (received: %d events)", what, timeout, len(h.Events()))
		}
	}
}

// Wait returns the first event that matches, waiting for it to arrive.
func (h *WebhookLog) Wait(t testing.TB, what string, timeout time.Duration, match func(webhook.Event) bool) webhook.Event {
	t.Helper()
	var found webhook.Event
	h.WaitFor(t, what, timeout, func(evs []webhook.Event) bool {
		for _, ev := range evs {
			if match(ev) {
				found = ev
				return true
			}
		}
		return false
	})
	return found
}
