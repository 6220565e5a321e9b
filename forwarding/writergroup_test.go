package forwarding

import (
	"context"
	"testing"
	"time"

	"github.com/pion/rtcp"
)

// gatedWriter is a captureWriter that is a ReadyWriter: not ready until the
// test closes ready.
type gatedWriter struct {
	*captureWriter
	ready chan struct{}
}

func (w gatedWriter) Ready() <-chan struct{} { return w.ready }

func newTestGroup(t testing.TB, cfg WriterGroupConfig) *WriterGroup {
	t.Helper()
	g := NewWriterGroup(context.Background(), cfg)
	t.Cleanup(g.Close)
	return g
}

// One group serves the down-tracks of several publications: every member
// gets every packet of its publication in order, rewritten to its own SSRC,
// and a late joiner its keyframe cache replay first.
func TestWriterGroupServesAllMembers(t *testing.T) {
	g := newTestGroup(t, WriterGroupConfig{})
	const pubs, n = 4, 300
	var ps []*Publication
	var ws []*captureWriter
	for i := range pubs {
		p := newTestPublication(t, PublicationConfig{Codec: vp8Codec})
		w := newCaptureWriter()
		subscribe(t, p, DownTrackConfig{SSRC: uint32(100 + i), Writer: w, Group: g})
		ps, ws = append(ps, p), append(ws, w)
	}
	if g.Len() != pubs {
		t.Fatalf("group has %d members, want %d", g.Len(), pubs)
	}
	for s := range n {
		for i, p := range ps {
			mustWrite(t, p, simplePacket(uint32(i+1), uint16(s), uint32(s)*90))
		}
	}
	for i, w := range ws {
		got := w.waitCount(t, n)
		if len(got) != n {
			t.Fatalf("member %d got %d of %d", i, len(got), n)
		}
		for s, pk := range got {
			if pk.hdr.SSRC != uint32(100+i) || pk.payload[1] != byte(s>>8) || pk.payload[2] != byte(s) || pk.payload[3] != byte(i+1) {
				t.Fatalf("member %d packet %d: ssrc %d payload %v", i, s, pk.hdr.SSRC, pk.payload)
			}
			if s > 0 && pk.hdr.SequenceNumber != got[s-1].hdr.SequenceNumber+1 {
				t.Fatalf("member %d: sequence %d after %d", i, pk.hdr.SequenceNumber, got[s-1].hdr.SequenceNumber)
			}
		}
	}

	// A late joiner in the group starts with the cache.
	frames := vp8Frames(t, "vp8.ivf", 7)
	vp := newTestPublication(t, PublicationConfig{Codec: vp8Codec})
	for _, pk := range frames[0] {
		mustWrite(t, vp, pk)
	}
	late := newCaptureWriter()
	d := subscribe(t, vp, DownTrackConfig{SSRC: 9, Writer: late, Group: g})
	if got := late.waitCount(t, len(frames[0])); len(got) < len(frames[0]) {
		t.Fatalf("late joiner got %d packets", len(got))
	}
	eventually(t, testWait, func() bool { return d.Stats().ReplayedPackets == uint64(len(frames[0])) })
}

// A member whose writer is not ready yet does not hold up the others: its
// packets wait in its queue and go out, in order, once it is ready.
func TestWriterGroupWaitsForUnreadyWriter(t *testing.T) {
	g := newTestGroup(t, WriterGroupConfig{})
	p := newTestPublication(t, PublicationConfig{Codec: vp8Codec})
	slow := gatedWriter{captureWriter: newCaptureWriter(), ready: make(chan struct{})}
	fast := newCaptureWriter()
	subscribe(t, p, DownTrackConfig{SSRC: 1, Writer: slow, Group: g})
	subscribe(t, p, DownTrackConfig{SSRC: 2, Writer: fast, Group: g})
	const n = 50
	for s := range n {
		mustWrite(t, p, simplePacket(1, uint16(s), uint32(s)*90))
	}
	fast.waitCount(t, n)
	if c := slow.count(); c != 0 {
		t.Fatalf("unready writer was written %d packets", c)
	}
	close(slow.ready)
	got := slow.waitCount(t, n)
	for s, pk := range got {
		if pk.payload[2] != byte(s) {
			t.Fatalf("packet %d out of order: %v", s, pk.payload)
		}
	}
}

// Closing a member, or ending its context, stops it alone; closing the group
// stops every remaining member (Done closed, out of the fan-out) while the
// publication goes on.
func TestWriterGroupMemberAndGroupClose(t *testing.T) {
	g := NewWriterGroup(context.Background(), WriterGroupConfig{})
	p := newTestPublication(t, PublicationConfig{Codec: vp8Codec})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	byCtx, err := p.Subscribe(ctx, DownTrackConfig{SSRC: 1, Writer: newCaptureWriter(), Group: g})
	if err != nil {
		t.Fatal(err)
	}
	byClose := subscribe(t, p, DownTrackConfig{SSRC: 2, Writer: newCaptureWriter(), Group: g})
	w3 := newCaptureWriter()
	left := subscribe(t, p, DownTrackConfig{SSRC: 3, Writer: w3, Group: g})

	cancel()
	receive(t, byCtx.Done(), "end of the down-track whose context ended")
	if err := byClose.Close(); err != nil {
		t.Fatal(err)
	}
	if s := p.Stats().Subscribers; s != 1 || g.Len() != 1 {
		t.Fatalf("after two members stopped: %d subscribers, %d members", s, g.Len())
	}
	mustWrite(t, p, simplePacket(1, 1, 1))
	w3.waitCount(t, 1)

	g.Close()
	receive(t, left.Done(), "end of the member when its group closed")
	if s := p.Stats().Subscribers; s != 0 {
		t.Fatalf("%d subscribers after the group closed", s)
	}
	mustWrite(t, p, simplePacket(1, 2, 2))
	if _, err := p.Subscribe(context.Background(), DownTrackConfig{SSRC: 4, Writer: newCaptureWriter(), Group: g}); err == nil {
		t.Fatal("subscribed into a closed group")
	}
	if s := p.Stats().Subscribers; s != 0 {
		t.Fatalf("a refused member is in the fan-out: %d subscribers", s)
	}
}

// NACKs to a member are served by the group, and members send sender
// reports at the group's interval.
func TestWriterGroupNacksAndSenderReports(t *testing.T) {
	g := newTestGroup(t, WriterGroupConfig{SenderReportInterval: 10 * time.Millisecond})
	p := newTestPublication(t, PublicationConfig{Codec: vp8Codec})
	w := newCaptureWriter()
	rc := newRTCPCapture()
	d := subscribe(t, p, DownTrackConfig{SSRC: 5, Writer: w, RTCP: rc, Group: g})
	for s := range 10 {
		mustWrite(t, p, simplePacket(1, uint16(s), uint32(s)*90))
	}
	got := w.waitCount(t, 10)
	d.HandleRTCP([]rtcp.Packet{&rtcp.TransportLayerNack{MediaSSRC: 5, Nacks: []rtcp.NackPair{{PacketID: got[3].hdr.SequenceNumber}}}})
	again := w.waitCount(t, 11)
	if again[10].hdr.SequenceNumber != got[3].hdr.SequenceNumber || again[10].payload[2] != 3 {
		t.Fatalf("retransmission: seq %d payload %v", again[10].hdr.SequenceNumber, again[10].payload)
	}
	mustWrite(t, p, simplePacket(1, 10, 900))
	p.HandleSenderReport(&rtcp.SenderReport{SSRC: 1, NTPTime: 1 << 32, RTPTime: 0})
	waitFor(t, testWait, rc.changed, func() bool {
		for _, sr := range rc.reports() {
			if sr.SSRC == 5 {
				return true
			}
		}
		return false
	})
}
