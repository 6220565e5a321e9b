package forwarding

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/pion/rtp"
)

// countingWriter is the cheapest possible subscriber: it only counts.
type countingWriter struct{ n atomic.Int64 }

func (w *countingWriter) WriteRTP(_ *rtp.Header, payload []byte) (int, error) {
	w.n.Add(1)
	return len(payload), nil
}

// BenchmarkForward measures the per-packet path: ingest of one marshalled
// packet (copy into a pooled buffer, parse, history, keyframe cache) and its
// delivery through every down-track's queue, rewriting and writer. One op is
// one upstream packet delivered to all N down-tracks.
func BenchmarkForward(b *testing.B) {
	for _, n := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("downtracks=%d", n), func(b *testing.B) { benchForward(b, n) })
	}
}

func benchForward(b *testing.B, n int) {
	pub, err := NewPublication(context.Background(), PublicationConfig{Codec: vp8Codec})
	if err != nil {
		b.Fatal(err)
	}
	defer pub.Close()
	writers := make([]*countingWriter, n)
	downs := make([]*DownTrack, n)
	for i := range writers {
		writers[i] = &countingWriter{}
		downs[i], err = pub.Subscribe(context.Background(), DownTrackConfig{SSRC: uint32(i + 1), PayloadType: 96, Writer: writers[i]})
		if err != nil {
			b.Fatal(err)
		}
	}
	pkt := simplePacket(0xBEEF, 0, 0)
	pkt.Payload = make([]byte, 1100)
	raw, err := pkt.Marshal()
	if err != nil {
		b.Fatal(err)
	}

	// Queues hold 1024 packets; waiting for the writers every 256 packets
	// keeps the benchmark from measuring drops instead of forwarding.
	const pace = 256
	seq := uint16(0)
	written := int64(0)
	write := func() {
		binary.BigEndian.PutUint16(raw[2:4], seq)
		binary.BigEndian.PutUint32(raw[4:8], uint32(seq/8)*3000) // 8 packets per frame
		seq++
		if err := pub.WriteRaw(raw); err != nil {
			b.Fatal(err)
		}
		written++
		if written%pace == 0 {
			for _, w := range writers {
				spinUntil(b, func() bool { return w.n.Load() >= written })
			}
		}
	}
	for i := 0; i < 4096; i++ { // warm the pool, history and queues
		write()
	}

	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		write()
	}
	for _, w := range writers {
		spinUntil(b, func() bool { return w.n.Load() >= written })
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/packet/downtrack")
	for _, d := range downs {
		if st := d.Stats(); st.DropsQueueFull != 0 || st.PacketsOut != uint64(written) {
			b.Fatalf("down-track dropped packets: %+v", st)
		}
	}
}

// The forwarding path must not allocate per packet, whatever the number of
// down-tracks (issue acceptance 11, checked as a test as well as reported
// by the benchmark).
func TestForwardingDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under -race")
	}
	pub := newTestPublication(t, PublicationConfig{Codec: vp8Codec})
	writers := make([]*countingWriter, 10)
	for i := range writers {
		writers[i] = &countingWriter{}
		subscribe(t, pub, DownTrackConfig{SSRC: uint32(i + 1), Writer: writers[i]})
	}
	pkt := simplePacket(7, 0, 0)
	pkt.Payload = make([]byte, 1000)
	raw, err := pkt.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var seq uint16
	var written int64
	forwardOne := func() {
		binary.BigEndian.PutUint16(raw[2:4], seq)
		binary.BigEndian.PutUint32(raw[4:8], uint32(seq/8)*3000)
		seq++
		if err := pub.WriteRaw(raw); err != nil {
			t.Fatal(err)
		}
		written++
		for _, w := range writers {
			spinUntil(t, func() bool { return w.n.Load() >= written })
		}
	}
	for i := 0; i < 3000; i++ { // fill the pool, history and sequencers
		forwardOne()
	}
	if allocs := testing.AllocsPerRun(2000, forwardOne); allocs > 0.05 {
		t.Fatalf("%.3f allocations per forwarded packet", allocs)
	}
}
