package sfu_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/rtcio-gateway/rtcio-gateway/gateway/webhook"
	"github.com/rtcio-gateway/rtcio-gateway/internal/gatewaytest"
)

// TestWebhooksFromARoom: a local receiver gets, with valid signatures, the
// room, participant and stream events of a room's life.
func TestWebhooksFromARoom(t *testing.T) {
	const secret = "webhook-secret-0123456789abcdef"
	var mu sync.Mutex
	var got []webhook.EventType
	arrived := make(chan struct{}, 64)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := webhook.Verify([]byte(secret), r.Header, body, time.Now(), time.Minute); err != nil {
			t.Errorf("bad signature: %v", err)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		mu.Lock()
		got = append(got, webhook.EventType(r.Header.Get(webhook.HeaderEventType)))
		mu.Unlock()
		arrived <- struct{}{}
	}))
	defer recv.Close()

	cfg := gatewaytest.SFUConfig()
	cfg.Webhooks.URLs = []string{recv.URL}
	cfg.Webhooks.Secret = secret
	gw := gatewaytest.StartGateway(t, cfg)
	a := dial(t, gw.URL, "hooks")
	publishFixture(t, a.Socket, "camera", "hook-cam", map[string]any{"name": "a"})
	b := dial(t, gw.URL, "hooks")
	b.waitRTP(t, 1, "video-hook-cam")
	_ = a.Close()
	_ = b.Close()

	want := []webhook.EventType{webhook.RoomStarted, webhook.ParticipantJoined, webhook.StreamPublished,
		webhook.StreamUnpublished, webhook.ParticipantLeft, webhook.RoomFinished}
	deadline := time.After(waitFor)
	for {
		mu.Lock()
		seen := map[webhook.EventType]bool{}
		for _, e := range got {
			seen[e] = true
		}
		all := true
		for _, w := range want {
			all = all && seen[w]
		}
		snapshot := append([]webhook.EventType(nil), got...)
		mu.Unlock()
		if all {
			return
		}
		select {
		case <-arrived:
		case <-deadline:
			t.Fatalf("webhooks received %v, want every one of %v", snapshot, want)
		}
	}
}
