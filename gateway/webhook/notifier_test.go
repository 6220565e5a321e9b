package webhook_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rtcio-gateway/rtcio-gateway/gateway/webhook"
)

const testSecret = "test-secret-0123456789"

// delivery is what a receiver saw of one POST.
type delivery struct {
	header http.Header
	body   []byte
}

// receiver is a local HTTP server that records every POST and answers with
// the status that answer returns for the nth request (1-based).
type receiver struct {
	srv  *httptest.Server
	got  chan delivery
	mu   sync.Mutex
	hits int
}

func newReceiver(t *testing.T, answer func(n int) int) *receiver {
	t.Helper()
	rc := &receiver{got: make(chan delivery, 64)}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("read body: %v", err)
		}
		rc.mu.Lock()
		rc.hits++
		n := rc.hits
		rc.mu.Unlock()
		rc.got <- delivery{header: r.Header.Clone(), body: body}
		w.WriteHeader(answer(n))
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) count() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.hits
}

func next(t *testing.T, ch <-chan delivery) delivery {
	t.Helper()
	select {
	case d := <-ch:
		return d
	case <-time.After(10 * time.Second):
		t.Fatal("no delivery within 10s")
		return delivery{}
	}
}

func always(code int) func(int) int { return func(int) int { return code } }

func newNotifier(t *testing.T, cfg webhook.Config) *webhook.Notifier {
	t.Helper()
	if cfg.Secret == "" {
		cfg.Secret = testSecret
	}
	if cfg.InitialBackoff == 0 {
		cfg.InitialBackoff = 5 * time.Millisecond
		cfg.MaxBackoff = 20 * time.Millisecond
	}
	n, err := webhook.New(t.Context(), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = n.Close(context.Background()) })
	return n
}

func TestEveryTypeArrivesSignedAtEveryURL(t *testing.T) {
	a, b := newReceiver(t, always(http.StatusOK)), newReceiver(t, always(http.StatusNoContent))
	n := newNotifier(t, webhook.Config{URLs: []string{a.srv.URL + "/hook", b.srv.URL + "/other?token=x"}})

	manifest := json.RawMessage(`{"room":"standup","tracks":[{"kind":"video","codec":"VP8","file":"a.webm"}]}`)
	var sent []webhook.Event
	for _, typ := range webhook.Types() {
		ev := webhook.Event{Type: typ, Room: "standup"}
		switch typ {
		case webhook.ParticipantJoined, webhook.ParticipantLeft:
			ev.Participant = &webhook.Participant{SocketID: "sock-1", Name: "Ada"}
		case webhook.StreamPublished, webhook.StreamUnpublished:
			ev.Participant = &webhook.Participant{SocketID: "sock-1"}
			ev.Stream = &webhook.Stream{ID: "ms-1", Event: "camera", Kinds: []string{"audio", "video"}}
		case webhook.RecordingFinished:
			ev.Recording = &webhook.Recording{ID: "rec-1", Manifest: manifest}
		}
		if err := n.Notify(ev); err != nil {
			t.Fatalf("Notify(%s): %v", typ, err)
		}
		sent = append(sent, ev)
	}

	for _, rc := range []*receiver{a, b} {
		ids := map[string]bool{}
		for i, want := range sent {
			d := next(t, rc.got)
			if err := webhook.Verify([]byte(testSecret), d.header, d.body, time.Now(), time.Minute); err != nil {
				t.Fatalf("delivery %d (%s): %v", i, want.Type, err)
			}
			if err := webhook.Verify([]byte("other-secret"), d.header, d.body, time.Now(), time.Minute); !errors.Is(err, webhook.ErrBadSignature) {
				t.Errorf("delivery %d verifies under the wrong secret: %v", i, err)
			}
			var ev webhook.Event
			if err := json.Unmarshal(d.body, &ev); err != nil {
				t.Fatalf("delivery %d body: %v", i, err)
			}
			// Order per URL is the order of Notify.
			if ev.Type != want.Type || d.header.Get(webhook.HeaderEventType) != string(want.Type) {
				t.Errorf("delivery %d is %s (header %s), want %s", i, ev.Type, d.header.Get(webhook.HeaderEventType), want.Type)
			}
			if ev.Room != "standup" || ev.CreatedAt.IsZero() {
				t.Errorf("delivery %d: room %q created_at %v", i, ev.Room, ev.CreatedAt)
			}
			if !strings.HasPrefix(ev.ID, "evt_") || ev.ID != d.header.Get(webhook.HeaderEventID) || ids[ev.ID] {
				t.Errorf("delivery %d: id %q, header id %q, repeated %v", i, ev.ID, d.header.Get(webhook.HeaderEventID), ids[ev.ID])
			}
			ids[ev.ID] = true
			if got := d.header.Get(webhook.HeaderAttempt); got != "1" {
				t.Errorf("delivery %d: attempt %q, want 1", i, got)
			}
			if ct := d.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("delivery %d: content type %q", i, ct)
			}
			switch ev.Type {
			case webhook.RecordingFinished:
				var compact bytes.Buffer
				_ = json.Compact(&compact, manifest)
				if ev.Recording == nil || ev.Recording.ID != "rec-1" || string(ev.Recording.Manifest) != compact.String() {
					t.Errorf("recording_finished carries %+v, want manifest %s", ev.Recording, compact.String())
				}
			case webhook.StreamPublished, webhook.StreamUnpublished:
				if ev.Stream == nil || ev.Stream.ID != "ms-1" || ev.Stream.Event != "camera" || len(ev.Stream.Kinds) != 2 {
					t.Errorf("%s carries stream %+v", ev.Type, ev.Stream)
				}
			case webhook.ParticipantJoined, webhook.ParticipantLeft:
				if ev.Participant == nil || ev.Participant.SocketID != "sock-1" || ev.Participant.Name != "Ada" {
					t.Errorf("%s carries participant %+v", ev.Type, ev.Participant)
				}
			}
		}
	}
	if err := n.Close(context.Background()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	want := uint64(2 * len(sent))
	if s := n.Stats(); s.Delivered != want || s.Failed != 0 || s.Dropped != 0 || s.Retried != 0 {
		t.Errorf("stats %+v, want %d delivered and nothing else", s, want)
	}
}

func TestReceiverFailingTwiceGetsTheEventOnTheThirdTry(t *testing.T) {
	rc := newReceiver(t, func(n int) int {
		if n <= 2 {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	n := newNotifier(t, webhook.Config{URLs: []string{rc.srv.URL}})
	if err := n.Notify(webhook.Event{Type: webhook.ParticipantJoined, Room: "r", Participant: &webhook.Participant{SocketID: "s"}}); err != nil {
		t.Fatal(err)
	}
	var id string
	var body []byte
	for attempt := 1; attempt <= 3; attempt++ {
		d := next(t, rc.got)
		if err := webhook.Verify([]byte(testSecret), d.header, d.body, time.Now(), time.Minute); err != nil {
			t.Fatalf("attempt %d: %v", attempt, err)
		}
		if got := d.header.Get(webhook.HeaderAttempt); got != strconv.Itoa(attempt) {
			t.Errorf("attempt header %q, want %d", got, attempt)
		}
		if attempt == 1 {
			id, body = d.header.Get(webhook.HeaderEventID), d.body
		} else if d.header.Get(webhook.HeaderEventID) != id || !bytes.Equal(d.body, body) {
			t.Errorf("attempt %d changed the event: id %q body %s, first was %q %s", attempt, d.header.Get(webhook.HeaderEventID), d.body, id, body)
		}
	}
	if err := n.Close(context.Background()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if s := n.Stats(); s.Delivered != 1 || s.Retried != 2 || s.Failed != 0 || s.Dropped != 0 {
		t.Errorf("stats %+v, want 1 delivered after 2 retries", s)
	}
	if rc.count() != 3 {
		t.Errorf("receiver hit %d times, want 3", rc.count())
	}
}

func TestFinalRefusalIsNotRetried(t *testing.T) {
	rc := newReceiver(t, always(http.StatusBadRequest))
	n := newNotifier(t, webhook.Config{URLs: []string{rc.srv.URL}})
	if err := n.Notify(webhook.Event{Type: webhook.RoomFinished, Room: "r"}); err != nil {
		t.Fatal(err)
	}
	if err := n.Close(context.Background()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if rc.count() != 1 {
		t.Errorf("receiver hit %d times, want 1", rc.count())
	}
	if s := n.Stats(); s.Failed != 1 || s.Delivered != 0 || s.Retried != 0 {
		t.Errorf("stats %+v, want one final failure", s)
	}
}

func TestAttemptsAreBounded(t *testing.T) {
	rc := newReceiver(t, always(http.StatusInternalServerError))
	n := newNotifier(t, webhook.Config{URLs: []string{rc.srv.URL}, MaxAttempts: 4})
	if err := n.Notify(webhook.Event{Type: webhook.RoomStarted, Room: "r"}); err != nil {
		t.Fatal(err)
	}
	if err := n.Close(context.Background()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if rc.count() != 4 {
		t.Errorf("receiver hit %d times, want MaxAttempts=4", rc.count())
	}
	if s := n.Stats(); s.Failed != 1 || s.Retried != 3 {
		t.Errorf("stats %+v, want 1 failed after 3 retries", s)
	}
}

func TestOldEventsAreNotRetried(t *testing.T) {
	rc := newReceiver(t, always(http.StatusBadGateway))
	n := newNotifier(t, webhook.Config{URLs: []string{rc.srv.URL}, MaxAge: time.Minute})
	// An event that happened long ago (queued behind an outage, say) gets
	// one try and no retry.
	if err := n.Notify(webhook.Event{Type: webhook.RoomStarted, Room: "r", CreatedAt: time.Now().Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := n.Close(context.Background()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if rc.count() != 1 {
		t.Errorf("receiver hit %d times, want 1", rc.count())
	}
	if s := n.Stats(); s.Failed != 1 || s.Retried != 0 {
		t.Errorf("stats %+v", s)
	}
}

func TestNotifyNeverBlocksAndCountsDrops(t *testing.T) {
	entered := make(chan struct{}, 8)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	defer close(release)
	n := newNotifier(t, webhook.Config{URLs: []string{srv.URL}, QueueSize: 1})

	ev := webhook.Event{Type: webhook.StreamPublished, Room: "r"}
	if err := n.Notify(ev); err != nil {
		t.Fatal(err)
	}
	select {
	case <-entered: // the sender is now stuck in the first POST
	case <-time.After(10 * time.Second):
		t.Fatal("first POST never arrived")
	}
	for range 3 { // one fills the queue, two are dropped
		if err := n.Notify(ev); err != nil {
			t.Fatal(err)
		}
	}
	if s := n.Stats(); s.Dropped != 2 {
		t.Fatalf("stats %+v, want 2 dropped", s)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := n.Close(ctx)
	if err == nil || !strings.Contains(err.Error(), "abandoned 2") {
		t.Errorf("Close = %v, want 2 abandoned (in flight and queued)", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Close took %v against a hung receiver", d)
	}
	if s := n.Stats(); s.Dropped != 4 || s.Delivered != 0 {
		t.Errorf("stats %+v, want 4 dropped", s)
	}
	if err := n.Notify(ev); !errors.Is(err, webhook.ErrClosed) {
		t.Errorf("Notify after Close = %v, want ErrClosed", err)
	}
}

func TestCancelledContextStopsSenders(t *testing.T) {
	rc := newReceiver(t, always(http.StatusServiceUnavailable))
	ctx, cancel := context.WithCancel(context.Background())
	n, err := webhook.New(ctx, webhook.Config{
		URLs: []string{rc.srv.URL}, Secret: testSecret,
		InitialBackoff: time.Hour, MaxAge: 2 * time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Notify(webhook.Event{Type: webhook.RoomStarted, Room: "r"}); err != nil {
		t.Fatal(err)
	}
	next(t, rc.got) // first try failed; the sender now waits an hour
	cancel()
	// Close returns at once: the senders have already stopped.
	closeCtx, closeCancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer closeCancel()
	_ = n.Close(closeCtx) // the sender may have counted its drop before Close looked
	if closeCtx.Err() != nil {
		t.Error("Close waited for its own deadline")
	}
	if s := n.Stats(); s.Dropped != 1 {
		t.Errorf("stats %+v, want the waiting event dropped", s)
	}
}

func TestBadEventsAndConfigAreRefused(t *testing.T) {
	rc := newReceiver(t, always(http.StatusOK))
	n := newNotifier(t, webhook.Config{URLs: []string{rc.srv.URL}})
	if err := n.Notify(webhook.Event{Type: "room_exploded"}); err == nil {
		t.Error("unknown event type accepted")
	}
	err := n.Notify(webhook.Event{Type: webhook.RecordingFinished, Recording: &webhook.Recording{ID: "x", Manifest: json.RawMessage(`{"half":`)}})
	if err == nil || !strings.Contains(err.Error(), "manifest") {
		t.Errorf("invalid manifest: %v", err)
	}

	for name, cfg := range map[string]webhook.Config{
		"no secret":   {URLs: []string{rc.srv.URL}},
		"no urls":     {Secret: "s"},
		"relative":    {URLs: []string{"/hook"}, Secret: "s"},
		"ftp":         {URLs: []string{"ftp://127.0.0.1/x"}, Secret: "s"},
		"unparseable": {URLs: []string{"http://[::1"}, Secret: "s"},
	} {
		if _, err := webhook.New(t.Context(), cfg); err == nil {
			t.Errorf("%s: New accepted %+v", name, cfg)
		}
	}
}
