package bwe_test

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/rtcio-gateway/rtcio-gateway/forwarding/bwe"
)

var t0 = time.Unix(1000, 0)

// feed sends 1,700 kbit/s to e for d, in 20 ms bursts, from at.
func feed(e *bwe.Estimator, at time.Time, d time.Duration) time.Time {
	for end := at.Add(d); at.Before(end); at = at.Add(20 * time.Millisecond) {
		e.OnSent(1_700_000/8/50, at)
	}
	return at
}

func TestEstimatorREMBAndLoss(t *testing.T) {
	e := bwe.NewEstimator(bwe.EstimatorConfig{})
	now := feed(e, t0, 2*time.Second)
	if got := e.SentRate(now); got < 1_600_000 || got > 1_800_000 {
		t.Fatalf("sent rate %d, want about 1.7 Mbit/s", got)
	}
	if e.Congested(now) || e.Estimate(now) != 3_000_000 {
		t.Fatalf("no feedback yet: congested %v, estimate %d", e.Congested(now), e.Estimate(now))
	}
	e.OnREMB(320_000, now)
	if e.Congested(now) || e.Estimate(now) != 320_000 {
		t.Errorf("REMB 320k under 1.7M sent, no loss: congested %v, estimate %d; want not congested", e.Congested(now), e.Estimate(now))
	}
	e.OnLoss(13, now) // 5% lost
	if !e.Congested(now) || e.Estimate(now) != 320_000 {
		t.Errorf("REMB 320k under 1.7M sent, 5%% lost: congested %v, estimate %d", e.Congested(now), e.Estimate(now))
	}
	// A stale REMB lets the estimate grow back, 12% a second, to the
	// maximum.
	later := now.Add(4 * time.Second)
	if got := e.Estimate(later); got != 358_400 {
		t.Errorf("4 s after the last REMB the estimate is %d, want 320k grown 12%% for 1 s", got)
	}
	if got := e.Estimate(now.Add(time.Minute)); got != 3_000_000 {
		t.Errorf("a minute after the last REMB the estimate is %d", got)
	}

	// Held while the video is paused: the estimate grows from its value
	// at the pause, whatever REMB the audio alone brings; released, the
	// old feedback is forgotten.
	e.Hold(now)
	e.OnREMB(30_000, now.Add(time.Second))
	if got := e.Estimate(now.Add(10 * time.Second)); got < 990_000 || got > 995_000 {
		t.Errorf("held 10 s from 320k: %d, want 320k grown 12%% a second", got)
	}
	e.Release()
	if got := e.Estimate(now.Add(10 * time.Second)); got != 3_000_000 || e.Congested(now.Add(10*time.Second)) {
		t.Errorf("released: estimate %d, congested %v", got, e.Congested(now.Add(10*time.Second)))
	}

	// Loss: 25% lost takes the limit to the sent rate times 0.875.
	e = bwe.NewEstimator(bwe.EstimatorConfig{})
	now = feed(e, t0, 2*time.Second)
	e.OnLoss(64, now)
	sent := e.SentRate(now)
	if got, want := e.Estimate(now), uint64(float64(sent)*0.875); got != want {
		t.Errorf("after 25%% loss: estimate %d, want %d", got, want)
	}
	// Without loss it grows 8% a second, up to the maximum.
	before := e.Estimate(now)
	for range 10 {
		now = now.Add(time.Second)
		e.OnLoss(0, now)
	}
	if got := e.Estimate(now); got <= before*2 {
		t.Errorf("10 s without loss: estimate %d from %d", got, before)
	}
}

// room runs a publisher with a strong and a weak subscriber through the
// policy, every 500 ms.
type room struct {
	p            *bwe.Policy
	now          time.Time
	weak         uint64 // the weak subscriber's estimate
	pauses, resu int
	caps         []uint64
	sentCaps     int
}

func newRoom() *room {
	return &room{p: bwe.NewPolicy(bwe.PolicyConfig{}), now: t0, weak: 3_000_000}
}

func (r *room) run(d time.Duration) {
	for end := r.now.Add(d); r.now.Before(end); r.now = r.now.Add(500 * time.Millisecond) {
		subs := []bwe.Subscriber{
			{ID: "strong", Estimate: 3_000_000, Audio: 32_000, Videos: []bwe.Video{{Key: "pub/video"}}},
			{ID: "weak", Estimate: r.weak, Congested: r.weak < 1_500_000 && !r.p.Paused("weak", "pub/video"), Audio: 32_000,
				Videos: []bwe.Video{{Key: "pub/video"}}},
		}
		dec := r.p.Decide(subs, r.now)
		r.pauses += len(dec.Paused)
		r.resu += len(dec.Resumed)
		if c, ok := dec.Caps["pub/video"]; ok {
			r.sentCaps++
			r.caps = append(r.caps, c)
		}
	}
}

func TestNoCongestionNoCost(t *testing.T) {
	r := newRoom()
	r.run(60 * time.Second)
	if r.sentCaps != 0 || r.pauses != 0 {
		t.Errorf("no congestion: %d caps sent, %d pauses", r.sentCaps, r.pauses)
	}
}

// TestWeakSubscriberCapsThePublisher: a subscriber that can take 350
// kbit/s brings the publisher's cap down to its share in bounded steps;
// its video is not paused.
func TestWeakSubscriberCapsThePublisher(t *testing.T) {
	r := newRoom()
	r.weak = 350_000
	r.run(10 * time.Second)
	if r.pauses != 0 {
		t.Fatalf("paused at 350 kbit/s")
	}
	last := uint64(3_000_000)
	for _, c := range r.caps {
		if float64(c) < 0.7*float64(last)-1 {
			t.Errorf("cap fell from %d to %d in one step", last, c)
		}
		last = c
	}
	if got := r.p.Cap("pub/video"); got != 350_000-32_000 {
		t.Errorf("cap %d, want the weak subscriber's share %d", got, 350_000-32_000)
	}
}

// TestVeryWeakSubscriberIsPausedNotTheRoom: at 150 kbit/s the weak
// subscriber's video is paused and the publisher stays uncapped (the floor
// protects the others); when the link recovers the video resumes after
// its backoff and the cap is lifted once.
func TestVeryWeakSubscriberIsPausedNotTheRoom(t *testing.T) {
	r := newRoom()
	r.weak = 150_000
	r.run(time.Second)
	if r.pauses != 1 || !r.p.Paused("weak", "pub/video") {
		t.Fatalf("at 150 kbit/s: %d pauses", r.pauses)
	}
	r.run(10 * time.Second)
	if got := r.p.Cap("pub/video"); got != 3_000_000 {
		t.Errorf("with the weak video paused the publisher is capped at %d", got)
	}
	r.weak = 3_000_000
	start := r.now
	for r.p.Paused("weak", "pub/video") && r.now.Sub(start) < 20*time.Second {
		r.run(500 * time.Millisecond)
	}
	if took := r.now.Sub(start); r.p.Paused("weak", "pub/video") || took > 5*time.Second {
		t.Errorf("resumed after %v (paused %v)", took, r.p.Paused("weak", "pub/video"))
	}
}

// TestEdgeDoesNotFlap: a link alternating between 150 kbit/s and 3 Mbit/s
// every 10 s for 60 s pauses and resumes at most 4 times.
func TestEdgeDoesNotFlap(t *testing.T) {
	r := newRoom()
	for i := range 6 {
		r.weak = []uint64{150_000, 3_000_000}[i%2]
		r.run(10 * time.Second)
	}
	if r.pauses > 4 || r.resu > 4 {
		t.Errorf("60 s at the edge: %d pauses, %d resumes", r.pauses, r.resu)
	}
	// And a link that hovers right at the floor does not flap either.
	r = newRoom()
	for i := range 120 {
		r.weak = []uint64{230_000, 250_000}[i%2]
		r.run(500 * time.Millisecond)
	}
	if r.pauses+r.resu > 2 {
		t.Errorf("hovering at the floor: %d pauses, %d resumes", r.pauses, r.resu)
	}
}

// TestLastingDipAfterCongestion: within the memory of a congestion, an
// estimate that stays clearly below the cap for 1.5 s pulls the cap down
// without any loss (the link's queue is growing again); a subscriber that
// was never congested does not, however long its estimate dips.
func TestLastingDipAfterCongestion(t *testing.T) {
	sub := func(id string, est uint64, congested bool) []bwe.Subscriber {
		return []bwe.Subscriber{{ID: id, Estimate: est, Congested: congested, Audio: 32_000, Videos: []bwe.Video{{Key: "v"}}}}
	}
	p := bwe.NewPolicy(bwe.PolicyConfig{})
	now := t0
	for range 10 {
		p.Decide(sub("weak", 700_000, true), now)
		now = now.Add(500 * time.Millisecond)
	}
	for range 10 { // the estimate climbs past what the link takes
		p.Decide(sub("weak", 900_000, false), now)
		now = now.Add(500 * time.Millisecond)
	}
	high := p.Cap("v")
	var after []uint64
	for range 6 { // and falls back, without loss
		p.Decide(sub("weak", 532_000, false), now)
		now = now.Add(500 * time.Millisecond)
		after = append(after, p.Cap("v"))
	}
	if after[1] != high || after[len(after)-1] >= high || after[len(after)-1] < 500_000 {
		t.Fatalf("cap %d, then %v over a lasting dip to a 500k share: want it held for 1 s, then down towards 500k", high, after)
	}

	healthy := bwe.NewPolicy(bwe.PolicyConfig{})
	for range 20 {
		if d := healthy.Decide(sub("ok", 500_000, false), now); len(d.Caps) != 0 {
			t.Fatalf("a never congested subscriber's dip capped the publisher: %v", d.Caps)
		}
		now = now.Add(500 * time.Millisecond)
	}
}

// TestSpeakerKeepsVideoLongest: a subscriber that cannot take three videos
// loses the lowest-priority ones first.
func TestSpeakerKeepsVideoLongest(t *testing.T) {
	p := bwe.NewPolicy(bwe.PolicyConfig{})
	sub := bwe.Subscriber{ID: "s", Estimate: 500_000, Congested: true, Audio: 64_000, Videos: []bwe.Video{
		{Key: "a", Priority: 0}, {Key: "speaker", Priority: 10}, {Key: "b", Priority: 1},
	}}
	d := p.Decide([]bwe.Subscriber{sub}, t0)
	if len(d.Paused) != 1 || d.Paused[0].Video != "a" {
		t.Fatalf("paused %+v, want only the lowest priority (a)", d.Paused)
	}
	sub.Estimate = 350_000
	d = p.Decide([]bwe.Subscriber{sub}, t0.Add(time.Second))
	if len(d.Paused) != 1 || d.Paused[0].Video != "b" || p.Paused("s", "speaker") {
		t.Fatalf("paused %+v; the speaker's video must stay", d.Paused)
	}
}

// TestCapFollowsTheEstimateAfterCongestion: once a weak subscriber stops
// losing packets, its publisher's cap rises only with its estimate for
// Memory, then only 5% a second above it (a gentle probe of the link),
// and is lifted once that probe passes Max.
func TestCapFollowsTheEstimateAfterCongestion(t *testing.T) {
	p := bwe.NewPolicy(bwe.PolicyConfig{})
	now := t0
	sub := func(est uint64, congested bool) []bwe.Subscriber {
		return []bwe.Subscriber{{ID: "weak", Estimate: est, Congested: congested, Audio: 32_000, Videos: []bwe.Video{{Key: "v"}}}}
	}
	for range 20 {
		p.Decide(sub(400_000, true), now)
		now = now.Add(500 * time.Millisecond)
	}
	if got := p.Cap("v"); got != 368_000 {
		t.Fatalf("congested at 400k: cap %d", got)
	}
	// No more loss; the estimate creeps up 20 kbit/s a decision.
	est := uint64(400_000)
	for range 10 {
		est += 20_000
		p.Decide(sub(est, false), now)
		now = now.Add(500 * time.Millisecond)
		if got := p.Cap("v"); got > est-32_000 {
			t.Fatalf("cap %d above the estimate's share %d right after the congestion", got, est-32_000)
		}
	}
	// Its REMB dips without loss for 1 s (a busy receiver): not
	// congestion, the cap holds instead of following it down.
	held := p.Cap("v")
	for range 2 {
		p.Decide(sub(200_000, false), now)
		now = now.Add(500 * time.Millisecond)
	}
	if got := p.Cap("v"); got != held {
		t.Fatalf("an estimate dip without loss moved the cap from %d to %d", held, got)
	}
	lastCongested := t0.Add(19 * 500 * time.Millisecond)
	share := float64(est - 32_000)
	for range 80 { // past Memory
		p.Decide(sub(est, false), now)
		now = now.Add(500 * time.Millisecond)
	}
	probed := now.Add(-500*time.Millisecond).Sub(lastCongested) - 30*time.Second
	bound := share * math.Pow(1.05, probed.Seconds())
	if got := float64(p.Cap("v")); got <= share || got > bound+1 {
		t.Errorf("%v past the memory the cap is %.0f, want above the estimate's share %.0f and at most %.0f", probed, got, share, bound)
	}
	for range 80 {
		p.Decide(sub(est, false), now)
		now = now.Add(500 * time.Millisecond)
	}
	if got := p.Cap("v"); got != 3_000_000 {
		t.Errorf("%v after the congestion the cap is %d, not lifted", now.Sub(lastCongested), got)
	}
}

// TestManyLowRateVideos: a member of a meeting of 29 cameras at 32 kbit/s
// (0.93 Mbit/s in all) whose estimate dips to 0.84 Mbit/s loses only the
// videos it cannot take, not all but estimate/floor of them, and gets
// every one back once its estimate recovers: a video needs its own rate,
// not the floor, when it sends less.
func TestManyLowRateVideos(t *testing.T) {
	p := bwe.NewPolicy(bwe.PolicyConfig{})
	videos := make([]bwe.Video, 29)
	for i := range videos {
		videos[i] = bwe.Video{Key: fmt.Sprintf("v%d", i), Rate: 32_000}
	}
	sub := bwe.Subscriber{ID: "s", Estimate: 840_000, Congested: true, Audio: 29 * 4_000, Videos: videos}
	d := p.Decide([]bwe.Subscriber{sub}, t0)
	// avail 724k over 32k each: 22 fit, 7 paused.
	if len(d.Paused) != 7 {
		t.Fatalf("%d of 29 videos paused at 840 kbit/s, want 7", len(d.Paused))
	}
	sub.Estimate, sub.Congested = 2_000_000, false
	now := t0
	resumed := 0
	for range 40 {
		now = now.Add(500 * time.Millisecond)
		resumed += len(p.Decide([]bwe.Subscriber{sub}, now).Resumed)
	}
	if resumed != 7 {
		t.Fatalf("%d of 7 videos resumed at 2 Mbit/s", resumed)
	}
}

// TestUncappedVideoPausedForWeakSubscriber: a congested subscriber that
// can take 500 kbit/s of a 1.7 Mbit/s video gets the publisher capped when
// the publisher can be asked, and the video paused when it cannot (it came
// over a cascade link); the paused video comes back once the subscriber
// can take 1.5 times its rate.
func TestUncappedVideoPausedForWeakSubscriber(t *testing.T) {
	for _, uncapped := range []bool{false, true} {
		p := bwe.NewPolicy(bwe.PolicyConfig{})
		sub := bwe.Subscriber{ID: "s", Estimate: 500_000, Congested: true,
			Videos: []bwe.Video{{Key: "v", Rate: 1_700_000, Uncapped: uncapped}}}
		d := p.Decide([]bwe.Subscriber{sub}, t0)
		if paused := len(d.Paused) == 1; paused != uncapped {
			t.Fatalf("uncapped %v: paused %v, want %v (caps %v)", uncapped, d.Paused, uncapped, d.Caps)
		}
		if !uncapped {
			// The cap steps down from Max (3 Mbit/s) towards the estimate.
			if c := d.Caps["v"]; c == 0 || c >= 3_000_000 {
				t.Fatalf("a cappable video's cap %d, want one below Max", c)
			}
			continue
		}
		sub.Congested = false
		now, resumed := t0, 0
		for _, est := range []uint64{2_000_000, 2_000_000, 2_600_000} {
			sub.Estimate = est
			for range 20 {
				now = now.Add(500 * time.Millisecond)
				resumed += len(p.Decide([]bwe.Subscriber{sub}, now).Resumed)
			}
			if est < 2_550_000 && resumed != 0 {
				t.Fatalf("resumed at %d bit/s, under 1.5 times the video's rate", est)
			}
		}
		if resumed != 1 {
			t.Fatalf("resumed %d times at 2.6 Mbit/s, want once", resumed)
		}
	}
}
