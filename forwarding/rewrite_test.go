package forwarding

import (
	"bytes"
	"testing"
	"time"

	"github.com/pion/rtcp"
)

// checkContinuous asserts monotonic +1 sequence numbers and a constant SSRC.
func checkContinuous(t *testing.T, pkts []sent, ssrc uint32) {
	t.Helper()
	for i, p := range pkts {
		if p.hdr.SSRC != ssrc {
			t.Fatalf("packet %d: SSRC %d, want %d", i, p.hdr.SSRC, ssrc)
		}
		if i > 0 && p.hdr.SequenceNumber != pkts[i-1].hdr.SequenceNumber+1 {
			t.Fatalf("packet %d: seq %d after %d", i, p.hdr.SequenceNumber, pkts[i-1].hdr.SequenceNumber)
		}
	}
}

// Acceptance 7: a publisher that reconnects with a new SSRC (new sequence
// and timestamp bases) stays one continuous stream on the down-track, with a
// timestamp jump equal to the real gap.
func TestDownTrackContinuousAcrossSSRCChange(t *testing.T) {
	clk := newFakeClock()
	pub := newTestPublication(t, PublicationConfig{Codec: vp8Codec, Clock: clk.Now})
	w := newCaptureWriter()
	subscribe(t, pub, DownTrackConfig{SSRC: 4242, PayloadType: 100, Writer: w})

	const frame = 33 * time.Millisecond
	seqA, tsA := uint16(65500), uint32(4294960000) // both wrap during the run
	for i := 0; i < 50; i++ {
		mustWrite(t, pub, simplePacket(0xA, seqA+uint16(i), tsA+uint32(i)*2970))
		clk.Advance(frame)
	}
	gap := 2 * time.Second
	clk.Advance(gap)
	seqB, tsB := uint16(100), uint32(777)
	for i := 0; i < 50; i++ {
		mustWrite(t, pub, simplePacket(0xB, seqB+uint16(i), tsB+uint32(i)*2970))
		clk.Advance(frame)
	}
	// A late packet of the old source must not reach the subscriber.
	mustWrite(t, pub, simplePacket(0xA, seqA+50, tsA+50*2970))
	mustWrite(t, pub, simplePacket(0xB, seqB+50, tsB+50*2970))

	got := w.waitCount(t, 101)
	checkContinuous(t, got, 4242)
	for i := 1; i < len(got); i++ {
		d := got[i].hdr.Timestamp - got[i-1].hdr.Timestamp
		want := uint32(2970)
		if i == 50 {
			// Real gap between the last A and the first B packet.
			want = durationToTicks(frame+gap, 90000)
		}
		if d != want {
			t.Fatalf("packet %d: timestamp step %d, want %d", i, d, want)
		}
		if got[i].hdr.PayloadType != 100 {
			t.Fatalf("packet %d: payload type %d", i, got[i].hdr.PayloadType)
		}
	}
	if got[100].payload[3] != 0xB {
		t.Fatal("late packet of the old source was forwarded")
	}
	st := pub.Stats()
	if st.SourceSwitches != 1 || st.DropsStaleSource != 1 {
		t.Fatalf("stats: %+v", st)
	}
}

// SwitchSource handles a replaced source that keeps its SSRC but restarts
// its sequence numbers and timestamps.
func TestDownTrackContinuousAcrossSwitchSource(t *testing.T) {
	clk := newFakeClock()
	pub := newTestPublication(t, PublicationConfig{Codec: vp8Codec, Clock: clk.Now})
	w := newCaptureWriter()
	subscribe(t, pub, DownTrackConfig{SSRC: 9, PayloadType: 96, Writer: w})
	for i := 0; i < 10; i++ {
		mustWrite(t, pub, simplePacket(1, 1000+uint16(i), 50000+uint32(i)*3000))
		clk.Advance(10 * time.Millisecond)
	}
	pub.SwitchSource()
	for i := 0; i < 10; i++ {
		mustWrite(t, pub, simplePacket(1, 20000+uint16(i), 9+uint32(i)*3000))
		clk.Advance(10 * time.Millisecond)
	}
	got := w.waitCount(t, 20)
	checkContinuous(t, got, 9)
	if d := got[10].hdr.Timestamp - got[9].hdr.Timestamp; d != 900 {
		t.Fatalf("timestamp jump %d, want 900 (10ms)", d)
	}
}

func TestMungerDropsPacketsOlderThanStart(t *testing.T) {
	m := newMunger(90000, 10, 100)
	mk := func(epoch uint32, ext uint64, ts uint32, arrival int64) *packet {
		p := &packet{ext: ext, epoch: epoch, arrival: arrival}
		p.hdr.Timestamp = ts
		return p
	}
	r, ok := m.rewrite(mk(1, 500, 1000, 0))
	if !ok || uint16(r.ext) != 10 || r.ts != 100 {
		t.Fatalf("first packet: %+v %v", r, ok)
	}
	if _, ok := m.rewrite(mk(1, 499, 1000, 0)); ok {
		t.Fatal("packet older than the start was accepted")
	}
	// Reordered but after the start: mapped with the same offset.
	if r, ok := m.rewrite(mk(1, 503, 1300, 0)); !ok || uint16(r.ext) != 13 || r.ts != 400 {
		t.Fatalf("reordered packet: %+v", r)
	}
	if r, ok := m.rewrite(mk(1, 502, 1200, 0)); !ok || uint16(r.ext) != 12 {
		t.Fatalf("late packet: %+v", r)
	}
	// New epoch continues after the highest (13), 1s later.
	if r, ok := m.rewrite(mk(2, 7, 5, int64(time.Second))); !ok || uint16(r.ext) != 14 || r.ts != 400+90000 {
		t.Fatalf("new epoch: %+v", r)
	}
	if _, ok := m.rewrite(mk(1, 504, 1400, 0)); ok {
		t.Fatal("packet of an old epoch accepted")
	}
}

func nackFor(ssrc uint32, seqs ...uint16) []rtcp.Packet {
	return []rtcp.Packet{&rtcp.TransportLayerNack{MediaSSRC: ssrc, Nacks: rtcp.NackPairsFromSequenceNumbers(seqs)}}
}

func TestNackAnsweredFromHistoryWithTranslation(t *testing.T) {
	clk := newFakeClock()
	pub := newTestPublication(t, PublicationConfig{Codec: vp8Codec, Clock: clk.Now})
	w := newCaptureWriter()
	d := subscribe(t, pub, DownTrackConfig{SSRC: 5, PayloadType: 96, Writer: w})
	for i := 0; i < 20; i++ {
		mustWrite(t, pub, simplePacket(0xA, 30000+uint16(i), uint32(i)*3000))
	}
	// Switch source: NACKs for packets of the first source must still find
	// them although their upstream numbers now mean something else.
	clk.Advance(time.Second)
	for i := 0; i < 20; i++ {
		mustWrite(t, pub, simplePacket(0xB, 30000+uint16(i), uint32(i)*3000))
	}
	orig := w.waitCount(t, 40)

	want := []sent{orig[3], orig[17], orig[25]}
	d.HandleRTCP(nackFor(5, want[0].hdr.SequenceNumber, want[1].hdr.SequenceNumber, want[2].hdr.SequenceNumber))
	got := w.waitCount(t, 43)[40:]
	for i := range want {
		if got[i].hdr.SequenceNumber != want[i].hdr.SequenceNumber ||
			got[i].hdr.Timestamp != want[i].hdr.Timestamp ||
			got[i].hdr.SSRC != 5 || !bytes.Equal(got[i].payload, want[i].payload) {
			t.Fatalf("retransmission %d: got %+v %x, want %+v %x", i, got[i].hdr, got[i].payload, want[i].hdr, want[i].payload)
		}
	}
	if got[0].payload[3] != 0xA || got[2].payload[3] != 0xB {
		t.Fatal("retransmission came from the wrong source")
	}

	// An immediate repeat is suppressed; a sequence number never sent is a
	// miss. Both are served by the writer goroutine, so poll the counters.
	d.HandleRTCP(nackFor(5, want[0].hdr.SequenceNumber, orig[39].hdr.SequenceNumber+500))
	eventually(t, 5*time.Second, func() bool {
		st := d.Stats()
		return st.RetransmitsSuppressed+st.RetransmitMisses >= 2
	})
	st := d.Stats()
	if st.Retransmissions != 3 || st.RetransmitsSuppressed != 1 || st.RetransmitMisses != 1 || st.NacksReceived != 5 {
		t.Fatalf("stats: %+v", st)
	}
}

func TestRTXFormat(t *testing.T) {
	pub := newTestPublication(t, PublicationConfig{Codec: vp8Codec})
	w, rtx := newCaptureWriter(), newCaptureWriter()
	d := subscribe(t, pub, DownTrackConfig{
		SSRC: 5, PayloadType: 96, RTXSSRC: 6, RTXPayloadType: 97,
		Writer: w, RTXWriter: rtx,
	})
	for i := 0; i < 10; i++ {
		mustWrite(t, pub, simplePacket(0xA, 100+uint16(i), uint32(i)*3000))
	}
	orig := w.waitCount(t, 10)
	d.HandleRTCP(nackFor(5, orig[2].hdr.SequenceNumber, orig[7].hdr.SequenceNumber))
	got := rtx.waitCount(t, 2)
	for i, o := range []sent{orig[2], orig[7]} {
		r := got[i]
		osn := uint16(r.payload[0])<<8 | uint16(r.payload[1])
		if r.hdr.SSRC != 6 || r.hdr.PayloadType != 97 || r.hdr.Timestamp != o.hdr.Timestamp ||
			osn != o.hdr.SequenceNumber || !bytes.Equal(r.payload[2:], o.payload) {
			t.Fatalf("RTX %d: hdr %+v payload %x; original %+v %x", i, r.hdr, r.payload, o.hdr, o.payload)
		}
	}
	if got[1].hdr.SequenceNumber != got[0].hdr.SequenceNumber+1 {
		t.Fatal("RTX sequence numbers are not consecutive")
	}
	if w.count() != 10 {
		t.Fatal("RTX packets leaked onto the primary writer")
	}
}

func TestHistoryRecyclingIsSafe(t *testing.T) {
	h := newHistory(4)
	pool := newPacketPool()
	mk := func(ext uint64) *packet {
		p := getPacket(pool)
		p.ext, p.epoch = ext, 1
		p.publish()
		return p
	}
	first := mk(1)
	h.put(first)
	first.release()
	if got := h.get(1, 1); got != first {
		t.Fatal("stored packet not found")
	} else {
		got.release()
	}
	// Overwrite the slot (1 and 5 share it): the old packet is released
	// and a lookup for it misses rather than returning the new one.
	second := mk(5)
	h.put(second)
	second.release()
	if got := h.get(1, 1); got != nil {
		t.Fatal("evicted packet returned")
	}
	if got := h.get(2, 5); got != nil {
		t.Fatal("packet of another epoch returned")
	}
	h.clear()
	if got := h.get(1, 5); got != nil {
		t.Fatal("cleared history still answers")
	}
}
