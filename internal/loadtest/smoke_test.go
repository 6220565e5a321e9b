package loadtest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// binaries builds the gateway and the bare forwarder once per test binary.
var binaries = sync.OnceValues(func() (Setup, error) {
	dir := buildDir
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	gw, err := Build(ctx, "./cmd/rtcio-gateway", dir)
	if err != nil {
		return Setup{}, err
	}
	bare, err := Build(ctx, "./cmd/bare-forwarder", dir)
	if err != nil {
		return Setup{}, err
	}
	return Setup{GatewayBin: gw, BareBin: bare, Log: testLogger()}, nil
})

func smokeSetup(t testing.TB) Setup {
	t.Helper()
	s, err := binaries()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// smokeConfig is small and short: correctness, not performance. The
// drain is generous because the test may run under -race on a busy machine,
// where the last packets of the window (and their retransmissions) can take
// hundreds of milliseconds to arrive.
func smokeConfig(scenario string, pubs, subs int) Config {
	return Config{
		Scenario: scenario, Publishers: pubs, Subscribers: subs,
		Video: true, Audio: true,
		Ramp: 50, Warmup: 300 * time.Millisecond, Duration: 2 * time.Second,
		Drain: 1500 * time.Millisecond, SettleTimeout: 20 * time.Second,
	}
}

// assertComplete checks that every participant received every stream it
// should have, with no loss inside the window, and that the figures the
// report is built from are there.
func assertComplete(t testing.TB, r *Result, wantParticipants, wantVideoStreams int) {
	t.Helper()
	if len(r.Errors) > 0 {
		t.Errorf("%s: run errors: %v", r.Target, r.Errors)
	}
	if r.Missing != 0 {
		t.Errorf("%s: %d streams never arrived", r.Target, r.Missing)
	}
	if len(r.Loss) != wantParticipants {
		t.Fatalf("%s: loss rows for %d participants, want %d", r.Target, len(r.Loss), wantParticipants)
	}
	for _, l := range r.Loss {
		if l.Expected == 0 || l.Received != l.Expected {
			t.Errorf("%s: %s received %d of %d packets in the window", r.Target, l.Name, l.Received, l.Expected)
		}
	}
	if r.BadPackets != 0 {
		t.Errorf("%s: %d packets without a valid trailer", r.Target, r.BadPackets)
	}
	if r.Forwarded == 0 || r.LatencyUs.Count == 0 || r.TargetCPU <= 0 || r.RSSEnd <= 0 {
		t.Errorf("%s: empty measurements: forwarded %d, latency samples %d, cpu %v, rss %d",
			r.Target, r.Forwarded, r.LatencyUs.Count, r.TargetCPU, r.RSSEnd)
	}
	if r.JoinKeyMs.Count != wantVideoStreams {
		t.Errorf("%s: %d (participant, video stream) pairs saw a keyframe, want %d", r.Target, r.JoinKeyMs.Count, wantVideoStreams)
	}
}

// One publisher, three subscribers, through the real gateway binary and
// through the bare forwarder, as the baseline mode runs them.
func TestSmokeFanoutWithBaseline(t *testing.T) {
	s := smokeSetup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	rs, err := s.Compare(ctx, smokeConfig(Fanout, 1, 3))
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 2 || rs[0].Target != "gateway" || rs[1].Target != "bare" {
		t.Fatalf("want a gateway and a bare result, got %d", len(rs))
	}
	for _, r := range rs {
		// The publisher receives nothing; three subscribers get two
		// streams each.
		assertComplete(t, r, 3, 3)
		if r.Subscribers != 3 || r.Streams != 2 {
			t.Errorf("%s: %d subscribers, %d streams", r.Target, r.Subscribers, r.Streams)
		}
	}
}

// Everyone publishes the repository's fixtures and receives everyone else.
func TestSmokeMeetingFixtures(t *testing.T) {
	s := smokeSetup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cfg := smokeConfig(Meeting, 3, 0)
	cfg.Media = Media{Source: "fixture", FixtureDir: fixtureDir(t)}
	r, err := s.RunGateway(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Three participants, each receiving the two others' video.
	assertComplete(t, r, 3, 6)
}

func TestSmokeAudioRoom(t *testing.T) {
	s := smokeSetup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r, err := s.RunGateway(ctx, smokeConfig(AudioRoom, 2, 2))
	if err != nil {
		t.Fatal(err)
	}
	assertComplete(t, r, 4, 0)
}

// The --max search through both real servers, on tiny sizes: meetings of 2
// and 3 (the limit), each on a fresh server. The criterion is lenient (a
// loaded test machine must not decide the outcome): this checks the
// search's wiring, not the servers' capacity.
func TestSmokeMaxSearch(t *testing.T) {
	s := smokeSetup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cfg := smokeConfig(Meeting, 0, 0)
	var told []string
	res, err := s.Max(ctx, cfg, MaxOptions{
		Start: 2, Limit: 3, Resolution: 1,
		Criterion: Criterion{Within: time.Minute, MaxLossPercent: 100},
		OnTrial:   func(server string, tr Trial) { told = append(told, fmt.Sprintf("%s/%d", server, tr.Size)) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"gateway/2", "gateway/3", "bare/2", "bare/3"}; !slices.Equal(told, want) {
		t.Fatalf("trials %v, want %v", told, want)
	}
	for i, m := range res {
		if m.Server != []string{"gateway", "bare"}[i] || m.Best != 3 {
			t.Fatalf("%s: largest complete %d, want 3 (trials %+v)", m.Server, m.Best, m.Trials)
		}
		r := m.BestResult()
		if r == nil || r.Participants != 3 || r.Target != m.Server {
			t.Fatalf("%s: best run %+v", m.Server, r)
		}
		// The last joiner got the two others' video.
		if r.LastJoinKeyMs <= 0 {
			t.Errorf("%s: last joiner's first keyframe not measured", m.Server)
		}
	}
}
