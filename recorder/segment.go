package recorder

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// onFrame takes a complete frame from a track: it waits for a file (before
// the first one starts, or until a roll adds its track) or is queued in the
// current file's interleaver.
func (rec *Recording) onFrame(st *trackState, f *frame) {
	if rec.failed != nil {
		return
	}
	var t *segTrack
	if rec.seg != nil {
		t = rec.seg.trackFor(st)
	}
	if t == nil {
		rec.hold(st, f)
		return
	}
	rec.tl.place(rec, st, f)
	f.queuedAt = time.Now()
	t.queue = append(t.queue, f)
}

// hold keeps a frame until its track is in a file.
func (rec *Recording) hold(st *trackState, f *frame) {
	if len(st.pending) == 0 && st.kind.Video() && !f.info.keyframe {
		st.framesDropped++
		return
	}
	if rec.firstFrameAt.IsZero() {
		rec.firstFrameAt = time.Now()
	}
	st.pending = append(st.pending, f)
	st.pendingBytes += len(f.data)
	rec.pendingBytes += len(f.data)
	if rec.seg != nil && rec.rollReason == "" {
		// A track joined after the file started: the next file holds it.
		rec.scheduleRoll(ReasonTrackAdded)
	}
	if rec.pendingBytes > rec.cfg.MaxPendingBytes {
		if rec.seg == nil {
			rec.tryOpen(time.Now(), true)
		} else {
			rec.roll(rec.rollReason)
		}
	}
}

// scheduleRoll asks for a new file at the next keyframe of the main video
// track, or within two keyframe request intervals at the latest.
func (rec *Recording) scheduleRoll(reason string) {
	if rec.rollReason != "" {
		return
	}
	rec.rollReason = reason
	rec.rollBy = time.Now().Add(2 * rec.cfg.KeyframeRequestInterval)
	if rec.seg != nil && !rec.seg.tracks[rec.seg.mainTrack].st.kind.Video() {
		rec.rollBy = time.Now() // audio only: any frame will do
	}
	rec.requestKeyframes(time.Now())
}

// tryOpen starts the first file when the tracks are ready (or force is set,
// or SyncWait has passed, or too much is pending).
func (rec *Recording) tryOpen(now time.Time, force bool) {
	if rec.seg != nil || rec.failed != nil {
		return
	}
	var ready []*trackState
	allReady, allSR := len(rec.states) >= rec.info.ExpectedTracks, true
	for _, st := range rec.states {
		switch {
		case len(st.pending) > 0:
			ready = append(ready, st)
			allSR = allSR && st.sr() != nil
		case !st.ended:
			allReady = false
		}
	}
	if len(ready) == 0 {
		return
	}
	waited := now.Sub(rec.firstFrameAt) >= rec.cfg.SyncWait
	if !force && !waited && !(allReady && allSR) && rec.pendingBytes <= rec.cfg.MaxPendingBytes {
		return
	}
	rec.tl.fix(rec, ready)
	if !rec.tl.originSet {
		for _, st := range ready {
			rec.tl.anchor(rec, st, st.pending[0])
			if ns := st.domainNs(st.pending[0]); !rec.tl.originSet || ns < rec.tl.origin {
				rec.tl.originSet, rec.tl.origin = true, ns
			}
		}
	}
	rec.openNext(ready, nil)
}

// roll finishes the current file and continues in a new one.
func (rec *Recording) roll(reason string) {
	old := rec.seg
	if old == nil {
		return
	}
	var states []*trackState
	for _, t := range old.tracks {
		if !t.st.ended || len(t.queue) > 0 {
			states = append(states, t.st)
		}
	}
	for _, st := range rec.states {
		if len(st.pending) > 0 && old.trackFor(st) == nil {
			states = append(states, st)
		}
	}
	rec.rollReason = ""
	rec.closeSegment(StateDone, reason)
	if rec.failed != nil || len(states) == 0 {
		return
	}
	rec.openNext(states, old)
}

// openNext opens the next file with the given tracks, carrying over the
// frames old had not written yet and the tracks' pending frames.
func (rec *Recording) openNext(states []*trackState, old *segment) {
	hdrs := make([]trackHeader, 0, len(states))
	for _, st := range states {
		hdrs = append(hdrs, headerFor(st, old))
	}
	seg, err := rec.createSegment(hdrs)
	if err != nil {
		rec.fail(err)
		return
	}
	rec.seg = seg
	for _, t := range seg.tracks {
		if old != nil {
			if ot := old.trackFor(t.st); ot != nil {
				t.queue = ot.queue
				ot.queue = nil
			}
		}
		for _, f := range t.st.pending {
			rec.tl.place(rec, t.st, f)
			f.queuedAt = time.Now()
			t.queue = append(t.queue, f)
		}
		rec.pendingBytes -= t.st.pendingBytes
		t.st.pending, t.st.pendingBytes = nil, 0
	}
	rec.requestKeyframes(time.Now())
}

// headerFor describes a track for the header of the next file: after the
// frames still queued for the old file and those pending, its first
// keyframe decides. The track's latest keyframe may be a later one, since
// frames wait in queues.
func headerFor(st *trackState, old *segment) trackHeader {
	var frames []*frame
	if old != nil {
		if t := old.trackFor(st); t != nil {
			frames = t.queue
		}
	}
	for _, f := range append(frames[:len(frames):len(frames)], st.pending...) {
		if f.info.keyframe && f.info.width > 0 {
			c := f.info.config
			if c == nil {
				c = st.config
			}
			return trackHeader{st: st, width: f.info.width, height: f.info.height, config: c}
		}
	}
	return trackHeader{st: st, width: st.width, height: st.height, config: st.config}
}

// createSegment names, creates and announces a new file.
func (rec *Recording) createSegment(hdrs []trackHeader) (*segment, error) {
	states := make([]*trackState, len(hdrs))
	for i, h := range hdrs {
		states[i] = h.st
	}
	container, ext := containerFor(states)
	rec.part++
	start := rec.created.UTC()
	event, _ := rec.info.firstEvent()
	vars := map[string]string{
		"room": rec.info.Room, "publisher": rec.info.PublisherID, "name": rec.info.PublisherName,
		"event": event, "stream": rec.info.StreamID, "mediastream": rec.info.MediaStreamID,
		"start": start.Format("20060102T150405Z"), "date": start.Format("2006-01-02"), "id": rec.id,
	}
	base := filepath.Join(rec.cfg.Dir, filepath.FromSlash(expandName(rec.cfg.NameTemplate, vars, rec.part)))
	if _, err := relToDir(rec.cfg.Dir, base); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(base), 0o755); err != nil {
		return nil, fmt.Errorf("recorder: create directory: %w", err)
	}
	var seg *segment
	var err error
	for n := 1; n <= 100; n++ {
		name := base
		if n > 1 {
			name = fmt.Sprintf("%s~%d", base, n)
		}
		seg, err = openSegment(name+ext, container, rec.part, hdrs, rec.cfg.Sync, rec.info.StreamID)
		if !errors.Is(err, os.ErrExist) {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("recorder: %w", err)
	}
	seg.manifestPath = strings.TrimSuffix(seg.path, ext) + ".json"
	m := rec.manifest(seg, StateRecording, "", nil)
	if err := writeJSONAtomic(seg.manifestPath, m); err != nil {
		// A file nobody can account for is worse than none: it holds
		// only its header yet.
		_ = seg.close()
		_ = os.Remove(seg.path)
		return nil, fmt.Errorf("recorder: %w", err)
	}
	if err := makeReserve(seg.manifestPath); err != nil {
		rec.log.Warn("recorder: no manifest reserve; a full disk may leave the manifest unfinished", "err", err)
	}
	rel, _ := relToDir(rec.cfg.Dir, seg.path)
	rec.mu.Lock()
	rec.status.Files = append(rec.status.Files, rel)
	rec.mu.Unlock()
	rec.log.Info("recorder: file started", "file", rel, "part", rec.part, "tracks", len(states))
	rec.lastCheck = time.Now()
	return seg, nil
}

// closeSegment finishes the current file and its manifest.
func (rec *Recording) closeSegment(state, reason string) {
	seg := rec.seg
	rec.seg = nil
	err := seg.close()
	if err != nil && rec.failed == nil {
		rec.fail(err)
	}
	if rec.failed != nil {
		state, reason, err = StateFailed, ReasonWriteError, rec.failed
	}
	m := rec.manifest(seg, state, reason, err)
	if werr := writeJSONAtomic(seg.manifestPath, m); werr != nil {
		rec.log.Error("recorder: final manifest not written; Recover will mark it interrupted", "err", werr)
	}
	rec.prevFile = filepath.Base(seg.path)
	for _, t := range seg.tracks {
		// The next file counts from here.
		t.st.recvMark, t.st.lostMark, t.st.droppedMark = m.Tracks[t.num-1].PacketsReceived+t.st.recvMark,
			m.Tracks[t.num-1].PacketsLost+t.st.lostMark, m.Tracks[t.num-1].FramesDropped+t.st.droppedMark
	}
	rec.log.Info("recorder: file finished", "file", seg.path, "state", state, "reason", reason,
		"duration", time.Duration(seg.durationMs())*time.Millisecond, "bytes", m.Bytes)
}

// checkpoint refreshes the current file's manifest with what is certainly
// in the file: a lower bound if the process dies before the next one.
func (rec *Recording) checkpoint() {
	seg := rec.seg
	if err := seg.fw.Flush(); err != nil {
		rec.fail(err)
		return
	}
	m := rec.manifest(seg, StateRecording, "", nil)
	m.DurationMs = seg.writtenMs()
	if err := writeJSONAtomic(seg.manifestPath, m); err != nil {
		rec.log.Warn("recorder: manifest checkpoint failed", "err", err)
		return
	}
	if err := makeReserve(seg.manifestPath); err != nil {
		rec.log.Warn("recorder: no manifest reserve", "err", err)
	}
}

// manifest describes seg.
func (rec *Recording) manifest(seg *segment, state, reason string, err error) *Manifest {
	event, args := rec.info.firstEvent()
	m := &Manifest{
		Version:       1,
		State:         state,
		File:          filepath.Base(seg.path),
		Container:     seg.container,
		RecordingID:   rec.id,
		Part:          seg.part,
		Previous:      rec.prevFile,
		Room:          rec.info.Room,
		Publisher:     Publisher{ID: rec.info.PublisherID, Name: rec.info.PublisherName},
		Event:         event,
		Args:          args,
		Events:        rec.info.Events,
		StreamID:      rec.info.StreamID,
		MediaStreamID: rec.info.MediaStreamID,
		Start:         seg.started.UTC(),
		DurationMs:    seg.durationMs(),
		Bytes:         seg.fw.Size(),
		EndReason:     reason,
	}
	if seg.part == 1 {
		m.Previous = ""
	}
	if seg.haveFirst {
		// The wall time of the file's time zero: when its first frame
		// arrived, which can be before the file was created.
		m.Start = seg.firstWall.UTC()
	}
	if state != StateRecording {
		end := time.Now().UTC()
		m.End = &end
	}
	if err != nil {
		m.Error = err.Error()
	}
	for _, t := range seg.tracks {
		st := t.st
		tm := TrackManifest{
			Number:          t.num,
			ID:              st.t.cfg.ID,
			Kind:            "audio",
			MimeType:        st.t.cfg.Codec.MimeType,
			CodecID:         matroskaID(st.kind),
			ClockRate:       st.t.cfg.Codec.ClockRate,
			Frames:          t.frames,
			Bytes:           t.bytes,
			PacketsReceived: st.t.received.Load() - st.recvMark,
			PacketsLost:     st.lost - st.lostMark,
			FramesDropped:   st.framesDropped + st.badFrames - st.droppedMark,
		}
		if st.kind.Video() {
			tm.Kind, tm.Width, tm.Height = "video", t.width, t.height
		}
		if t.started && seg.haveFirst {
			tm.StartMs = t.firstMs - seg.firstMs
		}
		m.Tracks = append(m.Tracks, tm)
		m.PacketsReceived += tm.PacketsReceived
		m.PacketsLost += tm.PacketsLost
	}
	return m
}

// drain writes queued frames in time order. A frame waits while another
// track of the file has nothing queued, for at most the interleave window
// (in media time or in wall time); force writes everything.
func (rec *Recording) drain(now time.Time, force bool) {
	window := rec.cfg.InterleaveWindow
	for rec.seg != nil && rec.failed == nil {
		seg := rec.seg
		var best *segTrack
		newest := int64(math.MinInt64)
		for _, t := range seg.tracks {
			if n := len(t.queue); n > 0 {
				if best == nil || t.queue[0].ms < best.queue[0].ms {
					best = t
				}
				newest = max(newest, t.queue[n-1].ms)
			}
		}
		if best == nil {
			return
		}
		f := best.queue[0]
		if !force && !rec.canWrite(seg, best, f, newest, now, window) {
			return
		}
		if rec.rollBefore(seg, best, f) {
			continue
		}
		best.queue[0] = nil
		best.queue = best.queue[1:]
		if err := seg.write(best, f); err != nil {
			if !errors.Is(err, errFrameOrder) {
				rec.fail(err)
				return
			}
			best.st.framesDropped++
			continue
		}
		rec.checkLimits(seg)
	}
}

// canWrite reports whether f may be written now without waiting for the
// other tracks.
func (rec *Recording) canWrite(seg *segment, best *segTrack, f *frame, newest int64, now time.Time, window time.Duration) bool {
	if now.Sub(f.queuedAt) >= window || newest-f.ms >= window.Milliseconds() {
		return true
	}
	for _, t := range seg.tracks {
		if t != best && len(t.queue) == 0 && !t.st.ended {
			return false
		}
	}
	return true
}

// rollBefore rolls to a new file before f when a roll is due at this
// keyframe, or when f changes the video in a way the file cannot hold. It
// reports whether it rolled.
func (rec *Recording) rollBefore(seg *segment, t *segTrack, f *frame) bool {
	video := t.st.kind.Video()
	if rec.rollReason != "" && t == seg.tracks[seg.mainTrack] && t.started && (!video || f.info.keyframe) {
		rec.roll(rec.rollReason)
		return true
	}
	if !video || !f.info.keyframe || !t.started {
		return false
	}
	resized := f.info.width > 0 && (f.info.width != t.width || f.info.height != t.height)
	reconfigured := f.info.config != nil && t.config != nil && !sameConfig(f.info.config, t.config)
	if reconfigured || (resized && rec.cfg.RollOnResolutionChange) {
		rec.log.Info("recorder: video changed, new file", "width", f.info.width, "height", f.info.height)
		rec.roll(ReasonResolution)
		return true
	}
	if resized {
		rec.log.Debug("recorder: video resolution changed", "width", f.info.width, "height", f.info.height)
	}
	return false
}

// checkLimits rolls at the size and duration limits: at once when reached,
// at the next keyframe when within 10% of them.
func (rec *Recording) checkLimits(seg *segment) {
	size, dur := seg.fw.Size(), time.Duration(seg.durationMs())*time.Millisecond
	maxSize, maxDur := rec.cfg.MaxFileSize, rec.cfg.MaxDuration
	switch {
	case maxSize > 0 && size >= maxSize:
		rec.roll(ReasonMaxSize)
	case maxDur > 0 && dur >= maxDur:
		rec.roll(ReasonMaxDuration)
	case maxSize > 0 && size >= maxSize-maxSize/10:
		rec.scheduleRoll(ReasonMaxSize)
	case maxDur > 0 && dur >= maxDur-maxDur/10:
		rec.scheduleRoll(ReasonMaxDuration)
	}
}
