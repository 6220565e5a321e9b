package forwarding

import (
	"context"
	"sync"
	"time"

	"github.com/rtcio-gateway/rtcio-gateway/internal/defaults"
)

// ReadyWriter is an optional interface of a down-track's RTPWriter: a writer
// that cannot take packets yet (its WriteRTP would wait) says when it can.
// A WriterGroup does not write to such a writer before Ready is closed, so
// one subscriber track that is still being connected does not hold up the
// subscriber's other tracks; its packets wait in its queue meanwhile.
type ReadyWriter interface {
	RTPWriter
	// Ready returns a channel closed once WriteRTP no longer waits
	// (because the writer is connected, or because it will only fail).
	Ready() <-chan struct{}
}

// WriterGroupConfig configures a WriterGroup.
type WriterGroupConfig struct {
	// SenderReportInterval is the period of the members' RTCP sender
	// reports. Default 1s.
	SenderReportInterval time.Duration
}

// WriterGroup serves many down-tracks (typically every track one subscriber
// receives) from one goroutine, instead of a goroutine per down-track: the
// goroutines then grow with subscribers, not with subscriptions, and one
// wake-up writes everything queued for all of them. Down-tracks join with
// DownTrackConfig.Group.
//
// The members share the goroutine, so one member's slow WriteRTP delays the
// others of the group (never another group's): a group is meant for the
// tracks that share one transport anyway. Packets that do not fit a member's
// queue are still dropped for that member alone.
type WriterGroup struct {
	cfg    WriterGroupConfig
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	wake   chan struct{}

	mu      sync.Mutex
	closed  bool
	members map[*DownTrack]struct{}
	ready   []*DownTrack // scheduled members, in order

	srList []*DownTrack // group goroutine only
}

// NewWriterGroup starts a group's goroutine. It stops when ctx is done or
// Close is called, stopping its members.
func NewWriterGroup(ctx context.Context, cfg WriterGroupConfig) *WriterGroup {
	defaults.Positive(&cfg.SenderReportInterval, time.Second)
	g := &WriterGroup{
		cfg:     cfg,
		done:    make(chan struct{}),
		wake:    make(chan struct{}, 1),
		members: make(map[*DownTrack]struct{}),
	}
	g.ctx, g.cancel = context.WithCancel(ctx)
	go g.run()
	return g
}

// Close stops the group and its members and waits for its goroutine. It
// must not be called from a member's callbacks (its writers,
// OnFirstKeyframe), which run on that goroutine.
func (g *WriterGroup) Close() {
	g.cancel()
	<-g.done
}

// Len returns the number of members.
func (g *WriterGroup) Len() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.members)
}

// add makes d a member and schedules it (for its cache replay). The
// down-track stops with its own context as before: its context's end
// schedules it once more, and the group then finishes it.
func (g *WriterGroup) add(d *DownTrack) error {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return ErrClosed
	}
	g.members[d] = struct{}{}
	g.mu.Unlock()
	context.AfterFunc(d.ctx, d.schedule)
	d.schedule()
	return nil
}

// schedule puts d on its group's ready list unless it is already there. It
// is the notify of d's queue, so it runs on the ingest path and must not
// block.
func (d *DownTrack) schedule() {
	if !d.scheduled.CompareAndSwap(false, true) {
		return
	}
	g := d.cfg.Group
	g.mu.Lock()
	g.ready = append(g.ready, d)
	g.mu.Unlock()
	wake(g.wake)
}

func (g *WriterGroup) run() {
	defer close(g.done)
	t := time.NewTicker(g.cfg.SenderReportInterval)
	defer t.Stop()
	var batch []*DownTrack
	for {
		g.mu.Lock()
		batch, g.ready = g.ready, batch[:0]
		g.mu.Unlock()
		for i, d := range batch {
			batch[i] = nil
			// Cleared before the work: a packet pushed meanwhile
			// schedules the down-track again.
			d.scheduled.Store(false)
			g.serve(d)
		}
		select {
		case <-g.ctx.Done():
			g.stop()
			return
		case <-g.wake:
		case <-t.C:
			g.sendSenderReports()
		}
	}
}

// serve does one member's due work, or finishes it once its context ended.
func (g *WriterGroup) serve(d *DownTrack) {
	if d.ctx.Err() != nil {
		g.finish(d)
		return
	}
	if d.ready != nil {
		select {
		case <-d.ready:
			d.ready = nil
		default:
			d.awaitReady()
			return
		}
	}
	d.work()
}

// awaitReady schedules d again once its writer is ready. The helper
// goroutine lives only while a subscriber track is being connected.
func (d *DownTrack) awaitReady() {
	if !d.waiting.CompareAndSwap(false, true) {
		return
	}
	ready := d.ready
	go func() {
		select {
		case <-ready:
		case <-d.ctx.Done():
		}
		d.waiting.Store(false)
		d.schedule()
	}()
}

// finish stops a member: out of the group, detached, queue released, done
// closed. Group goroutine only; a second call does nothing.
func (g *WriterGroup) finish(d *DownTrack) {
	g.mu.Lock()
	_, member := g.members[d]
	delete(g.members, d)
	g.mu.Unlock()
	if !member {
		return
	}
	d.cancel()
	d.teardown()
	close(d.done)
}

// stop finishes every member once the group's context ended.
func (g *WriterGroup) stop() {
	g.mu.Lock()
	g.closed = true
	members := make([]*DownTrack, 0, len(g.members))
	for d := range g.members {
		members = append(members, d)
	}
	g.ready = nil
	g.mu.Unlock()
	for _, d := range members {
		g.finish(d)
	}
}

// sendSenderReports sends every member's sender report that has a writer
// for them, skipping members whose writer is not connected yet.
func (g *WriterGroup) sendSenderReports() {
	g.mu.Lock()
	for d := range g.members {
		g.srList = append(g.srList, d)
	}
	g.mu.Unlock()
	for i, d := range g.srList {
		g.srList[i] = nil
		if d.cfg.RTCP == nil || d.ready != nil || d.ctx.Err() != nil {
			continue
		}
		d.sendSenderReport()
	}
	g.srList = g.srList[:0]
}
