package main

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// Malformed signaling gets a 400 with a reason; nothing panics and nothing
// is left running. (The media path is exercised through the real binary by
// internal/loadtest's smoke tests.)
func TestRejectsBadSignaling(t *testing.T) {
	fwd, err := newForwarder(0, 0, time.Millisecond, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(fwd.routes())
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	defer func() {
		srv.Close()
		fwd.close()
	}()
	cases := []struct {
		path, body, want string
	}{
		{"/publish?participant=1", "{not json", "session description"},
		{"/publish?participant=1", strings.Repeat("x", maxSDP+10), "too large"},
		{"/subscribe?participant=1", "", "want"},
		{"/subscribe?participant=1&want=-3", "", "want"},
		{"/answer?session=nope", `{"type":"answer","sdp":""}`, "unknown session"},
	}
	for _, c := range cases {
		resp, err := client.Post(srv.URL+c.path, "application/json", strings.NewReader(c.body))
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		buf := make([]byte, 512)
		n, _ := resp.Body.Read(buf)
		b.Write(buf[:n])
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(b.String(), c.want) {
			t.Errorf("POST %s: %d %q, want 400 mentioning %q", c.path, resp.StatusCode, b.String(), c.want)
		}
	}
}
