package webhook

import (
	"net/http"
	"testing"
	"time"
)

func TestBackoffGrowsWithJitterAndCap(t *testing.T) {
	base, maxWait := 100*time.Millisecond, 2*time.Second
	for attempt := 1; attempt <= 40; attempt++ {
		full := min(base<<min(attempt-1, 10), maxWait)
		seen := map[time.Duration]bool{}
		for range 50 {
			d := backoff(base, maxWait, attempt)
			if d < full/2 || d > full {
				t.Fatalf("attempt %d: wait %v outside [%v, %v]", attempt, d, full/2, full)
			}
			seen[d] = true
		}
		if len(seen) < 2 {
			t.Errorf("attempt %d: no jitter in 50 draws", attempt)
		}
	}
}

func TestRetryableStatuses(t *testing.T) {
	for code, want := range map[int]bool{
		http.StatusBadRequest: false, http.StatusUnauthorized: false, http.StatusNotFound: false,
		http.StatusFound: false, http.StatusRequestTimeout: true, http.StatusTooManyRequests: true,
		http.StatusInternalServerError: true, http.StatusServiceUnavailable: true,
	} {
		if got := retryable(statusError{code: code}); got != want {
			t.Errorf("retryable(%d) = %v, want %v", code, got, want)
		}
	}
}
