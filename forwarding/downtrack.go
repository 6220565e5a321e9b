package forwarding

import (
	"context"
	"encoding/binary"
	"errors"
	"log/slog"
	"math/bits"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"

	"github.com/rtcio-gateway/rtcio-gateway/internal/defaults"
)

// DownTrackConfig configures one subscriber's copy of a publication.
type DownTrackConfig struct {
	SSRC        uint32 // the subscriber-facing SSRC
	PayloadType uint8  // the payload type negotiated with the subscriber

	// RTXSSRC and RTXPayloadType enable RFC 4588 retransmissions when the
	// subscriber negotiated RTX; with RTXSSRC 0, lost packets are resent
	// as they were.
	RTXSSRC        uint32
	RTXPayloadType uint8

	// Writer is required. It must not block indefinitely: Close waits for
	// a write in progress (pion's TrackLocalWriter returns promptly).
	Writer    RTPWriter
	RTXWriter RTPWriter  // optional; RTX packets go to Writer when nil
	RTCP      RTCPWriter // optional; no sender reports when nil

	// Group, when set, serves this down-track from the group's goroutine
	// (one for all the down-tracks of a subscriber) instead of its own.
	Group *WriterGroup

	// QueueSize bounds the packets waiting for this subscriber (rounded up
	// to a power of two). Default 1024 for video, 256 for audio.
	QueueSize int
	// SenderReportInterval is the period of RTCP sender reports. Default 1s.
	// A down-track in a Group sends them at the group's interval instead.
	SenderReportInterval time.Duration
	// RetransmitMinInterval suppresses repeated NACKs for a packet resent
	// less than this long ago. Default 20ms.
	RetransmitMinInterval time.Duration
	// KeepHeaderExtensions forwards the publisher's RTP header extensions.
	// Off by default, because extension ids are negotiated per peer
	// connection and the subscriber's may differ.
	KeepHeaderExtensions bool

	// OnFirstKeyframe, when set, is called once, from the down-track's
	// writer goroutine (its group's, in a Group), right after the first keyframe packet was written
	// (for audio: the first packet): the moment a joiner can show media.
	OnFirstKeyframe func()

	Logger *slog.Logger
}

// maxSequenceMappings bounds each down-track's outgoing-to-upstream
// sequence mappings below the publication's history: 512 packets are 1.7 s
// of video at 300 packets/s, longer ago than any NACK worth answering, and a
// mapping costs 40 bytes per down-track (a 20-person meeting has 760).
const maxSequenceMappings = 512

// maxPendingNacks bounds the NACKed sequence numbers waiting to be served.
const maxPendingNacks = 512

// maxRetransmitsPerPacket bounds how often one packet is resent, so a
// receiver that keeps NACKing (pion's generator does not see packets
// recovered through RTX) cannot multiply its bandwidth.
const maxRetransmitsPerPacket = 4

// DownTrack is one subscriber's view of a publication: its own SSRC,
// sequence numbers and timestamps, a bounded queue and a writer goroutine
// (its own, or its subscriber's WriterGroup), so a slow subscriber only ever
// loses its own packets.
type DownTrack struct {
	pub   *Publication
	cfg   DownTrackConfig
	log   *slog.Logger
	queue *ring
	wake  chan struct{} // its own goroutine's; unused in a group

	// In a group: scheduled is set while the down-track waits in the
	// group's ready list; ready is the writer's ReadyWriter channel until
	// the writer was seen ready (writer only); waiting is set while a
	// helper goroutine waits for that channel.
	scheduled atomic.Bool
	ready     <-chan struct{}
	waiting   atomic.Bool

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	replay []*packet // keyframe cache snapshot, sent before the queue
	// sawKeyframe is set once the first keyframe went out; writer only.
	sawKeyframe bool

	nackMu   sync.Mutex
	nackIn   []uint16 // NACKed sequence numbers waiting for the writer
	nackWork []uint16 // owned by the writer goroutine

	// Owned by the writer goroutine.
	munger     *munger
	seqs       *sequencer
	hdr        rtp.Header
	rtxHdr     rtp.Header
	exts       []rtp.Extension
	rtxBuf     []byte
	rtxSeq     uint16
	srPackets  uint32
	srOctets   uint32
	writeFails uint64

	// paused and rtxBudget are set by the room's control loop (pause.go);
	// pause is the writer's side.
	paused    atomic.Bool
	rtxBudget atomic.Int64
	pause     pauseState

	stats downTrackCounters
}

func newDownTrack(p *Publication, cfg DownTrackConfig) (*DownTrack, error) {
	if cfg.Writer == nil {
		return nil, errors.New("forwarding: down-track needs a writer")
	}
	if cfg.Logger == nil {
		cfg.Logger = p.log
	}
	if p.video {
		defaults.Positive(&cfg.QueueSize, 1024)
	} else {
		defaults.Positive(&cfg.QueueSize, 256) // 5 s of Opus; audio comes in no bursts
	}
	defaults.Positive(&cfg.SenderReportInterval, time.Second)
	defaults.Positive(&cfg.RetransmitMinInterval, 20*time.Millisecond)
	d := &DownTrack{
		pub:  p,
		cfg:  cfg,
		log:  cfg.Logger.With("ssrc", cfg.SSRC),
		wake: make(chan struct{}, 1),
		done: make(chan struct{}),
		// Random first sequence number and timestamp, as RFC 3550 asks.
		munger:   newMunger(p.cfg.Codec.ClockRate, uint16(rand.Uint32()), rand.Uint32()),
		seqs:     newSequencer(min(p.cfg.HistorySize, maxSequenceMappings)),
		nackIn:   make([]uint16, 0, maxPendingNacks),
		nackWork: make([]uint16, 0, maxPendingNacks),
		exts:     make([]rtp.Extension, 0, 8),
		rtxSeq:   uint16(rand.Uint32()),
	}
	notify := func() { wake(d.wake) }
	if cfg.Group != nil {
		notify = d.schedule
		if rw, ok := cfg.Writer.(ReadyWriter); ok {
			d.ready = rw.Ready()
		}
	}
	d.queue = newRing(cfg.QueueSize, notify)
	return d, nil
}

// SSRC returns the subscriber-facing SSRC.
func (d *DownTrack) SSRC() uint32 { return d.cfg.SSRC }

// Publication returns the publication this down-track forwards.
func (d *DownTrack) Publication() *Publication { return d.pub }

// Done is closed once the down-track has stopped.
func (d *DownTrack) Done() <-chan struct{} { return d.done }

// Stats returns a snapshot of the down-track's counters.
func (d *DownTrack) Stats() DownTrackStats { return d.stats.snapshot() }

// Close stops the down-track, removes it from its publication and waits for
// its writer goroutine. It returns once a write in progress returns, and
// must not be called from the down-track's own callbacks (its writers,
// OnFirstKeyframe): they run on the goroutine it waits for.
func (d *DownTrack) Close() error {
	d.cancel()
	<-d.done
	return nil
}

// HandleRTCP processes RTCP received from the subscriber for this track:
// PLI and FIR become (aggregated) keyframe requests upstream, NACKs for the
// down-track's SSRC are answered from the publication's history by the
// writer goroutine. Other packets are ignored.
func (d *DownTrack) HandleRTCP(pkts []rtcp.Packet) {
	for _, pkt := range pkts {
		switch r := pkt.(type) {
		case *rtcp.PictureLossIndication:
			d.stats.plis.Add(1)
			if d.pub.video {
				d.pub.RequestKeyframe()
			}
		case *rtcp.FullIntraRequest:
			d.stats.firs.Add(1)
			if d.pub.video {
				d.pub.RequestKeyframe()
			}
		case *rtcp.TransportLayerNack:
			// A receiver may also NACK gaps in our RTX stream; those
			// numbers are not ours to translate.
			if r.MediaSSRC == d.cfg.SSRC {
				d.queueNacks(r.Nacks)
			}
		}
	}
}

func (d *DownTrack) queueNacks(pairs []rtcp.NackPair) {
	var received, dropped uint64
	d.nackMu.Lock()
	add := func(seq uint16) {
		received++
		if len(d.nackIn) < maxPendingNacks {
			d.nackIn = append(d.nackIn, seq)
		} else {
			dropped++
		}
	}
	for _, pair := range pairs {
		add(pair.PacketID)
		for b := uint16(pair.LostPackets); b != 0; b &= b - 1 {
			add(pair.PacketID + uint16(bits.TrailingZeros16(b)) + 1)
		}
	}
	d.nackMu.Unlock()
	d.stats.nacksReceived.Add(received)
	d.stats.nacksDropped.Add(dropped)
	d.queue.notify()
}

// run is the down-track's own writer goroutine (when it is in no group):
// its work, then periodic sender reports, until it stops.
func (d *DownTrack) run() {
	defer close(d.done)
	defer d.teardown()

	var srTick <-chan time.Time
	if d.cfg.RTCP != nil {
		t := time.NewTicker(d.cfg.SenderReportInterval)
		defer t.Stop()
		srTick = t.C
	}
	for {
		d.work()
		select {
		case <-d.ctx.Done():
			return
		case <-d.wake:
		case <-srTick:
			d.sendSenderReport()
		}
	}
}

// work writes what is due, all of it per wake-up: the keyframe cache replay
// (first time only), retransmissions, then every queued packet. Writer only.
func (d *DownTrack) work() {
	for i, pk := range d.replay {
		if d.ctx.Err() != nil {
			return
		}
		d.forward(pk)
		pk.release()
		d.replay[i] = nil
		d.stats.replayed.Add(1)
	}
	d.replay = nil
	d.serveNacks()
	for pk := d.queue.pop(); pk != nil; pk = d.queue.pop() {
		d.forward(pk)
		pk.release()
	}
}

// teardown detaches from the publication first, so nothing is pushed any
// more, then releases whatever is still queued.
func (d *DownTrack) teardown() {
	d.pub.detach(d)
	d.queue.drain()
	d.releaseReplay()
}

// releaseReplay gives back the cache replay not yet sent.
func (d *DownTrack) releaseReplay() {
	for _, pk := range d.replay {
		if pk != nil {
			pk.release()
		}
	}
	d.replay = nil
}

// forward rewrites and writes one packet.
func (d *DownTrack) forward(pk *packet) {
	if !d.pass(pk) {
		return
	}
	r, ok := d.munger.rewrite(pk)
	if !ok {
		d.stats.dropsTooOld.Add(1)
		return
	}
	d.seqs.record(r.ext, pk.ext, pk.epoch, r.ts)
	h := &d.hdr
	*h = pk.hdr
	h.SequenceNumber = uint16(r.ext)
	h.Timestamp = r.ts
	h.SSRC = d.cfg.SSRC
	h.PayloadType = d.cfg.PayloadType
	d.setExtensions(h, &pk.hdr)
	if _, err := d.cfg.Writer.WriteRTP(h, pk.payload); err != nil {
		d.writeFailed(err)
		return
	}
	d.stats.packetsOut.Add(1)
	d.stats.bytesOut.Add(uint64(len(pk.payload)))
	if !d.sawKeyframe && (pk.keyframe || !d.pub.video) {
		d.sawKeyframe = true
		if d.cfg.OnFirstKeyframe != nil {
			d.cfg.OnFirstKeyframe()
		}
	}
	d.srPackets++
	d.srOctets += uint32(len(pk.payload))
}

// setExtensions gives h extensions in the down-track's own slice, so a writer
// (or a pion interceptor) that adds extensions never touches the shared
// packet or allocates per packet.
func (d *DownTrack) setExtensions(h, src *rtp.Header) {
	if d.cfg.KeepHeaderExtensions && src.Extension {
		d.exts = append(d.exts[:0], src.Extensions...)
		h.Extensions = d.exts
		return
	}
	h.Extension = false
	h.ExtensionProfile = 0
	h.Extensions = d.exts[:0]
}

func (d *DownTrack) writeFailed(err error) {
	d.stats.dropsWriteError.Add(1)
	d.writeFails++
	// Log the 1st, 2nd, 4th, 8th... failure: a dead subscriber must not
	// flood the log.
	if d.writeFails&(d.writeFails-1) == 0 {
		d.log.Debug("forwarding: down-track write failed", "failures", d.writeFails, "err", err)
	}
}

func (d *DownTrack) serveNacks() {
	d.nackMu.Lock()
	d.nackWork, d.nackIn = d.nackIn, d.nackWork[:0]
	d.nackMu.Unlock()
	for _, seq := range d.nackWork {
		d.retransmit(seq)
	}
}

// retransmit resends the packet a subscriber NACKed, translating its outgoing
// sequence number back to the upstream packet in the publication's history.
func (d *DownTrack) retransmit(seq uint16) {
	if !d.munger.started {
		d.stats.rtxMisses.Add(1)
		return
	}
	e := d.seqs.lookup(seq, d.munger.highestOut)
	if e == nil {
		d.stats.rtxMisses.Add(1)
		return
	}
	now := d.pub.clock()
	if e.rtxCount >= maxRetransmitsPerPacket ||
		(e.lastRtx != 0 && time.Duration(now-e.lastRtx) < d.cfg.RetransmitMinInterval) {
		d.stats.rtxSuppressed.Add(1)
		return
	}
	pk := d.pub.hist.get(e.epoch, e.upExt)
	if pk == nil {
		d.stats.rtxMisses.Add(1)
		return
	}
	defer pk.release()
	if !d.spendRetransmit(len(pk.payload)) {
		return
	}
	e.lastRtx = max(now, 1)
	e.rtxCount++

	h := &d.rtxHdr
	*h = pk.hdr
	h.SequenceNumber = seq
	h.Timestamp = e.ts
	h.SSRC = d.cfg.SSRC
	h.PayloadType = d.cfg.PayloadType
	d.setExtensions(h, &pk.hdr)
	payload := pk.payload
	w := d.cfg.Writer
	if d.cfg.RTXSSRC != 0 {
		// RFC 4588: the original sequence number, then the original
		// payload, on the RTX stream's own SSRC, payload type and
		// sequence numbers. Padding is not carried over.
		if d.rtxBuf == nil {
			d.rtxBuf = make([]byte, maxPacketSize+2) // most down-tracks never resend
		}
		binary.BigEndian.PutUint16(d.rtxBuf, seq)
		n := copy(d.rtxBuf[2:], payload)
		payload = d.rtxBuf[:2+n]
		h.SSRC = d.cfg.RTXSSRC
		h.PayloadType = d.cfg.RTXPayloadType
		h.SequenceNumber = d.rtxSeq
		d.rtxSeq++
		h.Padding = false
		h.PaddingSize = 0
		if d.cfg.RTXWriter != nil {
			w = d.cfg.RTXWriter
		}
	}
	if _, err := w.WriteRTP(h, payload); err != nil {
		d.writeFailed(err)
		return
	}
	d.stats.retransmissions.Add(1)
	d.stats.rtxBytes.Add(uint64(len(payload)))
}
