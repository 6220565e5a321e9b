package forwarding

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"

	"github.com/pion/rtp"

	"github.com/rtcio-gateway/rtcio-gateway/internal/defaults"
)

// SinkOptions configures how a sink is fed.
type SinkOptions struct {
	// QueueSize bounds the packets waiting for the sink (rounded up to a
	// power of two). Default 4096: recorders write to disk and may stall
	// for longer than a subscriber's network.
	QueueSize int
}

// SinkStats is a snapshot of one sink's counters.
type SinkStats struct {
	Delivered      uint64
	DropsQueueFull uint64
	WriteErrors    uint64
}

// SinkHandle is a sink attached to a publication.
type SinkHandle struct {
	r *sinkRunner
}

// Close detaches the sink, waits for its goroutine and closes the sink. It
// must not be called from the sink's WriteRTP or Close, which run on that
// goroutine.
func (h *SinkHandle) Close() error { return h.r.Close() }

// Stats returns a snapshot of the sink's counters.
func (h *SinkHandle) Stats() SinkStats {
	return SinkStats{
		Delivered:      h.r.delivered.Load(),
		DropsQueueFull: h.r.drops.Load(),
		WriteErrors:    h.r.errors.Load(),
	}
}

// sinkRunner feeds one sink from its own queue and goroutine.
type sinkRunner struct {
	pub   *Publication
	sink  Sink
	queue *ring
	wake  chan struct{}

	ctx      context.Context
	cancel   context.CancelFunc
	done     chan struct{}
	closeErr error

	pkt rtp.Packet // owned by the goroutine

	delivered, drops, errors atomic.Uint64
}

// AddSink attaches a sink that receives every accepted upstream packet,
// unmodified and in arrival order, until ctx is done, the handle is closed or
// the publication closes; then the sink's Close is called.
func (p *Publication) AddSink(ctx context.Context, s Sink, opts SinkOptions) (*SinkHandle, error) {
	if s == nil {
		return nil, errors.New("forwarding: nil sink")
	}
	defaults.Positive(&opts.QueueSize, 4096)
	wakeCh := make(chan struct{}, 1)
	r := &sinkRunner{
		pub:   p,
		sink:  s,
		queue: newRing(opts.QueueSize, func() { wake(wakeCh) }),
		wake:  wakeCh,
		done:  make(chan struct{}),
	}
	r.ctx, r.cancel = context.WithCancel(ctx)
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		r.cancel()
		return nil, ErrClosed
	}
	old := *p.sinks.Load()
	next := append(slices.Clip(old), r)
	p.sinks.Store(&next)
	go r.run()
	p.mu.Unlock()
	return &SinkHandle{r: r}, nil
}

func (r *sinkRunner) run() {
	defer close(r.done)
	defer r.teardown()
	for {
		for pk := r.queue.pop(); pk != nil; pk = r.queue.pop() {
			r.pkt.Header = pk.hdr
			r.pkt.Payload = pk.payload
			err := r.sink.WriteRTP(&r.pkt)
			r.pkt.Payload = nil
			pk.release()
			if err != nil {
				r.errors.Add(1)
				r.pub.stats.sinkErrors.Add(1)
				continue
			}
			r.delivered.Add(1)
		}
		select {
		case <-r.ctx.Done():
			return
		case <-r.wake:
		}
	}
}

func (r *sinkRunner) teardown() {
	p := r.pub
	p.mu.Lock()
	old := *p.sinks.Load()
	if i := slices.Index(old, r); i >= 0 {
		next := slices.Delete(slices.Clone(old), i, i+1)
		p.sinks.Store(&next)
	}
	p.mu.Unlock()
	r.queue.drain()
	r.closeErr = r.sink.Close()
}

// Close stops the runner and returns the sink's Close error.
func (r *sinkRunner) Close() error {
	r.cancel()
	<-r.done
	return r.closeErr
}
