package metrics_test

import (
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"

	"github.com/rtcio-gateway/rtcio-gateway/codec"
	"github.com/rtcio-gateway/rtcio-gateway/forwarding"
	"github.com/rtcio-gateway/rtcio-gateway/gateway/metrics"
)

// chanWriter stands in for a subscriber's pion track: it hands every
// written packet's sequence number to the test.
type chanWriter chan uint16

func (w chanWriter) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	w <- h.SequenceNumber
	return len(payload), nil
}

func recv(t *testing.T, w chanWriter) uint16 {
	t.Helper()
	select {
	case seq := <-w:
		return seq
	case <-time.After(10 * time.Second):
		t.Fatal("subscriber got nothing within 10s")
		return 0
	}
}

// One publisher and two subscribers through the real forwarding plane,
// reported by a source reading its counters on scrape.
func TestPublisherAndTwoSubscribersMoveTheCounters(t *testing.T) {
	m, err := metrics.New(metrics.Options{NoRuntimeMetrics: true})
	if err != nil {
		t.Fatal(err)
	}
	srv := newServer(t, m)

	ctx := t.Context()
	pub, err := forwarding.NewPublication(ctx, forwarding.PublicationConfig{
		Codec: forwarding.Codec{MimeType: codec.MimeTypeOpus, ClockRate: 48000, PayloadType: 111},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	a, b := make(chanWriter, 64), make(chanWriter, 64)
	dtA, err := pub.Subscribe(ctx, forwarding.DownTrackConfig{SSRC: 1001, PayloadType: 111, Writer: a})
	if err != nil {
		t.Fatal(err)
	}
	dtB, err := pub.Subscribe(ctx, forwarding.DownTrackConfig{SSRC: 1002, PayloadType: 111, Writer: b})
	if err != nil {
		t.Fatal(err)
	}
	remove := m.AddSource(func(s *metrics.Snapshot) {
		metrics.AddPublicationStats(s, pub.Stats())
		metrics.AddDownTrackStats(s, dtA.Stats())
		metrics.AddDownTrackStats(s, dtB.Stats())
	})
	defer remove()

	fams := scrape(t, srv)
	if v := value(t, fams, "rtcio_forwarded_packets_total", ""); v != 0 {
		t.Fatalf("forwarded before any packet: %v", v)
	}
	if v := value(t, fams, "rtcio_down_tracks", ""); v != 2 {
		t.Fatalf("down_tracks %v, want 2", v)
	}

	const n, size = 10, 40
	payload := make([]byte, size)
	for i := range n {
		if err := pub.WriteRTP(&rtp.Packet{
			Header:  rtp.Header{Version: 2, PayloadType: 111, SSRC: 77, SequenceNumber: uint16(9000 + i), Timestamp: uint32(i * 960)},
			Payload: payload,
		}); err != nil {
			t.Fatal(err)
		}
	}
	var seqsA []uint16
	for range n {
		seqsA = append(seqsA, recv(t, a))
		recv(t, b)
	}
	// Subscriber A lost its fifth packet and asks for it; B asks for a
	// keyframe.
	dtA.HandleRTCP([]rtcp.Packet{&rtcp.TransportLayerNack{MediaSSRC: 1001, Nacks: []rtcp.NackPair{{PacketID: seqsA[4]}}}})
	if got := recv(t, a); got != seqsA[4] {
		t.Fatalf("retransmitted seq %d, want %d", got, seqsA[4])
	}
	dtB.HandleRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: 1002}})

	// Closing the down-tracks waits for their writer goroutines, so every
	// counter is final before the scrape.
	for _, dt := range []*forwarding.DownTrack{dtA, dtB} {
		if err := dt.Close(); err != nil {
			t.Fatal(err)
		}
		<-dt.Done()
	}
	fams = scrape(t, srv)
	for _, c := range []struct {
		name string
		want float64
	}{
		{"rtcio_publications", 1},
		{"rtcio_received_packets_total", n},
		{"rtcio_forwarded_packets_total", 2 * n},
		{"rtcio_forwarded_bytes_total", 2 * n * size},
		{"rtcio_nacks_received_total", 1},
		{"rtcio_retransmitted_packets_total", 1},
		{"rtcio_plis_received_total", 1},
	} {
		if got := value(t, fams, c.name, ""); got != c.want {
			t.Errorf("%s = %v, want %v", c.name, got, c.want)
		}
	}
	if s := m.Snapshot(); s.PacketsForwarded != 2*n || len(s.Dropped) != 0 {
		t.Errorf("snapshot forwarded %d dropped %v", s.PacketsForwarded, s.Dropped)
	}
}
