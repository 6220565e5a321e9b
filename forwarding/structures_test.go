package forwarding

import (
	"reflect"
	"testing"
	"time"

	"github.com/rtcio-gateway/rtcio-gateway/codec"
)

// pkt makes a packet of one pool with the fields the small structures use.
func pkt(pool interface{ Get() any }, ext uint64, epoch, ts uint32, arrival int64) *packet {
	p := pool.Get().(*packet)
	p.ext, p.epoch, p.arrival = ext, epoch, arrival
	p.hdr.Timestamp = ts
	p.hdr.SequenceNumber = uint16(ext)
	p.size, p.keyframe = 1000, false
	p.publish()
	return p
}

// TestMungerContinuity: inside an epoch the offset is constant; a new
// epoch continues right after the last packet sent with a timestamp that
// advanced by the wall time between them; packets from before the start or
// from an older epoch are not sent.
func TestMungerContinuity(t *testing.T) {
	pool := newPacketPool()
	m := newMunger(90000, 1000, 5000)
	want := func(p *packet, ok bool, seq uint16, ts uint32) {
		t.Helper()
		r, sent := m.rewrite(p)
		if sent != ok {
			t.Fatalf("packet ext %d epoch %d: sent %v, want %v", p.ext, p.epoch, sent, ok)
		}
		if ok && (uint16(r.ext) != seq || r.ts != ts) {
			t.Fatalf("packet ext %d epoch %d: seq %d ts %d, want %d %d", p.ext, p.epoch, uint16(r.ext), r.ts, seq, ts)
		}
	}
	want(pkt(pool, 500, 1, 90000, 0), true, 1000, 5000)
	want(pkt(pool, 501, 1, 93000, 33e6), true, 1001, 8000)
	want(pkt(pool, 503, 1, 96000, 66e6), true, 1003, 11000) // a gap stays a gap
	want(pkt(pool, 502, 1, 93000, 70e6), true, 1002, 8000)  // late, still mapped
	want(pkt(pool, 499, 1, 87000, 71e6), false, 0, 0)       // before the start
	// A new source (epoch 2) 100 ms after the last packet: seq continues,
	// the timestamp advances by 9,000 ticks.
	want(pkt(pool, 7, 2, 123, 166e6), true, 1004, 11000+9000)
	want(pkt(pool, 8, 2, 3123, 199e6), true, 1005, 11000+9000+3000)
	want(pkt(pool, 504, 1, 99000, 200e6), false, 0, 0) // the old source again
	// Wrap-around of the 16-bit sequence number is seamless.
	m = newMunger(48000, 65535, 0)
	want(pkt(pool, 10, 1, 0, 0), true, 65535, 0)
	want(pkt(pool, 11, 1, 960, 20e6), true, 0, 960)
}

func TestDurationToTicks(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		rate uint32
		want uint32
	}{{time.Second, 90000, 90000}, {20 * time.Millisecond, 48000, 960}, {-time.Second, 90000, 0}, {10 * time.Hour, 90000, uint32(36000 * 90000)}} {
		if got := durationToTicks(c.d, c.rate); got != c.want {
			t.Errorf("%v at %d Hz: %d ticks, want %d", c.d, c.rate, got, c.want)
		}
	}
}

// TestSequencer: a NACKed 16-bit sequence number maps back to the upstream
// packet while it is within the sequencer's reach, across wrap-around, and
// not after it was overwritten.
func TestSequencer(t *testing.T) {
	s := newSequencer(100) // rounds up to 128
	for out := uint64(65500); out < 65600; out++ {
		s.record(out, out+1000, 3, uint32(out))
	}
	highest := uint64(65599)
	seq := func(ext uint64) uint16 { return uint16(ext) }
	e := s.lookup(seq(65590), highest)
	if e == nil || e.upExt != 66590 || e.epoch != 3 {
		t.Fatalf("lookup 65590 (past the 16-bit wrap): %+v", e)
	}
	if e := s.lookup(seq(65520), highest); e == nil || e.outExt != 65520 {
		t.Fatalf("lookup 65520 (before the wrap): %+v", e)
	}
	if e := s.lookup(seq(65400), highest); e != nil {
		t.Errorf("lookup beyond the sequencer's reach: %+v", e)
	}
	if e := s.lookup(seq(65600), highest); e != nil {
		t.Errorf("lookup of a number never sent: %+v", e)
	}
}

// TestRing: first in first out, bounded (a full ring refuses without
// blocking), the consumer is woken, drain releases what is queued.
func TestRing(t *testing.T) {
	pool := newPacketPool()
	wakeCh := make(chan struct{}, 1)
	r := newRing(3, func() { wake(wakeCh) }) // rounds up to 4
	var in []*packet
	for i := range 4 {
		p := pkt(pool, uint64(i), 1, 0, 0)
		in = append(in, p)
		if !r.push(p) {
			t.Fatalf("push %d refused", i)
		}
	}
	if r.push(pkt(pool, 9, 1, 0, 0)) {
		t.Fatal("a full ring took a fifth packet")
	}
	select {
	case <-wakeCh:
	default:
		t.Error("the consumer was not woken")
	}
	for i := range 2 {
		if p := r.pop(); p != in[i] {
			t.Fatalf("pop %d: not the packet pushed %d-th", i, i)
		}
	}
	r.drain()
	if r.pop() != nil {
		t.Error("drained ring still has packets")
	}
	for i, p := range in[2:] {
		if p.refs.Load() != 0 {
			t.Errorf("drained packet %d still has %d references", i+2, p.refs.Load())
		}
	}
}

// TestLossTracker: gaps are NACKed at once, again after the interval, and
// given up after the retries or the age; arrivals leave the set; a gap wider
// than the tracker keeps its newest part.
func TestLossTracker(t *testing.T) {
	ms := int64(time.Millisecond)
	l := newLossTracker(8, 2, time.Second, 100*time.Millisecond)
	if n := l.gap(10, 13, 0); n != 3 || !l.pending() {
		t.Fatalf("gap of 3 recorded %d", n)
	}
	nacks, gaveUp := l.due(nil, 0)
	if len(nacks) != 3 || gaveUp != 0 {
		t.Fatalf("first due: %v, gave up %d", nacks, gaveUp)
	}
	if !l.arrived(11) || l.arrived(11) || l.arrived(50) {
		t.Fatal("arrived: want true once for a missing packet, false otherwise")
	}
	if nacks, _ = l.due(nil, 50*ms); len(nacks) != 0 {
		t.Errorf("NACKed again before the interval: %v", nacks)
	}
	if nacks, _ = l.due(nil, 100*ms); len(nacks) != 2 || nacks[0] != 10 || nacks[1] != 12 {
		t.Errorf("second round: %v, want [10 12]", nacks)
	}
	if nacks, gaveUp = l.due(nil, 300*ms); len(nacks) != 0 || gaveUp != 2 || l.pending() {
		t.Errorf("after the retries: %v, gave up %d, pending %v", nacks, gaveUp, l.pending())
	}
	l.gap(100, 101, 0)
	if _, gaveUp = l.due(nil, 2*int64(time.Second)); gaveUp != 1 {
		t.Errorf("too old: gave up %d", gaveUp)
	}
	l.reset()
	if n := l.gap(0, 1000, 0); n != 8 {
		t.Fatalf("wide gap recorded %d, want the tracker's 8", n)
	}
	if nacks, _ = l.due(nil, 0); nacks[0] != 992 {
		t.Errorf("wide gap: NACKs %v, want the newest 8 from 992", nacks)
	}
}

// TestKeyframeCache: it holds the latest keyframe and what followed, starts
// over at each keyframe, holds nothing without one, and drops a group of
// pictures that outgrows it until the next keyframe.
func TestKeyframeCache(t *testing.T) {
	pool := newPacketPool()
	c := newKeyframeCache(5, 1<<20)
	var made []*packet
	frame := func(ext uint64, ts uint32, key bool) *packet {
		p := pkt(pool, ext, 1, ts, 0)
		p.keyframe = key
		made = append(made, p)
		return p
	}
	c.add(frame(1, 100, false))
	if c.snapshot() != nil {
		t.Fatal("a snapshot without any keyframe")
	}
	c.add(frame(2, 200, true))
	c.add(frame(3, 200, false))
	c.add(frame(4, 300, false))
	snap := c.snapshot()
	if len(snap) != 3 || snap[0].ext != 2 {
		t.Fatalf("snapshot %d packets from %d, want 3 from the keyframe (2)", len(snap), snap[0].ext)
	}
	for _, p := range snap {
		p.release()
	}
	// A newer keyframe starts the cache over.
	c.add(frame(5, 400, true))
	if snap = c.snapshot(); len(snap) != 1 || snap[0].ext != 5 {
		t.Fatalf("after a new keyframe: %d packets", len(snap))
	}
	snap[0].release()
	// Outgrowing the bound drops the group until the next keyframe.
	for ext := uint64(6); ext < 12; ext++ {
		c.add(frame(ext, uint32(ext*100), false))
	}
	if c.snapshot() != nil {
		t.Error("a group of pictures over the bound is still cached")
	}
	c.reset()
	// Every reference the cache took was given back: only the test's own
	// remains.
	for _, p := range made {
		if n := p.refs.Load(); n != 1 {
			t.Errorf("packet %d has %d references after reset, want 1", p.ext, n)
		}
	}
}

// TestDownTrackStatsAdd: every counter is summed.
func TestDownTrackStatsAdd(t *testing.T) {
	var a, b DownTrackStats
	va, vb := reflect.ValueOf(&a).Elem(), reflect.ValueOf(&b).Elem()
	for i := range va.NumField() {
		va.Field(i).SetUint(uint64(i + 1))
		vb.Field(i).SetUint(uint64(100 * (i + 1)))
	}
	a.Add(b)
	for i := range va.NumField() {
		if got, want := va.Field(i).Uint(), uint64(101*(i+1)); got != want {
			t.Errorf("%s: %d, want %d", va.Type().Field(i).Name, got, want)
		}
	}
}

// TestHistoryDefaults: video keeps 1024 packets for NACKs, audio 128; an
// explicit size wins; down-tracks map at most 512 of them, and queue 1024
// video or 256 audio packets.
func TestHistoryDefaults(t *testing.T) {
	opus := Codec{MimeType: codec.MimeTypeOpus, ClockRate: 48000, PayloadType: 111}
	for _, tc := range []struct {
		codec      Codec
		size, want int
	}{
		{vp8Codec, 0, 1024},
		{opus, 0, 128},
		{opus, 1000, 1024},
	} {
		p := newTestPublication(t, PublicationConfig{Codec: tc.codec, HistorySize: tc.size})
		d := subscribe(t, p, DownTrackConfig{SSRC: 1, Writer: newCaptureWriter()})
		if got := len(p.hist.slots); got != tc.want {
			t.Errorf("%s, size %d: history of %d packets, want %d", tc.codec.MimeType, tc.size, got, tc.want)
		}
		if got := len(d.seqs.entries); got != min(tc.want, maxSequenceMappings) {
			t.Errorf("%s, size %d: %d sequence mappings, want %d", tc.codec.MimeType, tc.size, got, tc.want)
		}
		wantQueue := 256
		if tc.codec.IsVideo() {
			wantQueue = 1024
		}
		if got := len(d.queue.slots); got != wantQueue {
			t.Errorf("%s: queue of %d packets, want %d", tc.codec.MimeType, got, wantQueue)
		}
	}
}
