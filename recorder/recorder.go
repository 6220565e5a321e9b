package recorder

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
)

// ErrClosed is returned by Start once the Recorder is closed.
var ErrClosed = errors.New("recorder: closed")

// Recorder writes recordings into one output directory with one
// configuration. It is safe for concurrent use.
type Recorder struct {
	cfg Config

	mu     sync.Mutex
	closed bool
	active map[*Recording]struct{}
}

// New checks the configuration, creates the output directory and checks that
// it is writable.
func New(cfg Config) (*Recorder, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	if err := checkWritable(cfg.Dir, 0); err != nil {
		return nil, err
	}
	return &Recorder{cfg: cfg, active: make(map[*Recording]struct{})}, nil
}

// checkWritable creates dir if needed, proves it takes a file and that it
// has minFree bytes free, so that a misconfigured or full directory is
// reported when recording starts rather than when the first frame is ready.
func checkWritable(dir string, minFree int64) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("recorder: output directory: %w", err)
	}
	f, err := os.CreateTemp(dir, ".probe-*")
	if err != nil {
		return fmt.Errorf("recorder: output directory %s is not writable: %w", dir, err)
	}
	name := f.Name()
	_, werr := f.Write([]byte("probe"))
	_ = f.Close()
	_ = os.Remove(name)
	if werr != nil {
		return fmt.Errorf("recorder: output directory %s is not writable: %w", dir, werr)
	}
	if free, ok := freeBytes(dir); ok && free < minFree {
		return fmt.Errorf("recorder: output directory %s is full: %d bytes free, %d needed", dir, free, minFree)
	}
	return nil
}

// Dir returns the output directory.
func (r *Recorder) Dir() string { return r.cfg.Dir }

// StreamInfo identifies the stream being recorded; it goes into file names
// and manifests.
type StreamInfo struct {
	Room          string
	PublisherID   string // socket id of the publisher
	PublisherName string
	StreamID      string // the RTCIOStream id (the "[RTCIOStream] <id>" in args)
	MediaStreamID string // the msid stream id
	// Events are the events the publisher emitted with the stream and
	// their arguments, as received in the {mid, events} metadata answer:
	// the stream itself is the placeholder string "[RTCIOStream] <id>".
	Events map[string][]json.RawMessage
	// ExpectedTracks, when set, lets the first file start as soon as this
	// many tracks are ready and have sender reports, instead of waiting up
	// to Config.SyncWait for tracks that might still be added.
	ExpectedTracks int
}

// firstEvent returns the event name (alphabetically first when there are
// several) and its args.
func (s *StreamInfo) firstEvent() (string, []json.RawMessage) {
	if len(s.Events) == 0 {
		return "", nil
	}
	names := make([]string, 0, len(s.Events))
	for n := range s.Events {
		names = append(names, n)
	}
	sort.Strings(names)
	return names[0], s.Events[names[0]]
}

// Start begins a recording of one stream. Add its tracks with AddTrack (or
// Attach). The recording runs until Stop, until ctx is done, until all its
// tracks have ended, or until a write error stops it.
func (r *Recorder) Start(ctx context.Context, info StreamInfo) (*Recording, error) {
	if err := checkWritable(r.cfg.Dir, r.cfg.MinFreeBytes); err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, ErrClosed
	}
	rec := newRecording(ctx, &r.cfg, info, newID())
	r.active[rec] = struct{}{}
	go func() {
		rec.run()
		r.mu.Lock()
		delete(r.active, rec)
		r.mu.Unlock()
	}()
	return rec, nil
}

// Recordings returns the recordings in progress.
func (r *Recorder) Recordings() []*Recording {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*Recording, 0, len(r.active))
	for rec := range r.active {
		out = append(out, rec)
	}
	slices.SortFunc(out, func(a, b *Recording) int { return a.created.Compare(b.created) })
	return out
}

// Close stops every recording (finishing their files) and refuses new ones.
// It returns the recordings' write errors, if any.
func (r *Recorder) Close() error {
	r.mu.Lock()
	r.closed = true
	recs := make([]*Recording, 0, len(r.active))
	for rec := range r.active {
		recs = append(recs, rec)
	}
	r.mu.Unlock()
	var errs []error
	for _, rec := range recs {
		if err := rec.Stop(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// relToDir returns path relative to dir, or an error if it would leave it.
func relToDir(dir, path string) (string, error) {
	rel, err := filepath.Rel(dir, path)
	if err != nil || rel == ".." || len(rel) >= 3 && rel[:3] == ".."+string(filepath.Separator) {
		return "", fmt.Errorf("recorder: file name %q leaves the output directory", path)
	}
	return rel, nil
}
