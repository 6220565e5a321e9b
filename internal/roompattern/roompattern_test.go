package roompattern_test

import (
	"testing"

	"github.com/rtcio-gateway/rtcio-gateway/internal/roompattern"
)

func TestMatch(t *testing.T) {
	for _, c := range []struct {
		pattern, room string
		want          bool
	}{
		{"standup", "standup", true}, {"standup", "standup-1", false},
		{"standup-*", "standup-1", true}, {"standup-*", "standup-", true}, {"standup-*", "standup", false},
		{"*", "anything", true}, {"*", "", true}, {"", "", true}, {"", "x", false},
		{"a*b", "a*b", true}, {"a*b", "axb", false}, // only a trailing star is a wildcard
	} {
		if got := roompattern.Match(c.pattern, c.room); got != c.want {
			t.Errorf("Match(%q, %q) = %v, want %v", c.pattern, c.room, got, c.want)
		}
	}
	if !roompattern.Any([]string{"x", "team-*"}, "team-a") || roompattern.Any(nil, "x") {
		t.Error("Any")
	}
}
