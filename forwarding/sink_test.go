package forwarding

import (
	"context"
	"sync"
	"testing"

	"github.com/pion/rtcp"
)

// srSink is a sink that also takes sender reports.
type srSink struct {
	recordingSink
	srMu sync.Mutex
	srs  []rtcp.SenderReport
}

func (s *srSink) WriteSenderReport(sr *rtcp.SenderReport) {
	s.srMu.Lock()
	s.srs = append(s.srs, *sr)
	s.srMu.Unlock()
}

func (s *srSink) reports() []rtcp.SenderReport {
	s.srMu.Lock()
	defer s.srMu.Unlock()
	return append([]rtcp.SenderReport(nil), s.srs...)
}

func TestSinkGetsSenderReportsOfCurrentSource(t *testing.T) {
	pub := newTestPublication(t, PublicationConfig{Codec: vp8Codec})
	withSR := &srSink{recordingSink: recordingSink{changed: make(chan struct{}, 1)}}
	plain := &recordingSink{changed: make(chan struct{}, 1)}
	for _, s := range []Sink{withSR, plain} {
		if _, err := pub.AddSink(context.Background(), s, SinkOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	// Before any packet there is no current source: the report is dropped.
	pub.HandleSenderReport(&rtcp.SenderReport{SSRC: 0xCAFE, NTPTime: 1, RTPTime: 1})
	mustWrite(t, pub, simplePacket(0xCAFE, 1, 1000))
	pub.HandleSenderReport(&rtcp.SenderReport{SSRC: 0xBEEF, NTPTime: 2, RTPTime: 2}) // other source
	pub.HandleSenderReport(&rtcp.SenderReport{SSRC: 0xCAFE, NTPTime: 3 << 32, RTPTime: 1000})
	pub.HandleSenderReport(nil)

	got := withSR.reports()
	if len(got) != 1 || got[0].SSRC != 0xCAFE || got[0].NTPTime != 3<<32 || got[0].RTPTime != 1000 {
		t.Fatalf("sink got sender reports %+v, want only the current source's", got)
	}
	// The plain sink still gets its packets.
	waitFor(t, testWait, plain.changed, func() bool { p, _ := plain.snapshot(); return len(p) == 1 })
}

// blockingSRSink blocks in WriteSenderReport until released, to show that a
// misbehaving sink does not hold the publication's lock.
type blockingSRSink struct {
	recordingSink
	entered, release chan struct{}
}

func (s *blockingSRSink) WriteSenderReport(*rtcp.SenderReport) {
	wake(s.entered)
	<-s.release
}

func TestSenderReportSinkDoesNotHoldIngest(t *testing.T) {
	pub := newTestPublication(t, PublicationConfig{Codec: vp8Codec})
	s := &blockingSRSink{
		recordingSink: recordingSink{changed: make(chan struct{}, 1)},
		entered:       make(chan struct{}, 1),
		release:       make(chan struct{}),
	}
	var releaseOnce sync.Once
	release := func() { releaseOnce.Do(func() { close(s.release) }) }
	t.Cleanup(release) // a failed test must not leave the report stuck
	if _, err := pub.AddSink(context.Background(), s, SinkOptions{}); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, pub, simplePacket(0xCAFE, 1, 1000))
	done := make(chan struct{})
	go func() {
		defer close(done)
		pub.HandleSenderReport(&rtcp.SenderReport{SSRC: 0xCAFE, NTPTime: 1 << 32, RTPTime: 1000})
	}()
	receive(t, s.entered, "sender report at the sink")
	// While the sink is stuck in its report method, ingest still proceeds.
	mustWrite(t, pub, simplePacket(0xCAFE, 2, 2000))
	waitFor(t, testWait, s.changed, func() bool { p, _ := s.snapshot(); return len(p) == 2 })
	release()
	receive(t, done, "return of HandleSenderReport")
}
