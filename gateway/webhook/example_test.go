package webhook_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/rtcio-gateway/rtcio-gateway/gateway/webhook"
)

// A gateway notifies a receiver, which checks the signature before trusting
// the event.
func Example() {
	secret := "shared-secret"
	got := make(chan string, 1)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := webhook.Verify([]byte(secret), r.Header, body, time.Now(), 5*time.Minute); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		got <- r.Header.Get(webhook.HeaderEventType)
	}))
	defer receiver.Close()

	n, err := webhook.New(context.Background(), webhook.Config{URLs: []string{receiver.URL}, Secret: secret})
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = n.Notify(webhook.Event{Type: webhook.RoomStarted, Room: "standup"})
	fmt.Println(<-got, "verified")
	_ = n.Close(context.Background())
	// Output: room_started verified
}
