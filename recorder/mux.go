package recorder

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/at-wat/ebml-go/mkvcore"
	"github.com/at-wat/ebml-go/webm"
)

// Cluster bounds, in milliseconds: a cluster starts at a keyframe of the
// main track at least this long after the previous one, and at the latest
// after clusterMax (ebml-go's limit is 32767).
const (
	clusterMin = 1000
	clusterMax = 5000
	// cuesReserve is the space kept after the track entries for the seek
	// index written at the end; ebml-go thins the index out to fit.
	cuesReserve = 32 << 10
)

// ebmlHeader and segmentInfo are our own structures rather than ebml-go's
// package defaults, which are shared mutable values.
type ebmlHeader struct {
	EBMLVersion        uint64 `ebml:"EBMLVersion"`
	EBMLReadVersion    uint64 `ebml:"EBMLReadVersion"`
	EBMLMaxIDLength    uint64 `ebml:"EBMLMaxIDLength"`
	EBMLMaxSizeLength  uint64 `ebml:"EBMLMaxSizeLength"`
	DocType            string `ebml:"EBMLDocType"`
	DocTypeVersion     uint64 `ebml:"EBMLDocTypeVersion"`
	DocTypeReadVersion uint64 `ebml:"EBMLDocTypeReadVersion"`
}

// segmentInfo deliberately has no Duration: the file is written live and
// must be valid when cut short, so the duration goes into a reserved slot
// (a Void element) only when the file is finished.
type segmentInfo struct {
	TimecodeScale uint64    `ebml:"TimecodeScale"`
	MuxingApp     string    `ebml:"MuxingApp"`
	WritingApp    string    `ebml:"WritingApp"`
	DateUTC       time.Time `ebml:"DateUTC"`
	Title         string    `ebml:"Title,omitempty"`
	DurationSlot  []byte    `ebml:"Void"`
}

// segTrack is one track inside one file.
type segTrack struct {
	st      *trackState
	num     uint64
	w       mkvcore.BlockWriteCloser
	queue   []*frame
	started bool

	width, height int
	config        []byte

	frames, bytes   uint64
	firstMs, lastMs int64
}

// segment is one output file being written.
type segment struct {
	path, manifestPath string
	container          string // "webm" or "matroska"
	part               int
	started            time.Time
	fw                 *fileWriter
	tracks             []*segTrack
	mainTrack          int // index into tracks of the track clusters start on

	haveFirst      bool
	firstMs, endMs int64
	// safeEndMs is endMs before the last frame handed to ebml-go: its
	// writer goroutine takes a frame only after writing the previous one,
	// so everything up to here has reached the file writer.
	safeEndMs int64
	firstWall time.Time // arrival of the first frame written

	fatalMu sync.Mutex
	fatal   error
}

// containerFor picks WebM when every codec fits in it, Matroska otherwise.
func containerFor(states []*trackState) (container, ext string) {
	for _, st := range states {
		if !inWebM(st.kind) {
			return "matroska", ".mkv"
		}
	}
	return "webm", ".webm"
}

// trackHeader is what a file's header says about one track: the video size
// and codec configuration of the first keyframe the file will hold.
type trackHeader struct {
	st            *trackState
	width, height int
	config        []byte
}

// openSegment creates the file and writes its header. The tracks' order is
// the track numbering.
func openSegment(path string, container string, part int, hdrs []trackHeader, sync bool, title string) (*segment, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	s := &segment{path: path, container: container, part: part, started: time.Now(), fw: newFileWriter(f, sync), mainTrack: -1}
	entries := make([]mkvcore.TrackDescription, 0, len(hdrs))
	for i, h := range hdrs {
		st := h.st
		num := uint64(i + 1)
		e := &webm.TrackEntry{
			Name:        st.t.cfg.ID,
			TrackNumber: num,
			TrackUID:    num,
			CodecID:     matroskaID(st.kind),
		}
		if st.kind.Video() {
			e.TrackType = 1
			e.Video = &webm.Video{PixelWidth: uint64(max(h.width, 1)), PixelHeight: uint64(max(h.height, 1))}
			e.CodecPrivate = h.config
			if s.mainTrack < 0 {
				s.mainTrack = i
			}
		} else {
			e.TrackType = 2
			e.Audio = &webm.Audio{SamplingFrequency: 48000, Channels: 2}
			e.CodecPrivate = opusHead()
			e.SeekPreRoll = uint64(80 * time.Millisecond)
		}
		entries = append(entries, mkvcore.TrackDescription{TrackNumber: num, TrackEntry: e})
		s.tracks = append(s.tracks, &segTrack{st: st, num: num, width: h.width, height: h.height, config: h.config})
	}
	if s.mainTrack < 0 {
		s.mainTrack = 0
	}
	header := &ebmlHeader{
		EBMLVersion: 1, EBMLReadVersion: 1, EBMLMaxIDLength: 4, EBMLMaxSizeLength: 8,
		DocType: container, DocTypeVersion: 4, DocTypeReadVersion: 2,
	}
	info := &segmentInfo{
		TimecodeScale: uint64(time.Millisecond),
		MuxingApp:     "ebml-go",
		WritingApp:    "rtcio-gateway recorder",
		DateUTC:       s.started.UTC(),
		Title:         title,
		DurationSlot:  durationSlot,
	}
	ws, err := mkvcore.NewSimpleBlockWriter(s.fw, entries,
		mkvcore.WithEBMLHeader(header),
		mkvcore.WithSegmentInfo(info),
		mkvcore.WithSeekHead(true),
		mkvcore.WithCues(cuesReserve),
		mkvcore.WithMinMaxClusterDuration(uint64(s.mainTrack+1), clusterMin, clusterMax),
		mkvcore.WithOnFatalHandler(s.setFatal),
		mkvcore.WithOnErrorHandler(func(error) {}),
	)
	if err != nil {
		_ = f.Close()
		_ = os.Remove(path)
		return nil, fmt.Errorf("start %s: %w", path, err)
	}
	for i, w := range ws {
		s.tracks[i].w = w
	}
	if err := s.fw.Err(); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

func (s *segment) setFatal(err error) {
	s.fatalMu.Lock()
	if s.fatal == nil {
		s.fatal = err
	}
	s.fatalMu.Unlock()
}

// err returns the first write error of the file.
func (s *segment) err() error {
	if err := s.fw.Err(); err != nil {
		return err
	}
	s.fatalMu.Lock()
	defer s.fatalMu.Unlock()
	if s.fatal != nil {
		return fmt.Errorf("mux %s: %w", s.path, s.fatal)
	}
	return nil
}

// trackFor returns the segment's track for a track state, or nil.
func (s *segment) trackFor(st *trackState) *segTrack {
	for _, t := range s.tracks {
		if t.st == st {
			return t
		}
	}
	return nil
}

var errFrameOrder = errors.New("frame out of order")

// write puts one frame in the file. Frames that cannot start the track's
// part of the file (video before a keyframe) or go back in time are refused.
func (s *segment) write(t *segTrack, f *frame) error {
	video := t.st.kind.Video()
	if !t.started && video && !f.info.keyframe {
		return errFrameOrder
	}
	if (s.haveFirst && f.ms < s.firstMs) || (t.started && f.ms <= t.lastMs) {
		return errFrameOrder
	}
	s.safeEndMs = s.endMs
	if _, err := t.w.Write(!video || f.info.keyframe, f.ms, f.data); err != nil {
		return fmt.Errorf("mux %s: %w", s.path, err)
	}
	if !s.haveFirst {
		s.haveFirst, s.firstMs, s.firstWall = true, f.ms, f.arrival
	}
	if !t.started {
		t.started, t.firstMs = true, f.ms
	}
	t.lastMs = f.ms
	t.frames++
	t.bytes += uint64(len(f.data))
	end := f.ms + t.st.frameDurationMs()
	if end > s.endMs {
		s.endMs = end
	}
	return nil
}

// durationMs is the media time the file spans so far.
func (s *segment) durationMs() int64 {
	if !s.haveFirst {
		return 0
	}
	return s.endMs - s.firstMs
}

// writtenMs is the media time certainly handed to the file writer (see
// safeEndMs); after a Flush, certainly in the file.
func (s *segment) writtenMs() int64 {
	if !s.haveFirst || s.safeEndMs < s.firstMs {
		return 0
	}
	return s.safeEndMs - s.firstMs
}

// close finishes the file: ebml-go writes the seek index, the duration goes
// into its slot and the file is synced and closed. It returns the file's
// first error, if any.
func (s *segment) close() error {
	s.fw.setDuration(float64(s.durationMs()))
	// The last writer's Close returns once ebml-go has finished the file.
	for _, t := range s.tracks {
		if t.w != nil {
			_ = t.w.Close()
		}
	}
	return s.err()
}
