package forwarding

import (
	"testing"
	"time"

	"github.com/pion/rtp"
)

// frameFeeder writes whole VP8 frames to a publication with its own
// continuous sequence numbers and timestamps, so any fixture frame can be
// sent again later (a keyframe to resume on).
type frameFeeder struct {
	t   *testing.T
	pub *Publication
	clk *fakeClock
	seq uint16
	ts  uint32
}

func (f *frameFeeder) write(frame []*rtp.Packet, upTo int) {
	f.t.Helper()
	for i, p := range frame {
		if upTo >= 0 && i >= upTo {
			return
		}
		c := p.Clone()
		c.SequenceNumber = f.seq
		c.Timestamp = f.ts
		f.seq++
		mustWrite(f.t, f.pub, c)
	}
}

func (f *frameFeeder) next() { f.ts += 3000; f.clk.Advance(33 * time.Millisecond) }

// TestPauseKeepsTheStreamContinuous: a paused video stops at the end of
// the frame in progress, drops everything while paused and, once resumed,
// everything up to the next keyframe (asking for it); the subscriber sees
// one stream without a sequence gap, its timestamps advanced by the time
// that passed. Audio cannot be paused.
func TestPauseKeepsTheStreamContinuous(t *testing.T) {
	frames := vp8Frames(t, "vp8.ivf", 0xA)
	key := frames[0]
	if len(key) < 2 {
		t.Fatalf("the fixture's keyframe has %d packets; the test needs one of several", len(key))
	}
	clk := newFakeClock()
	up := newUpstream()
	pub := newTestPublication(t, PublicationConfig{Codec: vp8Codec, Clock: clk.Now, Keyframes: up})
	w := newCaptureWriter()
	d := subscribe(t, pub, DownTrackConfig{SSRC: 5, PayloadType: 96, Writer: w})
	f := &frameFeeder{t: t, pub: pub, clk: clk, seq: 1000}

	for i := 0; i < 5; i++ {
		f.write(frames[i], -1)
		f.next()
	}
	n := 0
	for i := 0; i < 5; i++ {
		n += len(frames[i])
	}
	w.waitCount(t, n)

	// Pause in the middle of a keyframe: the frame is finished first.
	f.write(key, 1)
	w.waitCount(t, n+1)
	if !d.SetPaused(true) || d.SetPaused(true) || !d.Paused() {
		t.Fatal("SetPaused(true) did not report exactly one change")
	}
	f.write(key[1:], -1)
	f.next()
	for i := 1; i < 6; i++ {
		f.write(frames[i], -1)
		f.next()
	}
	eventually(t, testWait, func() bool { return d.Stats().PausedDrops > 0 })
	beforeResume := w.count()
	if beforeResume != n+len(key) {
		t.Fatalf("paused mid-frame: %d packets out, want the frame finished (%d)", beforeResume, n+len(key))
	}
	plis := up.pliCount()

	// Resumed: delta frames are dropped until the keyframe it asked for.
	d.SetPaused(false)
	f.write(frames[1], -1)
	f.next()
	eventually(t, testWait, func() bool { return up.pliCount() > plis })
	clk.Advance(2 * time.Second) // the pause's real duration
	f.write(key, -1)
	f.next()
	f.write(frames[1], -1)
	out := w.waitCount(t, beforeResume+len(key)+len(frames[1]))
	for i := 1; i < len(out); i++ {
		if out[i].hdr.SequenceNumber != out[i-1].hdr.SequenceNumber+1 {
			t.Fatalf("sequence gap at packet %d: %d after %d", i, out[i].hdr.SequenceNumber, out[i-1].hdr.SequenceNumber)
		}
	}
	resumed := out[beforeResume]
	if string(resumed.payload) != string(key[0].Payload) {
		t.Error("the resumed video does not start with the keyframe")
	}
	if gap := resumed.hdr.Timestamp - out[beforeResume-1].hdr.Timestamp; gap < 90000*2 {
		t.Errorf("timestamp advanced by %d ticks across a pause of more than 2 s", gap)
	}
	if !out[beforeResume-1].hdr.Marker {
		t.Error("the pause did not end at a frame boundary")
	}

	// NACKs for packets sent before the pause are still answered.
	d.HandleRTCP(nackFor(5, out[2].hdr.SequenceNumber))
	eventually(t, testWait, func() bool { return d.Stats().Retransmissions == 1 })

	audio := newTestPublication(t, PublicationConfig{Codec: Codec{MimeType: "audio/opus", ClockRate: 48000, PayloadType: 111}})
	a := subscribe(t, audio, DownTrackConfig{SSRC: 7, PayloadType: 111, Writer: newCaptureWriter()})
	if a.SetPaused(true) || a.Paused() {
		t.Error("audio was paused")
	}
}

// TestRetransmitBudget: with a budget, NACKs past it go unanswered and
// are counted; without one every NACK is answered.
func TestRetransmitBudget(t *testing.T) {
	clk := newFakeClock()
	pub := newTestPublication(t, PublicationConfig{Codec: vp8Codec, Clock: clk.Now})
	w := newCaptureWriter()
	d := subscribe(t, pub, DownTrackConfig{SSRC: 5, PayloadType: 96, Writer: w})
	for i := 0; i < 40; i++ {
		p := simplePacket(0xA, 100+uint16(i), uint32(i)*3000)
		p.Payload = make([]byte, 1000)
		mustWrite(t, pub, p)
	}
	out := w.waitCount(t, 40)
	// 8,000 bytes a second: a burst of 2,000 bytes, two packets.
	d.SetRetransmitBudget(8000)
	var seqs []uint16
	for _, s := range out[:10] {
		seqs = append(seqs, s.hdr.SequenceNumber)
	}
	d.HandleRTCP(nackFor(5, seqs...))
	eventually(t, testWait, func() bool {
		st := d.Stats()
		return st.Retransmissions+st.RetransmitsOverBudget == 10
	})
	if st := d.Stats(); st.Retransmissions != 2 || st.RetransmitBytes != 2000 {
		t.Fatalf("with a 2,000-byte burst: %+v", st)
	}
	// 2,000 bytes a second: a quarter second holds no 1,000-byte packet,
	// but the burst is at least one full packet, so one goes out.
	clk.Advance(time.Second)
	d.SetRetransmitBudget(2000)
	d.HandleRTCP(nackFor(5, out[10].hdr.SequenceNumber, out[11].hdr.SequenceNumber))
	eventually(t, testWait, func() bool {
		st := d.Stats()
		return st.Retransmissions+st.RetransmitsOverBudget == 12
	})
	if st := d.Stats(); st.Retransmissions != 3 {
		t.Fatalf("with a 2,000-byte/s budget: %+v; want one more retransmission", st)
	}
	d.SetRetransmitBudget(0)
	seqs = seqs[:0]
	for _, s := range out[20:30] {
		seqs = append(seqs, s.hdr.SequenceNumber)
	}
	d.HandleRTCP(nackFor(5, seqs...))
	eventually(t, testWait, func() bool { return d.Stats().Retransmissions == 13 })
}
