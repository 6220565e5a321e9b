package bwe

import (
	"math"
	"sort"
	"time"

	"github.com/rtcio-gateway/rtcio-gateway/internal/defaults"
)

// PolicyConfig tunes a room's decisions. Zero values use the defaults.
type PolicyConfig struct {
	// Floor is the least a publisher is asked to send per video, and the
	// share of a subscriber's estimate one video needs to stay on (default
	// 200 kbit/s), or its own rate if it sends less (see Video.Rate).
	Floor uint64
	// Max is the cap when nobody is congested (default 3 Mbit/s): a cap
	// at Max means "no limit" and is sent once, to lift an earlier one.
	Max uint64
	// StepDown bounds how far a cap falls in one decision (default 0.3:
	// at most 30%); StepUp how far it rises (default 0.15).
	StepDown, StepUp float64
	// ResumeFactor: a paused video comes back when its share would be at
	// least Floor times this (default 1.5), so a link at the edge does not
	// flap.
	ResumeFactor float64
	// Backoff is how long a resumable video waits the first time (default
	// 2s); each pause within BackoffReset of a resume doubles it, up to
	// MaxBackoff (default 30s).
	Backoff, MaxBackoff, BackoffReset time.Duration
	// Memory is how long a subscriber that was congested keeps holding
	// its publishers' caps to its estimate (default 30s): once the loss
	// stops, the cap rises only as fast as the subscriber's estimate does,
	// instead of springing back into the congestion.
	Memory time.Duration
	// ProbeGrowth: past Memory, the subscriber's estimate still bounds the
	// cap, but that bound grows by this fraction per second (default
	// 0.05, 5%), until it passes Max. A link at the edge is probed
	// gently instead of all at once: lifting the bound outright took a
	// publisher from 472 to 1257 kbit/s in 3 s into a 700 kbit/s link,
	// and a weak subscriber froze each time, every ~35 s.
	ProbeGrowth float64
	// DipHold: a subscriber congested within Memory whose estimate has
	// stayed below 85% of its videos' cap for this long pulls the cap down
	// without loss (default 1.5 s); a shorter dip holds it. Its browser's
	// delay-based REMB falls as soon as the link's queue grows, the loss
	// only once the queue overflows: at a 700 kbit/s link Chrome's REMB
	// fell from 749 to 502 kbit/s five seconds before the first loss, and
	// a cap held meanwhile froze the picture 4 times. Only a subscriber
	// congested before counts: a healthy Chrome's REMB dips below its
	// incoming rate for seconds on an idle link, and a rule for everyone
	// capped uncongested publishers.
	DipHold time.Duration
}

func (c *PolicyConfig) setDefaults() {
	defaults.Positive(&c.Floor, 200_000)
	defaults.Positive(&c.Max, 3_000_000)
	defaults.Positive(&c.StepDown, 0.3)
	defaults.Positive(&c.StepUp, 0.15)
	defaults.Positive(&c.ResumeFactor, 1.5)
	defaults.Positive(&c.Backoff, 2*time.Second)
	defaults.Positive(&c.MaxBackoff, 30*time.Second)
	defaults.Positive(&c.BackoffReset, 30*time.Second)
	defaults.Positive(&c.Memory, 30*time.Second)
	defaults.Positive(&c.ProbeGrowth, 0.05)
	defaults.Positive(&c.DipHold, 1500*time.Millisecond)
}

// Subscriber is what the policy needs of one subscriber at a decision.
type Subscriber struct {
	ID string
	// Estimate is what it can take (Estimator.Estimate), Congested whether
	// that is clearly less than it is sent.
	Estimate  uint64
	Congested bool
	// Audio is the bit rate of the audio it receives, which is never
	// paused and comes off the estimate first.
	Audio uint64
	// Videos it receives.
	Videos []Video
}

// Video is one video track a subscriber receives.
type Video struct {
	// Key names the publisher's track.
	Key string
	// Priority: higher keeps its video longer (the active speaker's is
	// highest).
	Priority int
	// Rate is what its publisher sends now, in bit/s (0: not known). A
	// video sending less than the floor needs only its own rate to stay
	// on: without this a member of a meeting of many low-rate cameras
	// would be paused down to estimate/floor videos at its first loss and
	// could never resume the rest.
	Rate uint64
	// Uncapped: its publisher cannot be asked to send less (it is another
	// gateway's, over a cascade link, and carries the video for that
	// gateway's subscribers too), so it needs its whole Rate to stay on;
	// a subscriber that cannot take it gets it paused, not capped.
	Uncapped bool
}

// need is the share of a subscriber's estimate v needs to stay on.
func (p *Policy) need(v Video) uint64 {
	if v.Uncapped && v.Rate > 0 {
		return v.Rate
	}
	if v.Rate > 0 && v.Rate < p.cfg.Floor {
		return v.Rate
	}
	return p.cfg.Floor
}

func (p *Policy) needs(vs []Video) uint64 {
	var n uint64
	for _, v := range vs {
		n += p.need(v)
	}
	return n
}

// Change is a video paused or resumed for one subscriber.
type Change struct {
	Subscriber, Video string
}

// Decision is the outcome of one decision round.
type Decision struct {
	// Caps are the REMB values to send, per publisher video, for those
	// whose cap changed or is below Max (a cap back at Max is sent once).
	Caps map[string]uint64
	// Paused and Resumed list the subscribers' videos to stop and start.
	Paused, Resumed []Change
}

// Policy keeps a room's caps and paused videos between decisions. It is
// not safe for concurrent use: the room's clock calls Decide.
type Policy struct {
	cfg    PolicyConfig
	caps   map[string]uint64
	paused map[Change]*pause
	// recent remembers resumed videos for the backoff of their next pause.
	recent map[Change]resumed
	// congestedAt is when each subscriber was last congested (see Memory);
	// dipSince when a recently congested one's estimate fell clearly below
	// its videos' cap (see DipHold).
	congestedAt map[string]time.Time
	dipSince    map[string]time.Time
}

type pause struct {
	at      time.Time
	backoff time.Duration
	okSince time.Time // since when resuming would fit; zero when it would not
}

type resumed struct {
	at      time.Time
	backoff time.Duration
}

// NewPolicy makes a room's policy.
func NewPolicy(cfg PolicyConfig) *Policy {
	cfg.setDefaults()
	return &Policy{cfg: cfg, caps: make(map[string]uint64), paused: make(map[Change]*pause), recent: make(map[Change]resumed),
		congestedAt: make(map[string]time.Time), dipSince: make(map[string]time.Time)}
}

// Memory is how long a subscriber counts as recently congested after its
// last congestion (PolicyConfig.Memory, default applied).
func (p *Policy) Memory() time.Duration { return p.cfg.Memory }

// Paused reports whether sub's video is paused.
func (p *Policy) Paused(sub, video string) bool { return p.paused[Change{sub, video}] != nil }

// Cap is a publisher video's current cap (Max when none).
func (p *Policy) Cap(video string) uint64 {
	if c, ok := p.caps[video]; ok {
		return c
	}
	return p.cfg.Max
}

// lastingDip reports whether subscriber id's share has stayed below 85%
// of one of its videos' cap for DipHold (see PolicyConfig.DipHold).
func (p *Policy) lastingDip(id string, share uint64, on []Video, now time.Time) bool {
	low := false
	for _, v := range on {
		if float64(share) < 0.85*float64(p.Cap(v.Key)) {
			low = true
			break
		}
	}
	if !low {
		delete(p.dipSince, id)
		return false
	}
	since, ok := p.dipSince[id]
	if !ok {
		p.dipSince[id] = now
		return false
	}
	return now.Sub(since) >= p.cfg.DipHold
}

// Decide runs one round over the room's subscribers.
func (p *Policy) Decide(subs []Subscriber, now time.Time) Decision {
	var d Decision
	// Per video: the least share of its congested subscribers (the cap
	// steps down towards it), and of those congested within Memory (the
	// cap rises no higher). A subscriber's estimate that dips without
	// loss is not congestion (a busy receiver's REMB does that): it holds
	// the cap where it is, it does not pull it down.
	target := make(map[string]uint64)
	limit := make(map[string]uint64)
	live := make(map[Change]bool)
	liveSubs := make(map[string]bool, len(subs))
	for _, s := range subs {
		liveSubs[s.ID] = true
		if s.Congested {
			p.congestedAt[s.ID] = now
		}
		avail := uint64(0)
		if s.Estimate > s.Audio {
			avail = s.Estimate - s.Audio
		}
		vids := append([]Video(nil), s.Videos...)
		sort.SliceStable(vids, func(i, j int) bool { return vids[i].Priority > vids[j].Priority })
		var on []Video
		for _, v := range vids {
			live[Change{s.ID, v.Key}] = true
			if !p.Paused(s.ID, v.Key) {
				on = append(on, v)
			}
		}
		// Pause, while congested, from the lowest priority until every
		// video on gets what it needs.
		for s.Congested && len(on) > 0 && p.needs(on) > avail {
			v := on[len(on)-1]
			on = on[:len(on)-1]
			c := Change{s.ID, v.Key}
			backoff := p.cfg.Backoff
			if r, ok := p.recent[c]; ok && now.Sub(r.at) < p.cfg.BackoffReset {
				backoff = min(2*r.backoff, p.cfg.MaxBackoff)
			}
			p.paused[c] = &pause{at: now, backoff: backoff}
			d.Paused = append(d.Paused, c)
			// What it was congested with is gone now.
			delete(p.congestedAt, s.ID)
		}
		// Resume from the highest priority when the videos on would stay
		// comfortably above their needs, for the video's backoff.
		for _, v := range vids {
			c := Change{s.ID, v.Key}
			ps := p.paused[c]
			if ps == nil || now.Sub(ps.at) < ps.backoff {
				continue
			}
			fits := float64(avail) >= p.cfg.ResumeFactor*float64(p.needs(on)+p.need(v))
			if !fits {
				ps.okSince = time.Time{}
				break
			}
			if ps.okSince.IsZero() {
				ps.okSince = now
			}
			if now.Sub(ps.okSince) < ps.backoff/2 {
				break
			}
			delete(p.paused, c)
			p.recent[c] = resumed{at: now, backoff: ps.backoff}
			on = append(on, v)
			d.Resumed = append(d.Resumed, c)
			// A resumed video starts its subscriber's feedback afresh.
			delete(p.congestedAt, s.ID)
		}
		at, recently := p.congestedAt[s.ID]
		if recently && len(on) > 0 {
			share := max(p.cfg.Floor, avail/uint64(len(on)))
			bound := share
			if past := now.Sub(at) - p.cfg.Memory; past > 0 {
				bound = uint64(float64(share) * math.Pow(1+p.cfg.ProbeGrowth, past.Seconds()))
			}
			if bound >= p.cfg.Max && !s.Congested {
				// Probed all the way up: the congestion is over.
				delete(p.congestedAt, s.ID)
				delete(p.dipSince, s.ID)
				continue
			}
			down := s.Congested || p.lastingDip(s.ID, share, on, now)
			for _, v := range on {
				if t, ok := limit[v.Key]; !ok || bound < t {
					limit[v.Key] = bound
				}
				if t, ok := target[v.Key]; down && (!ok || share < t) {
					target[v.Key] = share
				}
			}
		} else {
			delete(p.dipSince, s.ID)
		}
	}
	// Forget subscribers and videos that are gone.
	for id := range p.congestedAt {
		if !liveSubs[id] {
			delete(p.congestedAt, id)
			delete(p.dipSince, id)
		}
	}
	for c := range p.paused {
		if !live[c] {
			delete(p.paused, c)
		}
	}
	for c, r := range p.recent {
		if now.Sub(r.at) > p.cfg.BackoffReset {
			delete(p.recent, c)
		}
	}
	// Caps: towards the target in bounded steps, back up without one.
	keys := make(map[string]bool, len(p.caps)+len(target))
	for k := range p.caps {
		keys[k] = true
	}
	for k := range limit {
		keys[k] = true
	}
	for k := range keys {
		cur := p.Cap(k)
		next := cur
		if t, ok := target[k]; ok && t < cur {
			next = max(t, uint64(float64(cur)*(1-p.cfg.StepDown)), p.cfg.Floor)
		} else if cur < p.cfg.Max {
			up := uint64(float64(cur) * (1 + p.cfg.StepUp))
			if t, ok := limit[k]; ok {
				up = min(up, max(t, cur))
			}
			next = min(p.cfg.Max, up)
		}
		if next != cur || next < p.cfg.Max {
			if d.Caps == nil {
				d.Caps = make(map[string]uint64)
			}
			d.Caps[k] = next
		}
		if next >= p.cfg.Max {
			delete(p.caps, k)
		} else {
			p.caps[k] = next
		}
	}
	return d
}
