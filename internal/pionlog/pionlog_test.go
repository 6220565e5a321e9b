package pionlog_test

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/rtcio-gateway/rtcio-gateway/internal/pionlog"
)

// TestThrottledAndLevelled: a pion error repeated a thousand times is one
// line (in the gateway's format, with the count of what was suppressed
// once the next line gets through), pion's info is below the gateway's
// info level, and a watch sees every error.
func TestThrottledAndLevelled(t *testing.T) {
	var buf bytes.Buffer
	f := pionlog.New(slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})))
	seen := 0
	f.Watch = func(scope string) func(string) {
		if scope != "pc" {
			return nil
		}
		return func(string) { seen++ }
	}
	l := f.NewLogger("pc")
	for i := range 1000 {
		l.Errorf("Incoming unhandled RTP ssrc(%d)", i)
	}
	l.Info("signaling state changed")
	lines := strings.Count(buf.String(), "\n")
	if lines != 1 || !strings.Contains(buf.String(), `"pion":"pc"`) {
		t.Errorf("got %d lines, want 1 JSON line scoped pion=pc:\n%s", lines, buf.String())
	}
	if seen != 1000 {
		t.Errorf("watch saw %d errors, want 1000", seen)
	}
}
