package recorder

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"

	"github.com/rtcio-gateway/rtcio-gateway/codec"
	"github.com/rtcio-gateway/rtcio-gateway/forwarding"
)

// ErrStopped is returned by a track's WriteRTP once its recording has
// stopped; forwarding counts it as the sink's write error.
var ErrStopped = errors.New("recorder: recording stopped")

// TrackConfig describes one track of a recorded stream.
type TrackConfig struct {
	Codec forwarding.Codec // MimeType and ClockRate are required
	// ID is the track id (the msid track id), kept in the manifest.
	ID string
	// RequestKeyframe asks the publisher for a keyframe (for example
	// Publication.RequestKeyframe). The recorder calls it, throttled, when
	// a video track must restart at a keyframe: at the start of a file and
	// after a loss. It must not block. Nil: the recorder waits for the
	// publisher's next keyframe on its own.
	RequestKeyframe func()
}

// Track is one track of a Recording. It is a forwarding.Sink (and a
// forwarding.SenderReportSink): attach it to the track's publication with
// AddSink, or feed it directly. WriteRTP never blocks: it copies the packet
// into the recording's bounded queue, and drops it when the queue is full
// or the recording has stopped.
type Track struct {
	rec   *Recording
	index int
	cfg   TrackConfig
	kind  codec.Kind

	sr     atomic.Pointer[senderReport]
	closed atomic.Bool

	received, queueDrops atomic.Uint64
}

// senderReport is a publisher's NTP/RTP pairing and when it arrived.
type senderReport struct {
	ssrc    uint32
	ntp     uint64
	rtp     uint32
	arrival time.Time
}

// WriteRTP queues a copy of pkt for the recording.
func (t *Track) WriteRTP(pkt *rtp.Packet) error {
	if pkt == nil {
		return fmt.Errorf("recorder: nil packet")
	}
	if t.rec.stopped.Load() || t.closed.Load() {
		return ErrStopped
	}
	t.received.Add(1)
	p := &inPacket{track: t, hdr: pkt.Header.Clone(), arrival: time.Now()}
	p.payload = append([]byte(nil), pkt.Payload...)
	select {
	case t.rec.in <- p:
	default:
		// The recording's writer is behind (a slow disk): losing this
		// packet shows up as a sequence gap, so video restarts at the
		// next keyframe.
		t.queueDrops.Add(1)
	}
	return nil
}

// WriteSenderReport keeps the publisher's latest sender report for aligning
// this track with the others.
func (t *Track) WriteSenderReport(sr *rtcp.SenderReport) {
	if sr == nil {
		return
	}
	t.sr.Store(&senderReport{ssrc: sr.SSRC, ntp: sr.NTPTime, rtp: sr.RTPTime, arrival: time.Now()})
	t.rec.poke()
}

// Close marks the track ended (forwarding calls it when the publication
// ends or the sink is detached). The recording stops once all its tracks
// have ended.
func (t *Track) Close() error {
	if !t.closed.Swap(true) {
		t.rec.poke()
	}
	return nil
}

// Codec returns the track's codec.
func (t *Track) Codec() forwarding.Codec { return t.cfg.Codec }

var (
	_ forwarding.Sink             = (*Track)(nil)
	_ forwarding.SenderReportSink = (*Track)(nil)
)

// maxTSJump is the largest timestamp step, in seconds, taken as a gap in
// the media rather than as a discontinuity of the sender's clock.
const maxTSJump = 10

// maxFramePackets and maxFrameBytes bound one frame's assembly, so hostile
// input (no marker bit, ever) cannot grow memory.
const (
	maxFramePackets = 2048
	maxFrameBytes   = 4 << 20
)

// frame is one complete media frame on its way to the file.
type frame struct {
	ts       int64 // unwrapped RTP timestamp
	epoch    int   // source generation of the track
	arrival  time.Time
	data     []byte
	info     frameInfo
	ms       int64     // time in the recording, set once mapped
	queuedAt time.Time // when it entered the interleaver
}

// trackState is the recording goroutine's view of one track: reordering,
// frame assembly, keyframe gating and timestamp unwrapping.
type trackState struct {
	t       *Track
	kind    codec.Kind
	clock   int64
	reorder *reorderBuffer

	haveSSRC bool
	ssrc     uint32
	epoch    int

	// Frame assembly.
	asmActive bool
	asmTS     uint32
	asmPkts   [][]byte
	asmBytes  int
	asmAt     time.Time

	haveTS   bool
	lastTS   uint32
	extTS    int64
	durTicks int64 // RTP ticks between the last two frames

	ended bool // the track was closed and its last frames let out

	needKeyframe  bool
	lastKFRequest time.Time

	// Frames waiting for a file (before the first, or for a roll that adds
	// this track), and their size.
	pending      []*frame
	pendingBytes int

	anchored    bool
	anchorEpoch int
	anchorTS    int64
	anchorAt    int64 // nanoseconds in the recording's time domain
	lastMs      int64
	haveLastMs  bool

	// Counters, reported in manifests.
	lost, late, framesDropped, badFrames uint64
	// What earlier files accounted for.
	recvMark, lostMark, droppedMark uint64
	width, height                   int
	config                          []byte
}

func newTrackState(t *Track, cfg *Config) *trackState {
	return &trackState{
		t:            t,
		kind:         t.kind,
		clock:        int64(t.cfg.Codec.ClockRate),
		reorder:      newReorderBuffer(cfg.ReorderPackets, cfg.ReorderLatency),
		needKeyframe: t.kind.Video(),
	}
}

// frameSink receives the frames a track completes.
type frameSink func(st *trackState, f *frame)

// onPacket takes one packet in arrival order (from the recording's queue).
func (st *trackState) onPacket(p *inPacket, out frameSink) {
	if st.haveSSRC && p.hdr.SSRC != st.ssrc {
		// A new source (a replaced track): what is buffered belongs to
		// the old one, and the new one numbers from scratch.
		st.flush(out)
		st.reorder = newReorderBuffer(len(st.reorder.slots), st.reorder.maxDelay)
		st.epoch++
		st.haveTS = false
		st.needKeyframe = st.kind.Video()
	}
	st.haveSSRC, st.ssrc = true, p.hdr.SSRC
	st.reorder.push(p, func(p *inPacket, lost int) { st.onOrdered(p, lost, out) })
	st.late = st.reorder.late
}

// expire declares lost what waited too long in the reorder buffer.
func (st *trackState) expire(now time.Time, out frameSink) {
	st.reorder.expire(now, func(p *inPacket, lost int) { st.onOrdered(p, lost, out) })
}

// flush releases everything still in the reorder buffer.
func (st *trackState) flush(out frameSink) {
	st.reorder.flush(func(p *inPacket, lost int) { st.onOrdered(p, lost, out) })
}

// onOrdered assembles frames from packets in sequence order.
func (st *trackState) onOrdered(p *inPacket, lost int, out frameSink) {
	if lost > 0 {
		st.lost += uint64(lost)
		st.damage()
	}
	if len(p.payload) == 0 {
		return // padding only
	}
	if !st.kind.Video() {
		st.complete([][]byte{p.payload}, p.hdr.Timestamp, p.arrival, out)
		return
	}
	if st.asmActive && p.hdr.Timestamp != st.asmTS {
		// The previous frame never got its marker: its tail is lost.
		st.damage()
	}
	if !st.asmActive {
		if !isPartitionHead(st.kind, p.payload) {
			st.damage()
			return
		}
		st.asmActive, st.asmTS, st.asmAt = true, p.hdr.Timestamp, p.arrival
		st.asmPkts, st.asmBytes = st.asmPkts[:0], 0
	}
	st.asmPkts = append(st.asmPkts, p.payload)
	st.asmBytes += len(p.payload)
	if len(st.asmPkts) > maxFramePackets || st.asmBytes > maxFrameBytes {
		st.damage()
		return
	}
	if p.hdr.Marker {
		pk := st.asmPkts
		st.asmActive = false
		st.complete(pk, st.asmTS, st.asmAt, out)
		st.asmPkts = pk[:0]
	}
}

// damage drops the frame being assembled; video then waits for a keyframe,
// because the frames that follow may refer to what was lost.
func (st *trackState) damage() {
	if st.asmActive {
		st.asmActive = false
		st.framesDropped++
	}
	clear(st.asmPkts)
	st.asmPkts = st.asmPkts[:0]
	if st.kind.Video() {
		st.needKeyframe = true
	}
}

func (st *trackState) complete(payloads [][]byte, ts uint32, at time.Time, out frameSink) {
	data, err := depacketize(st.kind, payloads)
	if err != nil {
		st.badFrames++
		st.damage()
		return
	}
	info := inspect(st.kind, data)
	if st.kind.Video() {
		if info.keyframe && st.needsConfig() && info.config == nil && st.config == nil {
			info.keyframe = false // cannot start a file without it
		}
		if st.needKeyframe && !info.keyframe {
			st.framesDropped++
			return
		}
		st.needKeyframe = false
		if info.keyframe {
			if info.width > 0 {
				st.width, st.height = info.width, info.height
			}
			if info.config != nil {
				st.config = info.config
			}
		}
	}
	if !st.haveTS {
		st.haveTS, st.lastTS, st.extTS = true, ts, int64(ts)
	} else {
		d := int64(int32(ts - st.lastTS))
		if d > maxTSJump*st.clock || d < -st.clock {
			// The sender's timestamps jumped (a restarted encoder, a
			// broken sender): rather than a gap of hours or a step
			// back, the track is placed again by arrival time.
			st.epoch++
		}
		if d > 0 && d < st.clock {
			st.durTicks = d
		}
		st.extTS += d
		st.lastTS = ts
	}
	out(st, &frame{ts: st.extTS, epoch: st.epoch, arrival: at, data: data, info: info})
}

// needsConfig reports whether the container needs codec private data taken
// from the stream before the first frame.
func (st *trackState) needsConfig() bool { return st.kind == codec.H264 || st.kind == codec.AV1 }

// wantsKeyframe asks the publisher for a keyframe, throttled.
func (st *trackState) wantsKeyframe(now time.Time, interval time.Duration) {
	if !st.kind.Video() || st.t.cfg.RequestKeyframe == nil {
		return
	}
	if !st.lastKFRequest.IsZero() && now.Sub(st.lastKFRequest) < interval {
		return
	}
	st.lastKFRequest = now
	st.t.cfg.RequestKeyframe()
}
