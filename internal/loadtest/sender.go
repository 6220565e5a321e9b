package loadtest

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// publishedTrack is one track a participant publishes, with the counter the
// run reads to know which sequence numbers fell inside its window.
type publishedTrack struct {
	stream uint32
	kind   Kind
	owner  int
	local  *webrtc.TrackLocalStaticRTP
	src    source

	sent      atomic.Uint32 // next trailer sequence number
	writeErrs atomic.Int64
	// keyRequests counts PLI and FIR received; the sender turns them into
	// keyframes, at most one per keyframeGap.
	keyRequests atomic.Int64
	// keyTimes are the arrival times (Unix ns) of those requests, one per
	// PLI or FIR: how often a publisher is asked for a keyframe is what
	// the server's upstream throttling is judged by (Result.KeyframeRequests).
	keyMu    sync.Mutex
	keyTimes []int64
}

// keyframeGap throttles keyframes on request, as encoders do.
const keyframeGap = 300 * time.Millisecond

// onRTCP takes the RTCP a receiver sent about this track.
func (t *publishedTrack) onRTCP(pkts []rtcp.Packet) {
	now := time.Now().UnixNano()
	for _, p := range pkts {
		switch p.(type) {
		case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
			t.keyRequests.Add(1)
			t.keyMu.Lock()
			t.keyTimes = append(t.keyTimes, now)
			t.keyMu.Unlock()
		}
	}
}

// keyRequestTimes copies the arrival times of the keyframe requests so far,
// in order (each peer connection's RTCP has its own reader goroutine, so
// appends from two of them may interleave).
func (t *publishedTrack) keyRequestTimes() []int64 {
	t.keyMu.Lock()
	at := append([]int64(nil), t.keyTimes...)
	t.keyMu.Unlock()
	slices.Sort(at)
	return at
}

func newPublishedTrack(stream uint32, kind Kind, owner int, m Media) (*publishedTrack, error) {
	src, err := newSource(m, kind)
	if err != nil {
		return nil, err
	}
	capability := webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}
	if kind == Audio {
		capability = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}
	}
	id := string(kind) + "-" + strconv.Itoa(int(stream))
	local, err := webrtc.NewTrackLocalStaticRTP(capability, id, "stream-"+strconv.Itoa(owner))
	if err != nil {
		return nil, err
	}
	return &publishedTrack{stream: stream, kind: kind, owner: owner, local: local, src: src}, nil
}

// run sends frames in real time until ctx ends. A frame's packets leave
// back to back, as an encoder's would; frames are paced by the clock, and a
// sender that falls more than a second behind skips ahead rather than
// bursting, so an overloaded generator shows up as a lower rate, not as a
// flood.
func (t *publishedTrack) run(ctx context.Context) {
	pkt := &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: uint16(t.stream * 1000), Timestamp: t.stream * 7919}}
	buf := make([]byte, 0, 1500)
	timer := time.NewTimer(0)
	defer timer.Stop()
	due := time.Now()
	var served int64
	var lastKey time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		for !time.Now().Before(due) {
			if req := t.keyRequests.Load(); req != served && time.Since(lastKey) >= keyframeGap {
				served = req
				t.src.keyframe()
			}
			f := t.src.next()
			if f.key {
				lastKey = time.Now()
			}
			for i, p := range f.payloads {
				tr := Trailer{Stream: t.stream, Seq: t.sent.Load()}
				if f.key && i == 0 {
					tr.Flags |= FlagKeyframe
				}
				tr.SendNs = time.Now().UnixNano()
				buf = AppendTrailer(append(buf[:0], p...), tr)
				pkt.Payload = buf
				pkt.Marker = i == len(f.payloads)-1
				if err := t.local.WriteRTP(pkt); err != nil {
					t.writeErrs.Add(1)
				}
				pkt.SequenceNumber++
				t.sent.Add(1)
			}
			pkt.Timestamp += f.ticks
			due = due.Add(f.dur)
			if time.Since(due) > time.Second {
				due = time.Now()
			}
		}
		timer.Reset(time.Until(due))
	}
}

// senders runs every published track of a run.
type senders struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func startSenders(ctx context.Context, tracks []*publishedTrack) *senders {
	ctx, cancel := context.WithCancel(ctx)
	s := &senders{cancel: cancel}
	for _, t := range tracks {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			t.run(ctx)
		}()
	}
	return s
}

func (s *senders) stop() {
	s.cancel()
	s.wg.Wait()
}
