package loadtest

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

// sizesTried runs SearchMax against a server that completes every size up
// to capacity, and returns the best size and the sizes tried in order.
func sizesTried(t *testing.T, lo, hi, start, resolution, capacity int) (int, []int) {
	t.Helper()
	best, trials, err := SearchMax(context.Background(), lo, hi, start, resolution, func(_ context.Context, n int) (Trial, error) {
		return Trial{Complete: n <= capacity}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var sizes []int
	for _, tr := range trials {
		if tr.Complete != (tr.Size <= capacity) {
			t.Fatalf("trial %+v: Complete does not match what try said", tr)
		}
		sizes = append(sizes, tr.Size)
	}
	return best, sizes
}

func TestSearchMax(t *testing.T) {
	for _, tc := range []struct {
		name                           string
		lo, hi, start, resolution, cap int
		wantBest                       int
		wantSizes                      []int
	}{
		{"doubles then bisects", 2, 200, 4, 1, 37, 37, []int{4, 8, 16, 32, 64, 48, 40, 36, 38, 37}},
		{"coarse resolution stops early", 2, 200, 4, 4, 37, 36, []int{4, 8, 16, 32, 64, 48, 40, 36}},
		{"limit reached", 2, 50, 4, 1, 1000, 50, []int{4, 8, 16, 32, 50}},
		{"start fails", 2, 200, 16, 1, 5, 5, []int{16, 8, 4, 6, 5}},
		{"nothing completes", 2, 200, 4, 1, 0, 1, []int{4, 2}},
		{"start clamped to the range", 2, 10, 40, 1, 7, 7, []int{10, 5, 7, 8}},
		{"exactly a power of two", 1, 100, 1, 1, 16, 16, []int{1, 2, 4, 8, 16, 32, 24, 20, 18, 17}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			best, sizes := sizesTried(t, tc.lo, tc.hi, tc.start, tc.resolution, tc.cap)
			if best != tc.wantBest || !slices.Equal(sizes, tc.wantSizes) {
				t.Fatalf("best %d after %v, want %d after %v", best, sizes, tc.wantBest, tc.wantSizes)
			}
			for i, n := range sizes {
				if slices.Contains(sizes[:i], n) {
					t.Fatalf("size %d tried twice: %v", n, sizes)
				}
			}
		})
	}
}

func TestSearchMaxErrors(t *testing.T) {
	if _, _, err := SearchMax(context.Background(), 5, 4, 4, 1, nil); err == nil {
		t.Fatal("an empty range was searched")
	}
	boom := errors.New("boom")
	best, trials, err := SearchMax(context.Background(), 1, 100, 4, 1, func(_ context.Context, n int) (Trial, error) {
		if n > 8 {
			return Trial{}, boom
		}
		return Trial{Complete: true}, nil
	})
	if !errors.Is(err, boom) || best != 8 || len(trials) != 2 {
		t.Fatalf("best %d, %d trials, err %v; want 8, 2, boom", best, len(trials), err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, trials, err := SearchMax(ctx, 1, 100, 4, 1, func(context.Context, int) (Trial, error) {
		return Trial{Complete: true}, nil
	}); !errors.Is(err, context.Canceled) || len(trials) != 0 {
		t.Fatalf("a cancelled search ran %d trials, err %v", len(trials), err)
	}
}

func TestCriterion(t *testing.T) {
	c := DefaultCriterion()
	good := func() *Result {
		return &Result{LossTotal: 0.2, JoinFirstMs: Dist{Max: 9000}}
	}
	if ok, why := c.Complete(good()); !ok {
		t.Fatalf("a complete run failed: %s", why)
	}
	for _, tc := range []struct {
		name string
		mut  func(*Result)
		want string
	}{
		{"missing", func(r *Result) { r.Missing = 3 }, "3 streams missing"},
		{"late", func(r *Result) { r.JoinFirstMs.Max = 10_001 }, "arrived 10001 ms after"},
		{"loss", func(r *Result) { r.LossTotal = 0.5 }, "loss 0.500%"},
		{"error", func(r *Result) { r.Errors = []string{"the gateway refused 1 session descriptions"} }, "refused"},
	} {
		r := good()
		tc.mut(r)
		if ok, why := c.Complete(r); ok || !strings.Contains(why, tc.want) {
			t.Errorf("%s: complete %v, reason %q, want %q", tc.name, ok, why, tc.want)
		}
	}
	if ok, _ := (Criterion{Within: time.Second, MaxLossPercent: 1}).Complete(nil); ok {
		t.Error("no result counted as complete")
	}
}

// A trial judges a run by the criterion, turns a run error or a run past
// TrialTimeout into an incomplete trial, and fails only when the search
// itself is cancelled.
func TestTrial(t *testing.T) {
	opts := MaxOptions{Criterion: DefaultCriterion(), TrialTimeout: 20 * time.Millisecond}
	var told []Trial
	opts.OnTrial = func(server string, tr Trial) {
		if server != "x" {
			t.Errorf("told of server %q", server)
		}
		told = append(told, tr)
	}
	cfg := Config{Scenario: Meeting}
	run := func(ctx context.Context, c Config) (*Result, error) {
		switch c.Publishers {
		case 5:
			return &Result{Participants: 5}, nil
		case 6:
			return &Result{Participants: 6, LossTotal: 3}, nil
		case 7:
			return nil, errors.New("join refused")
		default: // a run that never ends by itself
			<-ctx.Done()
			return nil, ctx.Err()
		}
	}
	try := trial("x", run, cfg, opts)
	for _, tc := range []struct {
		size     int
		complete bool
		reason   string
	}{
		{5, true, ""},
		{6, false, "loss 3.000%"},
		{7, false, "join refused"},
		{8, false, "did not finish within 20ms"},
	} {
		tr, err := try(context.Background(), tc.size)
		if err != nil || tr.Size != tc.size || tr.Complete != tc.complete || !strings.Contains(tr.Reason, tc.reason) {
			t.Errorf("size %d: %+v, %v; want complete %v, reason %q", tc.size, tr, err, tc.complete, tc.reason)
		}
	}
	if len(told) != 4 {
		t.Errorf("OnTrial told %d trials, want 4", len(told))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := trial("x", run, cfg, MaxOptions{})(ctx, 8); !errors.Is(err, context.Canceled) {
		t.Errorf("a cancelled search: %v", err)
	}
}
