package loadtest

import (
	"testing"
	"time"

	"github.com/rtcio-gateway/rtcio-gateway/codec"
	"github.com/rtcio-gateway/rtcio-gateway/internal/mediafixture"
)

// Synthetic VP8 must look like an encoder's output to the forwarder's
// keyframe detector: keyframes exactly where scheduled or requested, only
// on a frame's first packet.
func TestSyntheticVP8Keyframes(t *testing.T) {
	s, err := newSyntheticVP8(Media{VideoPPS: 90, VideoBitrate: 800_000, FrameRate: 30, KeyframeInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var keys []int
	for n := range 75 {
		if n == 40 {
			s.keyframe()
		}
		f := s.next()
		if len(f.payloads) != 3 {
			t.Fatalf("frame %d has %d packets, want 3 (90 pps / 30 fps)", n, len(f.payloads))
		}
		for i, p := range f.payloads {
			isKey := codec.IsVP8Keyframe(p)
			if i > 0 && isKey {
				t.Fatalf("frame %d packet %d detected as keyframe start", n, i)
			}
			if i == 0 && isKey != f.key {
				t.Fatalf("frame %d: detector says %v, source says %v", n, isKey, f.key)
			}
		}
		if f.key {
			keys = append(keys, n)
		}
	}
	want := []int{0, 30, 40, 70}
	if len(keys) != len(want) {
		t.Fatalf("keyframes at %v, want %v", keys, want)
	}
	for i := range want {
		if keys[i] != want[i] {
			t.Fatalf("keyframes at %v, want %v", keys, want)
		}
	}
}

func TestFixtureSources(t *testing.T) {
	m := Media{Source: "fixture", FixtureDir: mediafixture.Dir()}
	v, err := newSource(m, Video)
	if err != nil {
		t.Fatal(err)
	}
	first := v.next()
	if !first.key || !codec.IsVP8Keyframe(first.payloads[0]) {
		t.Fatal("the VP8 fixture does not start with a detectable keyframe")
	}
	v.next()
	v.keyframe()
	if f := v.next(); !f.key {
		t.Fatal("a keyframe request did not skip to a keyframe")
	}
	a, err := newSource(m, Audio)
	if err != nil {
		t.Fatal(err)
	}
	if f := a.next(); len(f.payloads) != 1 || f.ticks != 960 {
		t.Fatalf("opus frame: %d packets, %d ticks; want 1 packet of 960", len(f.payloads), f.ticks)
	}
	if _, err := newSource(Media{Source: "nope"}, Video); err == nil {
		t.Fatal("unknown source accepted")
	}
}

func TestCountRange(t *testing.T) {
	var s streamRx
	for _, seq := range []uint32{0, 1, 63, 64, 65, 200, 1000} {
		s.mark(seq)
	}
	s.mark(64) // a duplicate counts once
	cases := []struct {
		from, to uint32
		want     int
	}{{0, 1, 1}, {0, 64, 3}, {0, 65, 4}, {1, 66, 4}, {0, 66, 5}, {64, 1001, 4}, {2, 63, 0}, {1001, 5000, 0}, {0, 0, 0}}
	for _, c := range cases {
		if got := s.countRange(c.from, c.to); got != c.want {
			t.Errorf("countRange(%d, %d) = %d, want %d", c.from, c.to, got, c.want)
		}
	}
}

func TestMedians(t *testing.T) {
	mk := func(cpu, pps float64) *Result {
		return &Result{Target: "gateway", CPUPerPacket: cpu, PacketsPerSecond: pps, Errors: []string{"x"}}
	}
	m := Medians([][]*Result{{mk(5, 100)}, {mk(1, 300)}, {mk(3, 200)}})
	if len(m) != 1 || m[0].CPUPerPacket != 3 || m[0].PacketsPerSecond != 200 || m[0].Errors != nil {
		t.Fatalf("medians: %+v", m)
	}
}
