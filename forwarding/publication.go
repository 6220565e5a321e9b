package forwarding

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"

	"github.com/rtcio-gateway/rtcio-gateway/codec"
)

// maxRetiredSources bounds how many previous SSRCs are remembered to drop
// their late packets after a source switch.
const maxRetiredSources = 4

// Publication is one received upstream track, fanned out to down-tracks (one
// per subscriber) and sinks. WriteRTP/WriteRaw and HandleSenderReport are fed
// by the gateway's read loops; they are safe for concurrent use (two loops may
// overlap while a publisher reconnects) and never block on a subscriber.
//
// The ingest path takes the publication's own lock, which subscribers never
// take per packet: down-tracks are reached through a copy-on-write snapshot
// and fed through single-producer rings, packets are pooled and
// reference-counted, and NACKs read the history without locking.
type Publication struct {
	cfg        PublicationConfig
	log        *slog.Logger
	base       time.Time
	isKeyframe func(payload []byte) bool
	video      bool
	pool       *sync.Pool
	hist       *history

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	// mu serialises ingest and guards everything below it up to the
	// atomics; subscribe and unsubscribe take it to stay consistent with
	// the keyframe cache.
	mu            sync.Mutex
	closed        bool
	haveSSRC      bool
	ssrc          uint32
	retired       []uint32
	switchPending bool
	epoch         uint32
	haveHighest   bool
	epochStart    bool   // the next packet is the first of a new epoch
	highest       uint64 // highest unwrapped sequence number of the source
	epochOffset   uint64 // ext = unwrapped + epochOffset
	lastKeyTS     uint32
	cache         *keyframeCache // nil for audio or when disabled
	loss          *lossTracker   // nil without a NackSender

	subs  atomic.Pointer[[]*DownTrack]
	sinks atomic.Pointer[[]*sinkRunner]

	curSSRC       atomic.Uint32
	sr            atomic.Pointer[senderReportInfo]
	lastKeyframe  atomic.Int64 // clock of the last keyframe, 0 if none
	kfRequestedAt atomic.Int64 // clock of the latest keyframe request
	kfWake        chan struct{}
	nackWake      chan struct{}
	nackBuf       []uint16 // owned by the run goroutine

	stats publicationCounters
}

// senderReportInfo is the publisher's latest NTP/RTP pairing.
type senderReportInfo struct {
	epoch   uint32
	ntp     uint64
	rtp     uint32
	arrival int64
}

// NewPublication creates a publication and starts its background work
// (keyframe request throttling, upstream NACKs). It stops when ctx is done or
// Close is called, closing all its down-tracks and sinks.
func NewPublication(ctx context.Context, cfg PublicationConfig) (*Publication, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	p := &Publication{
		cfg:        cfg,
		log:        cfg.Logger.With("mime", cfg.Codec.MimeType),
		base:       cfg.Clock(),
		isKeyframe: codec.Detector(codec.KindOf(cfg.Codec.MimeType)),
		video:      cfg.Codec.IsVideo(),
		pool:       newPacketPool(),
		hist:       newHistory(cfg.HistorySize),
		done:       make(chan struct{}),
		epoch:      1,
		kfWake:     make(chan struct{}, 1),
		nackWake:   make(chan struct{}, 1),
	}
	if p.video && p.isKeyframe != nil && !cfg.DisableKeyframeCache {
		p.cache = newKeyframeCache(cfg.KeyframeCacheMaxPackets, cfg.KeyframeCacheMaxBytes)
	}
	if cfg.Nacks != nil {
		p.loss = newLossTracker(cfg.NackMaxMissing, cfg.NackMaxRetries, cfg.NackMaxAge, cfg.NackInterval)
		p.nackBuf = make([]uint16, 0, cfg.NackMaxMissing)
	}
	p.subs.Store(&[]*DownTrack{})
	p.sinks.Store(&[]*sinkRunner{})
	p.ctx, p.cancel = context.WithCancel(ctx)
	go p.run()
	return p, nil
}

// Codec returns the publication's codec.
func (p *Publication) Codec() Codec { return p.cfg.Codec }

// SSRC returns the current upstream SSRC (0 before the first packet).
func (p *Publication) SSRC() uint32 { return p.curSSRC.Load() }

// Done is closed once the publication has stopped.
func (p *Publication) Done() <-chan struct{} { return p.done }

// clock returns nanoseconds since the publication started, on a monotonic
// clock when the configured clock provides one.
func (p *Publication) clock() int64 { return int64(p.cfg.Clock().Sub(p.base)) }

// WriteRaw forwards one marshalled RTP packet. buf is copied, so the caller
// may reuse it as soon as WriteRaw returns.
func (p *Publication) WriteRaw(buf []byte) error {
	if len(buf) > maxPacketSize {
		p.stats.dropsMalformed.Add(1)
		return fmt.Errorf("%w: %d bytes", ErrPacketTooLarge, len(buf))
	}
	pk := getPacket(p.pool)
	n := copy(pk.buf[:], buf)
	if err := pk.parse(n); err != nil {
		p.pool.Put(pk)
		p.stats.dropsMalformed.Add(1)
		return err
	}
	return p.ingest(pk)
}

// WriteRTP forwards one RTP packet. pkt is copied, so the caller keeps it.
func (p *Publication) WriteRTP(pkt *rtp.Packet) error {
	if pkt == nil {
		p.stats.dropsMalformed.Add(1)
		return fmt.Errorf("%w: nil packet", ErrMalformed)
	}
	pk := getPacket(p.pool)
	n, err := pkt.MarshalTo(pk.buf[:])
	if err == nil {
		err = pk.parse(n)
	} else if errors.Is(err, io.ErrShortBuffer) {
		err = fmt.Errorf("%w: %d bytes", ErrPacketTooLarge, pkt.MarshalSize())
	} else {
		err = fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if err != nil {
		p.pool.Put(pk)
		p.stats.dropsMalformed.Add(1)
		return err
	}
	return p.ingest(pk)
}

// SwitchSource marks an upstream discontinuity: the next packet starts a new
// source epoch even if its SSRC is unchanged (for example a replaced track
// that kept its SSRC). A change of SSRC is detected without this call.
func (p *Publication) SwitchSource() {
	p.mu.Lock()
	p.switchPending = true
	p.mu.Unlock()
}

// ingest takes ownership of a parsed packet.
func (p *Publication) ingest(pk *packet) error {
	now := p.clock()
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		p.pool.Put(pk)
		return ErrClosed
	}
	ssrc := pk.hdr.SSRC
	switch {
	case !p.haveSSRC:
		p.adoptSource(ssrc, false)
	case p.switchPending || ssrc != p.ssrc:
		if !p.switchPending && slices.Contains(p.retired, ssrc) {
			p.mu.Unlock()
			p.pool.Put(pk)
			p.stats.dropsStaleSource.Add(1)
			return nil
		}
		p.adoptSource(ssrc, true)
	}

	// Sequence numbers are unwrapped per source (low 16 bits stay the
	// upstream number, for NACKs), then shifted by the epoch offset so the
	// publication-wide ext numbers keep counting up across sources: the
	// history then evicts in arrival order and still answers NACKs for the
	// previous source's recent packets.
	seq := pk.hdr.SequenceNumber
	var unwrapped uint64
	switch {
	case !p.haveHighest || p.epochStart:
		// Start high so packets reordered before the first stay positive.
		unwrapped = 1<<32 + uint64(seq)
		if p.haveHighest {
			p.epochOffset = p.highest + p.epochOffset + 1 - unwrapped
		}
		p.highest, p.haveHighest, p.epochStart = unwrapped, true, false
	default:
		unwrapped = p.highest + uint64(int64(int16(seq-uint16(p.highest))))
		if unwrapped > p.highest {
			if p.loss != nil && unwrapped > p.highest+1 {
				wasPending := p.loss.pending()
				lost := p.loss.gap(p.highest+1, unwrapped, now)
				p.stats.upstreamLost.Add(uint64(lost))
				if !wasPending {
					wake(p.nackWake)
				}
			}
			p.highest = unwrapped
		} else {
			ext := unwrapped + p.epochOffset
			if old := p.hist.peek(ext); old != nil && old.epoch == p.epoch && old.ext == ext {
				p.mu.Unlock()
				p.pool.Put(pk)
				p.stats.dropsDuplicate.Add(1)
				return nil
			}
			if p.loss != nil && p.loss.arrived(unwrapped) {
				p.stats.upstreamRecovered.Add(1)
			}
		}
	}

	pk.ext = unwrapped + p.epochOffset
	pk.epoch = p.epoch
	pk.arrival = now
	pk.keyframe = p.isKeyframe != nil && p.isKeyframe(pk.payload)
	pk.publish()

	p.hist.put(pk)
	if p.cache != nil {
		p.cache.add(pk)
	}
	if pk.keyframe && pk.hdr.Timestamp != p.lastKeyTS {
		p.lastKeyTS = pk.hdr.Timestamp
		p.lastKeyframe.Store(now)
		p.stats.keyframesIn.Add(1)
	}

	// Fan-out: one reference per consumer, taken at once, given back for
	// the queues that are full.
	subs := *p.subs.Load()
	sinks := *p.sinks.Load()
	pk.retain(int32(len(subs) + len(sinks)))
	for _, d := range subs {
		if !d.queue.push(pk) {
			pk.release()
			d.stats.dropsQueueFull.Add(1)
		}
	}
	for _, s := range sinks {
		if !s.queue.push(pk) {
			pk.release()
			s.drops.Add(1)
			p.stats.sinkDrops.Add(1)
		}
	}
	p.mu.Unlock()

	p.stats.packetsIn.Add(1)
	p.stats.bytesIn.Add(uint64(pk.size))
	pk.release()
	return nil
}

// adoptSource switches to a new upstream source. Called with mu held.
func (p *Publication) adoptSource(ssrc uint32, switching bool) {
	if switching {
		if ssrc != p.ssrc && !slices.Contains(p.retired, p.ssrc) {
			if len(p.retired) == maxRetiredSources {
				p.retired = p.retired[1:]
			}
			p.retired = append(p.retired, p.ssrc)
		}
		p.epoch++
		p.stats.sourceSwitches.Add(1)
		p.log.Debug("forwarding: upstream source switched", "old_ssrc", p.ssrc, "ssrc", ssrc, "epoch", p.epoch)
		if p.video {
			p.RequestKeyframe()
		}
	}
	p.retired = slices.DeleteFunc(p.retired, func(s uint32) bool { return s == ssrc })
	p.ssrc, p.haveSSRC = ssrc, true
	p.curSSRC.Store(ssrc)
	p.switchPending = false
	p.epochStart = switching
	if p.cache != nil {
		p.cache.reset()
	}
	if p.loss != nil {
		p.loss.reset()
	}
}

// HandleSenderReport records the publisher's NTP/RTP pairing so down-tracks
// can send sender reports on the same timeline (lip sync between a stream's
// audio and video), and passes them on to sinks that implement
// SenderReportSink. Reports for an SSRC other than the current one are
// ignored.
func (p *Publication) HandleSenderReport(sr *rtcp.SenderReport) {
	if sr == nil {
		return
	}
	now := p.clock()
	p.mu.Lock()
	if !p.haveSSRC || sr.SSRC != p.ssrc {
		p.mu.Unlock()
		return
	}
	p.sr.Store(&senderReportInfo{epoch: p.epoch, ntp: sr.NTPTime, rtp: sr.RTPTime, arrival: now})
	p.mu.Unlock()
	// Sinks are told outside the lock: a sink's method is not ours to trust
	// with the ingest path's lock, even though it must not block.
	for _, s := range *p.sinks.Load() {
		if srs, ok := s.sink.(SenderReportSink); ok {
			srs.WriteSenderReport(sr)
		}
	}
}

// Subscribe creates a down-track for one subscriber and starts its writer.
// A video down-track starts from the keyframe cache when it holds a keyframe,
// and a keyframe is requested upstream. The down-track stops when ctx is done,
// when it is closed, or when the publication closes.
func (p *Publication) Subscribe(ctx context.Context, cfg DownTrackConfig) (*DownTrack, error) {
	d, err := newDownTrack(p, cfg)
	if err != nil {
		return nil, err
	}
	d.ctx, d.cancel = context.WithCancel(ctx)
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		d.cancel()
		return nil, ErrClosed
	}
	if p.cache != nil {
		d.replay = p.cache.snapshot()
		if d.replay != nil {
			p.stats.cacheHits.Add(1)
		} else {
			p.stats.cacheMisses.Add(1)
		}
	}
	if g := cfg.Group; g != nil {
		if err := g.add(d); err != nil {
			p.mu.Unlock()
			d.cancel()
			d.releaseReplay()
			return nil, err
		}
	} else {
		go d.run()
	}
	old := *p.subs.Load()
	next := append(slices.Clip(old), d)
	p.subs.Store(&next)
	p.mu.Unlock()
	if p.video {
		p.RequestKeyframe()
	}
	return d, nil
}

// detach removes a down-track from the fan-out. Once it returns, the ingest
// path no longer pushes to the down-track's queue.
func (p *Publication) detach(d *DownTrack) {
	p.mu.Lock()
	defer p.mu.Unlock()
	old := *p.subs.Load()
	if i := slices.Index(old, d); i >= 0 {
		next := slices.Delete(slices.Clone(old), i, i+1)
		p.subs.Store(&next)
	}
}

// Stats returns a snapshot of the publication's counters.
func (p *Publication) Stats() PublicationStats {
	s := p.stats.snapshot()
	s.Subscribers = len(*p.subs.Load())
	s.Sinks = len(*p.sinks.Load())
	return s
}

// Close stops the publication, closes its down-tracks and sinks and waits
// for all their goroutines. It must not be called from the callbacks those
// goroutines run (KeyframeRequester, NackSender, a down-track's writers, a
// sink's WriteRTP and Close), which would make it wait for itself.
func (p *Publication) Close() error {
	p.cancel()
	<-p.done
	return nil
}

// teardown closes every consumer and releases every buffered packet.
func (p *Publication) teardown() {
	p.mu.Lock()
	p.closed = true
	subs := *p.subs.Load()
	sinks := *p.sinks.Load()
	p.mu.Unlock()
	for _, d := range subs {
		_ = d.Close()
	}
	for _, s := range sinks {
		_ = s.Close()
	}
	p.mu.Lock()
	p.hist.clear()
	if p.cache != nil {
		p.cache.reset()
	}
	p.mu.Unlock()
}
