package defaults_test

import (
	"testing"
	"time"

	"github.com/rtcio-gateway/rtcio-gateway/internal/defaults"
)

func TestPositive(t *testing.T) {
	n, neg, set := 0, -3, 7
	defaults.Positive(&n, 5)
	defaults.Positive(&neg, 5)
	defaults.Positive(&set, 5)
	if n != 5 || neg != 5 || set != 7 {
		t.Errorf("got %d %d %d, want 5 5 7", n, neg, set)
	}
	d := time.Duration(0)
	defaults.Positive(&d, time.Second)
	if d != time.Second {
		t.Errorf("duration %v", d)
	}
}
