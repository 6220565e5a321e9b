package sfu

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"github.com/rtcio-gateway/rtcio-gateway/recorder"
)

// A recording is one more subscriber of a stream's publications: a
// recorder sink attached to each of them. Recording a room records every
// stream it relays, including streams published later.

// RecordingInfo describes one recording of a room's stream.
type RecordingInfo struct {
	ID     string   `json:"id"`
	Stream string   `json:"stream"`
	State  string   `json:"state"`
	Files  []string `json:"files"`
	Error  string   `json:"error,omitempty"`
}

// ErrRecordingUnavailable is returned when the gateway has no recorder
// (recording.dir is not set).
var ErrRecordingUnavailable = errors.New("sfu: recording is not configured (recording.dir)")

// StartRecording records one relayed stream, or every stream of the room
// (now and later) when streamID is empty. It reports how many recordings it
// started.
func (r *Room) StartRecording(streamID string) (int, error) {
	if r.cfg.Recorder == nil {
		return 0, ErrRecordingUnavailable
	}
	r.mu.Lock()
	if streamID == "" {
		r.recordAll = true
	}
	var todo []*relayed
	found := streamID == ""
	for _, rel := range r.streams {
		if rel.out == nil || (streamID != "" && rel.out.ID() != streamID) {
			continue
		}
		found = true
		if r.recordings[rel.out.ID()] == nil {
			todo = append(todo, rel)
		}
	}
	r.mu.Unlock()
	if !found {
		return 0, fmt.Errorf("sfu: no stream %s in room %s", streamID, r.id)
	}
	n := 0
	var errs []error
	for _, rel := range todo {
		if err := r.record(rel); err != nil {
			errs = append(errs, err)
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

// StopRecording stops one stream's recording, or all of the room's (and
// recording of later streams) when streamID is empty. A recording stopped
// and started again writes a new file.
func (r *Room) StopRecording(streamID string) int {
	r.mu.Lock()
	if streamID == "" {
		r.recordAll = false
	}
	var stop []*recorder.Recording
	for id, rec := range r.recordings {
		if streamID == "" || id == streamID {
			stop = append(stop, rec)
			delete(r.recordings, id)
		}
	}
	r.mu.Unlock()
	for _, rec := range stop {
		_ = rec.Stop()
	}
	return len(stop)
}

// Recordings lists the room's current recordings.
func (r *Room) Recordings() []RecordingInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]RecordingInfo, 0, len(r.recordings))
	for id, rec := range r.recordings {
		st := rec.Status()
		info := RecordingInfo{ID: st.ID, Stream: id, State: st.State, Files: st.Files}
		if st.Err != nil {
			info.Error = st.Err.Error()
		}
		out = append(out, info)
	}
	return out
}

// recordLater starts a relayed stream's recording on a goroutine of its
// own: creating its files can block on a slow disk, and the stream
// decisions run on the Socket's dispatcher, which the room's relay of ctrl
// events and every other decision wait on.
func (r *Room) recordLater(rel *relayed) {
	r.loops.Add(1)
	go func() {
		defer r.loops.Done()
		_ = r.record(rel)
	}()
}

// record starts recording a relayed stream and attaches its tracks.
func (r *Room) record(rel *relayed) error {
	id := rel.out.ID()
	r.mu.Lock()
	if r.ctx.Err() != nil || r.recordings[id] != nil || r.starting[id] {
		// Closing, recorded already, or being started by another call.
		r.mu.Unlock()
		return nil
	}
	r.starting[id] = true
	expected := len(rel.tracks)
	r.mu.Unlock()
	events, _ := r.sock.RelayedEvents(rel.out)
	rec, err := r.cfg.Recorder.Start(r.ctx, recorder.StreamInfo{
		Room:           r.id,
		PublisherID:    rel.key.publisher,
		StreamID:       id,
		MediaStreamID:  rel.key.msid,
		Events:         events,
		ExpectedTracks: expected,
	})
	if err != nil {
		r.mu.Lock()
		delete(r.starting, id)
		r.mu.Unlock()
		r.log.Error("sfu: cannot start recording", "stream", id, "err", err)
		n := rel.key.notice(RecordingFailed, rel.out)
		n.Error, n.Reason = err.Error(), failureReason(err)
		r.notify(n)
		return fmt.Errorf("recording %s: %w", id, err)
	}
	// The tracks are taken in the same critical section that publishes the
	// recording: a track that arrives later finds the recording and
	// attaches itself (onRemoteTrack), so each is attached exactly once.
	r.mu.Lock()
	delete(r.starting, id)
	r.recordings[id] = rec
	ins := make([]*inbound, 0, len(rel.tracks))
	for _, in := range rel.tracks {
		ins = append(ins, in)
	}
	r.mu.Unlock()
	meeting := r.meeting.open(r.cfg.Recorder, r.id, r.log)
	if meeting != nil {
		meeting.Add(rec)
	}
	for _, in := range ins {
		r.attachRecording(rec, in)
	}
	r.loops.Add(1)
	go r.awaitRecording(rel.out.ID(), rec)
	r.log.Info("sfu: recording stream", "stream", rel.out.ID(), "recording", rec.ID())
	return nil
}

func (r *Room) attachRecording(rec *recorder.Recording, in *inbound) {
	if _, _, err := rec.Attach(in.pub.Load(), in.track.ID()); err != nil {
		r.log.Warn("sfu: recording a track", "recording", rec.ID(), "track", in.track.ID(), "err", err)
	}
}

// recordingFor returns the recording of a stream, if any. r.mu must be held.
func (r *Room) recordingFor(rel *relayed) *recorder.Recording {
	if rel.out == nil {
		return nil
	}
	return r.recordings[rel.out.ID()]
}

// awaitRecording reports a recording that ended (stopped, its stream
// gone, or a write error) with the path of its last manifest.
func (r *Room) awaitRecording(streamID string, rec *recorder.Recording) {
	defer r.loops.Done()
	<-rec.Done()
	if m := r.meeting.get(); m != nil {
		m.Ended(rec)
	}
	r.mu.Lock()
	if r.recordings[streamID] == rec {
		delete(r.recordings, streamID)
	}
	r.mu.Unlock()
	st := rec.Status()
	n := Notice{Kind: RecordingFinished, Stream: streamID, Recording: st.ID}
	if len(st.Files) > 0 {
		last := st.Files[len(st.Files)-1]
		n.Manifest = filepath.Join(r.cfg.Recorder.Dir(), strings.TrimSuffix(last, filepath.Ext(last))+".json")
	}
	r.notify(n)
	if st.Err != nil {
		r.log.Error("sfu: recording failed", "recording", st.ID, "stream", streamID, "err", st.Err)
		failed := n
		failed.Kind, failed.Error, failed.Reason = RecordingFailed, st.Err.Error(), failureReason(st.Err)
		r.notify(failed)
	}
}

// failureReason names what stopped a recording in words that carry no path.
func failureReason(err error) string {
	switch {
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT), strings.Contains(err.Error(), "is full"):
		return "disk-full"
	case errors.Is(err, fs.ErrPermission), errors.Is(err, syscall.EROFS):
		return "permission"
	}
	return "error"
}

// meeting opens the room manifest when the room's first recording starts
// and closes it with the room, so every file recorded while the room's
// gateway peer lived is one meeting on one clock.
type meeting struct {
	mu     sync.Mutex
	log    *recorder.RoomLog
	failed bool
}

// open returns the room manifest, opening it on the first call; nil when it
// cannot be written (logged once; the recordings go on without it).
func (m *meeting) open(rec *recorder.Recorder, room string, log *slog.Logger) *recorder.RoomLog {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.log == nil && !m.failed {
		l, err := rec.OpenRoom(room)
		if err != nil {
			log.Error("sfu: room manifest", "err", err)
			m.failed = true
			return nil
		}
		m.log = l
	}
	return m.log
}

func (m *meeting) get() *recorder.RoomLog {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.log
}

func (m *meeting) close() {
	if l := m.get(); l != nil {
		l.Close()
	}
}
