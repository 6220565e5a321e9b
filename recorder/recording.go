package recorder

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rtcio-gateway/rtcio-gateway/codec"
	"github.com/rtcio-gateway/rtcio-gateway/forwarding"
)

// maxTracks bounds the tracks of one recording.
const maxTracks = 8

// ErrUnsupportedCodec is returned by AddTrack for codecs the recorder cannot
// write (it writes VP8, VP9, AV1, H.264 and Opus).
var ErrUnsupportedCodec = errors.New("recorder: unsupported codec")

// Recording records one stream (typically one video and one audio track)
// into one file at a time, rolling to a new file at the configured limits.
type Recording struct {
	cfg     *Config
	log     *slog.Logger
	id      string
	info    StreamInfo
	created time.Time // wall clock, also the monotonic base of local time

	ctx    context.Context
	cancel context.CancelFunc
	in     chan *inPacket
	wake   chan struct{}
	done   chan struct{}

	stopped atomic.Bool

	mu         sync.Mutex
	tracks     []*Track
	stopReason string
	status     Status

	// Owned by the run goroutine.
	states       []*trackState
	seg          *segment
	part         int
	prevFile     string
	tl           timeline
	firstFrameAt time.Time
	pendingBytes int
	rollReason   string
	rollBy       time.Time
	lastFlush    time.Time
	lastCheck    time.Time
	failed       error
}

// Status is a snapshot of a recording.
type Status struct {
	ID    string
	State string // StateRecording, StateDone or StateFailed
	// Files are the media files written so far, relative to the output
	// directory, oldest first; the last one is being written while State
	// is "recording".
	Files     []string
	Started   time.Time
	EndReason string
	Err       error
}

func newRecording(ctx context.Context, cfg *Config, info StreamInfo, id string) *Recording {
	rec := &Recording{
		cfg:     cfg,
		id:      id,
		info:    info,
		created: time.Now(),
		in:      make(chan *inPacket, cfg.QueueSize),
		wake:    make(chan struct{}, 1),
		done:    make(chan struct{}),
	}
	rec.log = cfg.Logger.With("recording", id, "room", info.Room, "stream", info.StreamID)
	rec.ctx, rec.cancel = context.WithCancel(ctx)
	rec.status = Status{ID: id, State: StateRecording, Started: rec.created}
	return rec
}

// ID returns the recording's id (also in its manifests).
func (rec *Recording) ID() string { return rec.id }

// Info returns what the recording was started with.
func (rec *Recording) Info() StreamInfo { return rec.info }

// Done is closed when the recording has stopped and its files are finished.
func (rec *Recording) Done() <-chan struct{} { return rec.done }

// Status returns a snapshot of the recording's state and files.
func (rec *Recording) Status() Status {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	s := rec.status
	s.Files = append([]string(nil), s.Files...)
	return s
}

// Err returns the error that stopped the recording, or nil.
func (rec *Recording) Err() error { return rec.Status().Err }

// AddTrack adds a track to the recording and returns its sink. A track added
// after the current file has started makes the recording roll to a new file
// that holds it too (at the next video keyframe).
func (rec *Recording) AddTrack(cfg TrackConfig) (*Track, error) {
	kind := codec.KindOf(cfg.Codec.MimeType)
	if kind == codec.Unknown {
		return nil, fmt.Errorf("%w: %q", ErrUnsupportedCodec, cfg.Codec.MimeType)
	}
	if cfg.Codec.ClockRate == 0 {
		return nil, fmt.Errorf("recorder: track %q: codec %s has no clock rate", cfg.ID, cfg.Codec.MimeType)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.stopped.Load() {
		return nil, ErrStopped
	}
	if len(rec.tracks) >= maxTracks {
		return nil, fmt.Errorf("recorder: a recording holds at most %d tracks", maxTracks)
	}
	t := &Track{rec: rec, index: len(rec.tracks), cfg: cfg, kind: kind}
	rec.tracks = append(rec.tracks, t)
	rec.poke()
	return t, nil
}

// Attach adds a track for a publication and attaches it as a sink; keyframe
// requests go to the publication. The sink is detached when the recording
// stops; closing the returned handle detaches it earlier (and ends the
// track).
func (rec *Recording) Attach(pub *forwarding.Publication, trackID string) (*Track, *forwarding.SinkHandle, error) {
	t, err := rec.AddTrack(TrackConfig{Codec: pub.Codec(), ID: trackID, RequestKeyframe: pub.RequestKeyframe})
	if err != nil {
		return nil, nil, err
	}
	h, err := pub.AddSink(rec.ctx, t, forwarding.SinkOptions{})
	if err != nil {
		_ = t.Close()
		return nil, nil, fmt.Errorf("recorder: attach: %w", err)
	}
	return t, h, nil
}

// Stop finishes the recording: what is queued is written, the file is
// closed and its manifest completed. It waits for that and returns the
// error that stopped the recording earlier, if any.
func (rec *Recording) Stop() error {
	rec.mu.Lock()
	if rec.stopReason == "" {
		rec.stopReason = ReasonStopped
	}
	rec.mu.Unlock()
	rec.cancel()
	<-rec.done
	return rec.Err()
}

// Close is Stop, for io.Closer.
func (rec *Recording) Close() error { return rec.Stop() }

// poke wakes the recording's goroutine.
func (rec *Recording) poke() {
	select {
	case rec.wake <- struct{}{}:
	default:
	}
}

// localNs is a time on the recording's monotonic clock.
func (rec *Recording) localNs(t time.Time) int64 { return int64(t.Sub(rec.created)) }

// tickInterval is how often the goroutine wakes without packets: often
// enough for the reorder and interleave deadlines.
func (rec *Recording) tickInterval() time.Duration {
	d := min(rec.cfg.ReorderLatency, rec.cfg.InterleaveWindow, rec.cfg.FlushInterval) / 2
	return max(d, 10*time.Millisecond)
}

func (rec *Recording) run() {
	defer close(rec.done)
	defer rec.cancel()
	tick := time.NewTicker(rec.tickInterval())
	defer tick.Stop()
	rec.lastFlush, rec.lastCheck = time.Now(), time.Now()
	for rec.failed == nil {
		select {
		case <-rec.ctx.Done():
			rec.finish(rec.reason(ReasonStopped))
			return
		case p := <-rec.in:
			rec.onPacket(p)
		case <-rec.wake:
			// A track was added or ended, or a sender report came: the
			// first file may be able to start.
			rec.syncTracks()
			rec.tryOpen(time.Now(), false)
			rec.drain(time.Now(), false)
			if rec.failed == nil && rec.allEnded() {
				rec.finish(rec.reason(ReasonTracksEnded))
				return
			}
		case now := <-tick.C:
			rec.onTick(now)
		}
	}
	rec.finish(ReasonWriteError)
}

func (rec *Recording) reason(def string) string {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.stopReason == "" {
		rec.stopReason = def
	}
	return rec.stopReason
}

// syncTracks creates the goroutine's state for newly added tracks and
// handles ended ones.
func (rec *Recording) syncTracks() {
	rec.addStates()
	for _, st := range rec.states {
		if st.t.closed.Load() && !st.ended {
			// Everything the track sent before Close is already in the
			// queue: take it, then let its last frames out.
			rec.drainQueue()
			st.ended = true
			st.flush(rec.onFrame)
			rec.drain(time.Now(), false)
		}
	}
}

// addStates creates the goroutine's state for newly added tracks.
func (rec *Recording) addStates() {
	rec.mu.Lock()
	tracks := rec.tracks
	rec.mu.Unlock()
	for len(rec.states) < len(tracks) {
		rec.states = append(rec.states, newTrackState(tracks[len(rec.states)], rec.cfg))
	}
}

// allEnded reports whether the recording has tracks and all have ended.
func (rec *Recording) allEnded() bool {
	rec.syncTracks()
	if len(rec.states) == 0 {
		return false
	}
	for _, st := range rec.states {
		if !st.ended {
			return false
		}
	}
	return true
}

func (rec *Recording) drainQueue() {
	for {
		select {
		case p := <-rec.in:
			rec.onPacket(p)
		default:
			return
		}
	}
}

func (rec *Recording) onPacket(p *inPacket) {
	if p.track.index >= len(rec.states) {
		rec.addStates()
	}
	st := rec.states[p.track.index]
	if st.ended {
		return
	}
	st.onPacket(p, rec.onFrame)
	rec.drain(p.arrival, false)
}

func (rec *Recording) onTick(now time.Time) {
	rec.syncTracks()
	for _, st := range rec.states {
		st.expire(now, rec.onFrame)
	}
	rec.tryOpen(now, false)
	rec.drain(now, false)
	if rec.seg != nil && rec.rollReason != "" && now.After(rec.rollBy) {
		rec.roll(rec.rollReason)
	}
	rec.requestKeyframes(now)
	if rec.seg != nil && now.Sub(rec.lastFlush) >= rec.cfg.FlushInterval {
		rec.lastFlush = now
		if err := rec.seg.fw.Flush(); err != nil {
			rec.fail(err)
			return
		}
		if err := rec.seg.err(); err != nil {
			rec.fail(err)
			return
		}
	}
	if rec.seg != nil && now.Sub(rec.lastCheck) >= rec.cfg.CheckpointInterval {
		rec.lastCheck = now
		rec.checkpoint()
	}
}

// requestKeyframes asks for keyframes where video waits for one.
func (rec *Recording) requestKeyframes(now time.Time) {
	for _, st := range rec.states {
		if st.ended || !st.kind.Video() {
			continue
		}
		waiting := st.needKeyframe
		if rec.seg != nil {
			if t := rec.seg.trackFor(st); t != nil && !t.started {
				waiting = true
			}
		}
		if waiting || rec.rollReason != "" {
			st.wantsKeyframe(now, rec.cfg.KeyframeRequestInterval)
		}
	}
}

// fail stops the recording after a write error. Forwarding is not affected:
// the tracks drop what they get from now on.
func (rec *Recording) fail(err error) {
	if rec.failed != nil {
		return
	}
	rec.failed = err
	rec.stopped.Store(true)
	rec.log.Error("recorder: recording failed, stopping it", "err", err)
	rec.mu.Lock()
	rec.stopReason = ReasonWriteError
	rec.status.Err = err
	rec.mu.Unlock()
}

// finish writes what is left and closes the file.
func (rec *Recording) finish(reason string) {
	rec.stopped.Store(true)
	if rec.failed == nil {
		rec.drainQueue()
		rec.syncTracks()
		for _, st := range rec.states {
			st.flush(rec.onFrame)
		}
		rec.tryOpen(time.Now(), true)
		rec.drain(time.Now(), true)
	}
	state := StateDone
	if rec.failed != nil {
		state, reason = StateFailed, ReasonWriteError
	}
	if rec.seg != nil {
		rec.closeSegment(state, reason)
	}
	rec.mu.Lock()
	if rec.failed != nil {
		rec.status.State = StateFailed
	} else {
		rec.status.State = StateDone
	}
	rec.status.EndReason = reason
	rec.mu.Unlock()
	rec.log.Info("recorder: recording stopped", "reason", reason, "files", len(rec.Status().Files))
}
