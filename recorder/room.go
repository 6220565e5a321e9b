package recorder

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// RoomManifestSuffix ends the name of every room manifest.
const RoomManifestSuffix = ".room.json"

// RoomManifest lists every recording of one meeting (a room's recording
// session) on one clock: the wall clock of the process that recorded them.
// The per-file manifests give each file's exact time zero (Manifest.Start)
// and length; the room manifest says which recordings belong together and
// when each began and ended relative to Start, so the files can be laid
// side by side (see the compose package). It is written beside the room's
// files when the meeting's first recording starts and replaced atomically
// on every change.
type RoomManifest struct {
	Version int        `json:"version"`
	Kind    string     `json:"kind"` // always "room"
	State   string     `json:"state"`
	Room    string     `json:"room"`
	Start   time.Time  `json:"start"`
	End     *time.Time `json:"end,omitempty"`
	// DurationMs is End-Start once the meeting ended, else up to now.
	DurationMs int64        `json:"duration_ms"`
	Streams    []RoomStream `json:"streams"`
}

// RoomStream is one recording of the meeting.
type RoomStream struct {
	RecordingID   string    `json:"recording_id"`
	Publisher     Publisher `json:"publisher"`
	StreamID      string    `json:"stream_id"`
	MediaStreamID string    `json:"media_stream_id"`
	Event         string    `json:"event,omitempty"`
	// StartMs and EndMs are when the recording began and ended, from the
	// room manifest's Start; EndMs is absent while it goes on.
	StartMs int64  `json:"start_ms"`
	EndMs   *int64 `json:"end_ms,omitempty"`
	State   string `json:"state"`
	// Files are the recording's files, relative to the room manifest's
	// directory, once it ended (a crash leaves them out: look for the
	// per-file manifests with the same recording_id then).
	Files []string `json:"files,omitempty"`
	Error string   `json:"error,omitempty"`
}

// RoomLog keeps one meeting's room manifest up to date. Its methods are
// safe for concurrent use; a manifest that cannot be written is logged and
// does not stop any recording.
type RoomLog struct {
	dir  string // the recorder's output directory
	path string
	log  *slog.Logger

	mu     sync.Mutex
	m      RoomManifest
	closed bool
}

// OpenRoom starts the room manifest of a meeting in room: a file
// "<start>.room.json" in the room's own directory below the output
// directory (the one the default name template gives its files).
func (r *Recorder) OpenRoom(room string) (*RoomLog, error) {
	start := time.Now().UTC()
	path := filepath.Join(r.cfg.Dir, sanitize(room), start.Format("20060102T150405.000Z")+RoomManifestSuffix)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("recorder: room directory: %w", err)
	}
	l := &RoomLog{dir: r.cfg.Dir, path: path, log: r.cfg.Logger,
		m: RoomManifest{Version: 1, Kind: "room", State: StateRecording, Room: room, Start: start, Streams: []RoomStream{}}}
	if err := makeReserve(path); err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.writeLocked(); err != nil {
		return nil, err
	}
	return l, nil
}

// Path is the room manifest's path.
func (l *RoomLog) Path() string { return l.path }

// Add notes a recording of the meeting that just started.
func (l *RoomLog) Add(rec *Recording) {
	info := rec.Info()
	event, _ := info.firstEvent()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	l.m.Streams = append(l.m.Streams, RoomStream{
		RecordingID: rec.ID(), Publisher: Publisher{ID: info.PublisherID, Name: info.PublisherName},
		StreamID: info.StreamID, MediaStreamID: info.MediaStreamID, Event: event,
		StartMs: time.Since(l.m.Start).Milliseconds(), State: StateRecording,
	})
	l.update()
}

// Ended notes that a recording of the meeting ended, with its files.
func (l *RoomLog) Ended(rec *Recording) {
	st := rec.Status()
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := range l.m.Streams {
		s := &l.m.Streams[i]
		if s.RecordingID != rec.ID() || s.EndMs != nil {
			continue
		}
		end := time.Since(l.m.Start).Milliseconds()
		s.EndMs, s.State = &end, st.State
		if st.Err != nil {
			s.Error = st.Err.Error()
		}
		for _, f := range st.Files {
			if rel, err := filepath.Rel(filepath.Dir(l.path), filepath.Join(l.dir, f)); err == nil {
				s.Files = append(s.Files, filepath.ToSlash(strings.TrimSuffix(rel, filepath.Ext(rel))+".json"))
			}
		}
		l.update()
		return
	}
}

// Close ends the meeting: the manifest gets its end and state "done".
func (l *RoomLog) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	l.closed = true
	end := time.Now().UTC()
	l.m.End, l.m.State = &end, StateDone
	l.update()
	_ = os.Remove(reservePath(l.path))
}

// Manifest returns a copy of the room manifest as it stands.
func (l *RoomLog) Manifest() RoomManifest {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := l.m
	m.Streams = append([]RoomStream(nil), l.m.Streams...)
	return m
}

// update rewrites the manifest; l.mu must be held.
func (l *RoomLog) update() {
	if err := l.writeLocked(); err != nil {
		l.log.Error("recorder: room manifest", "room", l.m.Room, "path", l.path, "err", err)
	}
}

func (l *RoomLog) writeLocked() error {
	if l.m.End != nil {
		l.m.DurationMs = l.m.End.Sub(l.m.Start).Milliseconds()
	} else {
		l.m.DurationMs = time.Since(l.m.Start).Milliseconds()
	}
	if err := writeJSONAtomic(l.path, &l.m); err != nil {
		return err
	}
	if !l.closed {
		// The next rewrite needs its spare file again.
		return makeReserve(l.path)
	}
	return nil
}

// ReadRoomManifest reads a room manifest.
func ReadRoomManifest(path string) (*RoomManifest, error) {
	var m RoomManifest
	if err := readJSON(path, &m); err != nil {
		return nil, err
	}
	if m.Kind != "room" {
		return nil, fmt.Errorf("recorder: %s is not a room manifest", path)
	}
	return &m, nil
}
