package loadtest

import (
	"context"
	"fmt"
	"time"
)

// Criterion decides whether a run formed completely: every participant got
// every stream it expects within Within of joining, the loss over the
// window stayed under MaxLossPercent, and the run reported no errors (no
// stream missing, no refused session description).
type Criterion struct {
	Within         time.Duration
	MaxLossPercent float64
}

// DefaultCriterion is the meetings-at-scale goal: every stream within 10 s
// of joining, loss under 0.5%.
func DefaultCriterion() Criterion {
	return Criterion{Within: 10 * time.Second, MaxLossPercent: 0.5}
}

// Complete reports whether r meets c, and when it does not, why.
func (c Criterion) Complete(r *Result) (bool, string) {
	switch {
	case r == nil:
		return false, "no result"
	case len(r.Errors) > 0:
		return false, r.Errors[0]
	case r.Missing > 0:
		return false, fmt.Sprintf("%d streams missing", r.Missing)
	case r.JoinFirstMs.Max > float64(c.Within.Milliseconds()):
		return false, fmt.Sprintf("a stream arrived %.0f ms after its participant joined (limit %v)", r.JoinFirstMs.Max, c.Within)
	case !(r.LossTotal < c.MaxLossPercent):
		return false, fmt.Sprintf("loss %.3f%% (limit %.3g%%)", r.LossTotal, c.MaxLossPercent)
	}
	return true, ""
}

// Trial is one size tried by a search.
type Trial struct {
	Size     int     `json:"size"`
	Complete bool    `json:"complete"`
	Reason   string  `json:"reason,omitempty"`
	Result   *Result `json:"result,omitempty"`
}

// SearchMax finds the largest size in [lo, hi] for which try reports a
// complete run: sizes double from start until one fails (or hi passes),
// then a binary search between the largest complete size and the smallest
// failed one narrows the gap to at most resolution. It assumes completeness
// only gets harder with size, so each size is tried at most once. It
// returns lo-1 when even lo fails. An error from try ends the search (a
// size that merely fails must be reported as an incomplete Trial, not as
// an error).
func SearchMax(ctx context.Context, lo, hi, start, resolution int, try func(ctx context.Context, size int) (Trial, error)) (best int, trials []Trial, err error) {
	if lo < 1 || hi < lo {
		return 0, nil, fmt.Errorf("loadtest: search range %d..%d", lo, hi)
	}
	start = min(max(start, lo), hi)
	resolution = max(resolution, 1)
	pass, fail := lo-1, hi+1 // largest complete, smallest incomplete
	attempt := func(n int) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		t, err := try(ctx, n)
		if err != nil {
			return fmt.Errorf("size %d: %w", n, err)
		}
		t.Size = n
		trials = append(trials, t)
		if t.Complete {
			pass = n
		} else {
			fail = n
		}
		return nil
	}
	for n := start; ; n = min(2*n, hi) {
		if err := attempt(n); err != nil {
			return pass, trials, err
		}
		if pass != n || n == hi {
			break
		}
	}
	for fail-pass > resolution {
		if err := attempt(pass + (fail-pass)/2); err != nil {
			return pass, trials, err
		}
	}
	return pass, trials, nil
}

// MaxOptions bound a search.
type MaxOptions struct {
	// Start is the first size tried, Limit the largest, Resolution the
	// gap between the largest complete and the smallest failed size at
	// which the search stops.
	Start, Limit, Resolution int
	Criterion                Criterion
	// TrialTimeout bounds one size's run, joins included (a server that
	// cannot even admit the participants would otherwise hold the search):
	// a run that does not end in time is an incomplete trial. 0 means no
	// bound but the search's context.
	TrialTimeout time.Duration
	// OnTrial, when set, is told of every trial as it ends.
	OnTrial func(server string, t Trial)
}

// MaxResult is one server's search.
type MaxResult struct {
	Server string  `json:"server"`
	Best   int     `json:"best"`
	Trials []Trial `json:"trials"`
}

// BestResult returns the run of the largest complete size, if any.
func (m MaxResult) BestResult() *Result {
	for _, t := range m.Trials {
		if t.Size == m.Best && t.Complete {
			return t.Result
		}
	}
	return nil
}

// SearchSize sets the size a search varies: the participants of a meeting,
// the subscribers (listeners) otherwise.
func SearchSize(cfg Config, n int) Config {
	if cfg.Scenario == Meeting {
		cfg.Publishers = n
	} else {
		cfg.Subscribers = n
	}
	return cfg
}

// Max searches the largest complete size for the gateway and, when BareBin
// is set, for the bare forwarder, each size on a freshly started server.
func (s Setup) Max(ctx context.Context, cfg Config, opts MaxOptions) ([]MaxResult, error) {
	lo := 1
	if cfg.Scenario == Meeting {
		lo = 2
	}
	s.CPUProfile = "" // many runs: no one profile to keep
	type server struct {
		name string
		run  func(context.Context, Config) (*Result, error)
	}
	servers := []server{{"gateway", s.RunGateway}}
	if s.BareBin != "" {
		servers = append(servers, server{"bare", s.RunBare})
	}
	var out []MaxResult
	for _, srv := range servers {
		try := trial(srv.name, srv.run, cfg, opts)
		best, trials, err := SearchMax(ctx, lo, opts.Limit, opts.Start, opts.Resolution, try)
		out = append(out, MaxResult{Server: srv.name, Best: best, Trials: trials})
		if err != nil {
			return out, fmt.Errorf("%s: %w", srv.name, err)
		}
	}
	return out, nil
}

// Validate checks the options.
func (o MaxOptions) Validate() error {
	if o.Start < 1 || o.Limit < o.Start || o.Resolution < 1 {
		return fmt.Errorf("loadtest: a search needs 1 <= start (%d) <= limit (%d) and a resolution >= 1 (%d)", o.Start, o.Limit, o.Resolution)
	}
	return nil
}

// trial makes SearchMax's try for one server: run the size (bounded by
// TrialTimeout), judge it by the criterion, tell OnTrial. Only the end of
// the search's own context is an error; every other failure is an
// incomplete trial.
func trial(server string, run func(context.Context, Config) (*Result, error), cfg Config, opts MaxOptions) func(context.Context, int) (Trial, error) {
	return func(ctx context.Context, n int) (Trial, error) {
		t := Trial{Size: n}
		tctx, cancel := ctx, context.CancelFunc(func() {})
		if opts.TrialTimeout > 0 {
			tctx, cancel = context.WithTimeout(ctx, opts.TrialTimeout)
		}
		res, err := run(tctx, SearchSize(cfg, n))
		cancel()
		switch {
		case err != nil && ctx.Err() != nil:
			return t, err
		case err != nil && tctx.Err() != nil:
			t.Reason = fmt.Sprintf("did not finish within %v: %v", opts.TrialTimeout, err)
		case err != nil:
			t.Reason = err.Error() // a size that cannot even start failed
		default:
			t.Result = res
			t.Complete, t.Reason = opts.Criterion.Complete(res)
		}
		if opts.OnTrial != nil {
			opts.OnTrial(server, t)
		}
		return t, nil
	}
}
