package speaker_test

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/rtcio-gateway/rtcio-gateway/speaker"
)

// room feeds a detector 50 packets a second per source, as Opus does, and
// ticks it every 100 ms, on a simulated clock.
type room struct {
	d       *speaker.Detector
	now     time.Time
	rng     *rand.Rand
	changes []change
}

type change struct {
	at       time.Duration
	who, was string
}

func newRoom(seed uint64) *room {
	return &room{d: speaker.New(speaker.Config{}), now: time.Unix(0, 0), rng: rand.New(rand.NewPCG(seed, seed))}
}

// run plays d of audio where level(id) gives each source's level.
func (r *room) run(d time.Duration, ids []string, level func(id string, at time.Duration) uint8) {
	start := r.now.Sub(time.Unix(0, 0))
	for t := time.Duration(0); t < d; t += 20 * time.Millisecond {
		at := start + t
		for _, id := range ids {
			r.d.Observe(id, level(id, at), r.now)
		}
		if t%(100*time.Millisecond) == 0 {
			if who, was, ok := r.d.Tick(r.now); ok {
				r.changes = append(r.changes, change{at: at, who: who, was: was})
			}
		}
		r.now = r.now.Add(20 * time.Millisecond)
	}
}

// speech is a talker's level: loud with syllable dips; silence is room
// noise well below the floor.
func (r *room) speech() uint8  { return uint8(15 + r.rng.IntN(20)) }
func (r *room) silence() uint8 { return uint8(80 + r.rng.IntN(47)) }

// TestTurns: three publishers speak in turn for 3 s each (with a cough
// from another one inside a turn): the speaker follows each turn within
// 1 s, with no other change.
func TestTurns(t *testing.T) {
	for seed := range uint64(20) {
		r := newRoom(seed)
		ids := []string{"a", "b", "c"}
		turns := []string{"a", "b", "c", "a", "c"}
		for i, who := range turns {
			turnStart := time.Duration(i) * 3 * time.Second
			r.run(3*time.Second, ids, func(id string, at time.Duration) uint8 {
				in := at - turnStart
				switch {
				case id == who && r.rng.IntN(10) > 0: // a tenth of packets are pauses
					return r.speech()
				case id != who && id == ids[(i+1)%3] && in > time.Second && in < 1150*time.Millisecond:
					return 10 // a cough: 150 ms, loud
				}
				return r.silence()
			})
		}
		if len(r.changes) != len(turns) {
			t.Fatalf("seed %d: changes %+v, want one per turn (%v)", seed, r.changes, turns)
		}
		for i, c := range r.changes {
			turnStart := time.Duration(i) * 3 * time.Second
			if c.who != turns[i] || c.at < turnStart || c.at > turnStart+time.Second {
				t.Errorf("seed %d: change %d to %s at %v, want %s within 1s of %v", seed, i, c.who, c.at, turns[i], turnStart)
			}
		}
	}
}

// TestSilenceKeepsSpeaker: a speaker who stops keeps the spotlight until
// someone else speaks; a source that goes away is forgotten.
func TestSilenceKeepsSpeaker(t *testing.T) {
	r := newRoom(1)
	ids := []string{"a", "b"}
	r.run(2*time.Second, ids, func(id string, _ time.Duration) uint8 {
		if id == "a" {
			return r.speech()
		}
		return r.silence()
	})
	r.run(5*time.Second, ids, func(string, time.Duration) uint8 { return r.silence() })
	if got := r.d.Current(); got != "a" || len(r.changes) != 1 {
		t.Fatalf("after a's silence: speaker %q, changes %+v", got, r.changes)
	}
	r.d.Remove("a")
	if got := r.d.Current(); got != "" {
		t.Errorf("after a left: speaker %q", got)
	}
}

// TestCrossTalkDoesNotFlap: two people talking over each other at the
// same loudness for 10 s move the spotlight rarely.
func TestCrossTalkDoesNotFlap(t *testing.T) {
	r := newRoom(7)
	r.run(10*time.Second, []string{"a", "b"}, func(string, time.Duration) uint8 { return r.speech() })
	if len(r.changes) > 2 {
		t.Errorf("%d changes in 10 s of cross-talk: %+v", len(r.changes), r.changes)
	}
}
