package recorder

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Manifest states.
const (
	StateRecording   = "recording"   // being written (or the writer crashed: see Recover)
	StateDone        = "done"        // finished normally
	StateFailed      = "failed"      // stopped by an error, see Error
	StateInterrupted = "interrupted" // found unfinished by Recover
)

// End reasons.
const (
	ReasonStopped          = "stopped"           // Stop, Close or the context
	ReasonTracksEnded      = "tracks-ended"      // every track's publication ended
	ReasonMaxSize          = "max-size"          // rolled to the next file
	ReasonMaxDuration      = "max-duration"      // rolled to the next file
	ReasonTrackAdded       = "track-added"       // rolled: a track joined late
	ReasonResolution       = "resolution-change" // rolled: new video size or codec configuration
	ReasonWriteError       = "write-error"       // the disk refused a write
	ReasonInterruptedCrash = "interrupted"       // the process died while writing
)

// Manifest describes one recorded file. It is written beside the file, with
// the same name and ".json", when the file starts (state "recording") and
// replaced atomically when it ends.
type Manifest struct {
	Version     int    `json:"version"`
	State       string `json:"state"`
	File        string `json:"file"` // base name of the media file
	Container   string `json:"container"`
	RecordingID string `json:"recording_id"`
	Part        int    `json:"part"`
	Previous    string `json:"previous,omitempty"` // the file this one continues

	Room          string                       `json:"room"`
	Publisher     Publisher                    `json:"publisher"`
	Event         string                       `json:"event,omitempty"`
	Args          []json.RawMessage            `json:"args,omitempty"`
	Events        map[string][]json.RawMessage `json:"events,omitempty"`
	StreamID      string                       `json:"stream_id"`
	MediaStreamID string                       `json:"media_stream_id"`

	Tracks []TrackManifest `json:"tracks"`

	Start      time.Time  `json:"start"`
	End        *time.Time `json:"end,omitempty"`
	DurationMs int64      `json:"duration_ms"`
	Bytes      int64      `json:"bytes"`

	PacketsReceived uint64 `json:"packets_received"`
	PacketsLost     uint64 `json:"packets_lost"`

	EndReason string `json:"end_reason,omitempty"`
	Error     string `json:"error,omitempty"`
}

// Publisher identifies who published the stream.
type Publisher struct {
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
}

// TrackManifest describes one track of a file.
type TrackManifest struct {
	Number          uint64 `json:"number"`
	ID              string `json:"id,omitempty"`
	Kind            string `json:"kind"`
	MimeType        string `json:"mime_type"`
	CodecID         string `json:"codec_id"`
	ClockRate       uint32 `json:"clock_rate"`
	Width           int    `json:"width,omitempty"`
	Height          int    `json:"height,omitempty"`
	Frames          uint64 `json:"frames"`
	Bytes           uint64 `json:"bytes"`
	StartMs         int64  `json:"start_ms"` // first frame, relative to the file's first frame
	PacketsReceived uint64 `json:"packets_received"`
	PacketsLost     uint64 `json:"packets_lost"`
	// FramesDropped counts frames not written: incomplete, undecodable, or
	// video waiting for a keyframe after a loss.
	FramesDropped uint64 `json:"frames_dropped"`
}

// manifestReserve is the size of the spare file kept beside each manifest.
// The final manifest is written into it, then renamed over the manifest:
// rewriting blocks a file already owns needs no free space, so a recording
// stopped by a full disk can still say so.
const manifestReserve = 16 << 10

func reservePath(manifestPath string) string {
	dir, base := filepath.Split(manifestPath)
	return filepath.Join(dir, "."+base+".tmp")
}

// writeJSONAtomic writes v to path through a temporary file and a rename,
// so readers see either the old or the new manifest, never a mix. It uses
// the reserve file when present.
func writeJSONAtomic(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode manifest: %w", err)
	}
	b = append(b, '\n')
	tmp := reservePath(path)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("write manifest: %w", err)
	}
	_, werr := f.WriteAt(b, 0)
	if werr == nil {
		werr = f.Truncate(int64(len(b)))
	}
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp, path)
	}
	if werr != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write manifest %s: %w", path, werr)
	}
	syncDir(filepath.Dir(path))
	return nil
}

// makeReserve creates the spare file for the next manifest write.
func makeReserve(manifestPath string) error {
	tmp := reservePath(manifestPath)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("manifest reserve: %w", err)
	}
	// Real bytes, not a sparse hole, so that the blocks are allocated now.
	_, err = f.Write(make([]byte, manifestReserve))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("manifest reserve: %w", err)
	}
	return nil
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}

// ReadManifest reads one manifest file.
func ReadManifest(path string) (*Manifest, error) {
	var m Manifest
	if err := readJSON(path, &m); err != nil {
		return nil, err
	}
	return &m, nil
}

// readJSON decodes the JSON file at path into v.
func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("recorder: read manifest: %w", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("recorder: manifest %s: %w", path, err)
	}
	return nil
}

// Recover marks the manifests under dir that are still in state "recording"
// as "interrupted": their writer died (kill -9, power loss) before finishing
// them. The file itself is left as it is: it plays up to its last flush. It
// fills in the end time and size from the media file (duration and packet
// counts stay those of the last checkpoint, a lower bound) and removes
// leftover temporary files. Call it when the process starts, before any recording
// into dir begins. It returns the manifests it changed.
func Recover(dir string, log *slog.Logger) ([]string, error) {
	if log == nil {
		log = slog.Default()
	}
	var changed []string
	var errs []error
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			errs = append(errs, err)
			return nil
		}
		name := d.Name()
		switch {
		case d.IsDir():
			return nil
		case strings.HasPrefix(name, ".") && strings.HasSuffix(name, ".json.tmp"):
			if err := os.Remove(path); err != nil {
				errs = append(errs, err)
			}
			return nil
		case strings.HasSuffix(name, RoomManifestSuffix):
			if ok, err := recoverRoom(path); err != nil {
				errs = append(errs, err)
			} else if ok {
				changed = append(changed, path)
			}
			return nil
		case !strings.HasSuffix(name, ".json"):
			return nil
		}
		m, err := ReadManifest(path)
		if err != nil {
			errs = append(errs, err)
			return nil
		}
		if m.State != StateRecording {
			return nil
		}
		m.State = StateInterrupted
		m.EndReason = ReasonInterruptedCrash
		if st, err := os.Stat(filepath.Join(filepath.Dir(path), m.File)); err == nil {
			end := st.ModTime().UTC()
			m.End = &end
			m.Bytes = st.Size()
		}
		if err := writeJSONAtomic(path, m); err != nil {
			errs = append(errs, err)
			return nil
		}
		log.Info("recorder: marked interrupted recording", "manifest", path, "file", m.File)
		changed = append(changed, path)
		return nil
	})
	if err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return changed, fmt.Errorf("recorder: recover %s: %w", dir, errors.Join(errs...))
	}
	return changed, nil
}

// recoverRoom marks a room manifest left in state "recording" as
// interrupted, ending it at its last change.
func recoverRoom(path string) (bool, error) {
	m, err := ReadRoomManifest(path)
	if err != nil || m.State != StateRecording {
		return false, err
	}
	m.State = StateInterrupted
	if st, err := os.Stat(path); err == nil {
		end := st.ModTime().UTC()
		m.End = &end
		m.DurationMs = end.Sub(m.Start).Milliseconds()
	}
	return true, writeJSONAtomic(path, m)
}
