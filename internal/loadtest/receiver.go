package loadtest

import (
	"math/bits"
	"sync"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"

	"github.com/rtcio-gateway/rtcio-gateway/codec"
)

// sample is one received packet, kept so that the window can be chosen
// after the run (workers need not know it while they receive).
type sample struct {
	sendNs int64
	latNs  int64
	size   int32
}

// streamRx is what one reader saw of one published stream.
type streamRx struct {
	stream     uint32
	seen       []uint64 // bitset of trailer sequence numbers
	firstNs    int64
	firstKeyNs int64
	samples    []sample
}

func (s *streamRx) mark(seq uint32) {
	w := int(seq / 64)
	if w >= len(s.seen) {
		s.seen = append(s.seen, make([]uint64, w+1-len(s.seen)+len(s.seen)/2)...)
	}
	s.seen[w] |= 1 << (seq % 64)
}

// countRange counts the distinct sequence numbers in [from, to).
func (s *streamRx) countRange(from, to uint32) int {
	n := 0
	for seq := from; seq < to; {
		w := int(seq / 64)
		if w >= len(s.seen) {
			break
		}
		word := s.seen[w]
		lo := seq % 64
		hi := uint32(64)
		if end := to - uint32(w)*64; end < 64 {
			hi = end
		}
		mask := ^uint64(0) << lo
		if hi < 64 {
			mask &= (1 << hi) - 1
		}
		n += bits.OnesCount64(word & mask)
		seq = uint32(w+1) * 64
	}
	return n
}

// rtpReader is the part of *webrtc.TrackRemote a reader uses.
type rtpReader interface {
	Read(b []byte) (int, interceptor.Attributes, error)
}

// inbox collects what one participant receives, over all its tracks.
type inbox struct {
	mu       sync.Mutex
	streams  []*streamRx
	bad      int64 // packets without a trailer or that did not parse
	progress func()
	wg       sync.WaitGroup
}

func newInbox(progress func()) *inbox { return &inbox{progress: progress} }

// read receives from one track until it fails (the connection closed). It
// reads into one buffer and parses into one packet, so the generator's own
// cost per packet stays small next to the server's.
func (in *inbox) read(r rtpReader, mime string) {
	in.wg.Add(1)
	go func() {
		defer in.wg.Done()
		buf := make([]byte, 1500)
		var pkt rtp.Packet
		mine := map[uint32]*streamRx{}
		var last *streamRx
		for {
			n, _, err := r.Read(buf)
			if err != nil {
				return
			}
			now := time.Now().UnixNano()
			if err := pkt.Unmarshal(buf[:n]); err != nil {
				in.countBad()
				continue
			}
			tr, err := ParseTrailer(pkt.Payload)
			if err != nil {
				in.countBad()
				continue
			}
			rx := last
			if rx == nil || rx.stream != tr.Stream {
				rx = mine[tr.Stream]
				if rx == nil {
					rx = &streamRx{stream: tr.Stream, firstNs: now}
					mine[tr.Stream] = rx
					in.mu.Lock()
					in.streams = append(in.streams, rx)
					in.mu.Unlock()
					in.progress()
				}
				last = rx
			}
			// rx's fields belong to this goroutine until it returns;
			// they are read only after every reader ended.
			if rx.firstKeyNs == 0 && codec.IsKeyframe(mime, pkt.Payload) {
				rx.firstKeyNs = now
			}
			rx.mark(tr.Seq)
			rx.samples = append(rx.samples, sample{sendNs: tr.SendNs, latNs: now - tr.SendNs, size: int32(n)})
		}
	}()
}

func (in *inbox) countBad() {
	in.mu.Lock()
	in.bad++
	in.mu.Unlock()
}

// streamIDs lists the distinct streams received so far.
func (in *inbox) streamIDs() map[uint32]bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	ids := make(map[uint32]bool, len(in.streams))
	for _, s := range in.streams {
		ids[s.stream] = true
	}
	return ids
}
