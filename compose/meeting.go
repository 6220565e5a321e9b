// Package compose turns a recorded meeting into one playable file: every
// participant's video tiled in a grid that follows who was publishing
// when, and everyone's audio mixed, aligned by the room manifest the
// recorder writes. ffmpeg does the decoding, scaling, mixing and encoding;
// this package reads the manifests, plans the layout and builds ffmpeg's
// filter graph.
package compose

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/rtcio-gateway/rtcio-gateway/recorder"
)

// Meeting is what compose needs of a recorded meeting.
type Meeting struct {
	Room string
	// Manifest is the room manifest it was read from.
	Manifest string
	Duration time.Duration
	// Participants are the meeting's recorded streams, in the order they
	// began.
	Participants []Participant
}

// Participant is one recorded stream (a camera, a screen) and its files.
type Participant struct {
	Publisher recorder.Publisher
	StreamID  string
	Files     []File
}

// File is one recorded file placed on the meeting's clock.
type File struct {
	Path string
	// Offset is where the file's time zero falls after the meeting's start.
	Offset   time.Duration
	Duration time.Duration
	Video    bool
	Audio    bool
	// VideoOffset and AudioOffset are where its first video and audio
	// frames fall: video waits for a keyframe, so it can start after the
	// audio.
	VideoOffset, AudioOffset time.Duration
}

// End is when the file's media ends on the meeting's clock.
func (f File) End() time.Duration { return f.Offset + f.Duration }

// Load reads a meeting from a room manifest, or from a room directory, in
// which case its latest room manifest is used.
func Load(path string) (*Meeting, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("compose: %w", err)
	}
	if st.IsDir() {
		if path, err = latestRoomManifest(path); err != nil {
			return nil, err
		}
	}
	rm, err := recorder.ReadRoomManifest(path)
	if err != nil {
		return nil, fmt.Errorf("compose: %w", err)
	}
	files, err := fileManifests(filepath.Dir(path), rm)
	if err != nil {
		return nil, err
	}
	m := &Meeting{Room: rm.Room, Manifest: path, Duration: time.Duration(rm.DurationMs) * time.Millisecond}
	streams := slices.Clone(rm.Streams)
	sort.SliceStable(streams, func(i, j int) bool { return streams[i].StartMs < streams[j].StartMs })
	for _, s := range streams {
		p := Participant{Publisher: s.Publisher, StreamID: s.StreamID}
		for _, fm := range files[s.RecordingID] {
			f := File{
				Path:     filepath.Join(filepath.Dir(fm.path), fm.m.File),
				Offset:   fm.m.Start.Sub(rm.Start),
				Duration: time.Duration(fm.m.DurationMs) * time.Millisecond,
			}
			for _, t := range fm.m.Tracks {
				switch t.Kind {
				case "video":
					if t.Frames > 0 {
						f.Video = true
						f.VideoOffset = f.Offset + time.Duration(t.StartMs)*time.Millisecond
					}
				case "audio":
					if t.Frames > 0 {
						f.Audio = true
						f.AudioOffset = f.Offset + time.Duration(t.StartMs)*time.Millisecond
					}
				}
			}
			if f.Duration > 0 {
				p.Files = append(p.Files, f)
			}
		}
		if len(p.Files) > 0 {
			m.Participants = append(m.Participants, p)
		}
	}
	if m.Duration <= 0 {
		// An interrupted meeting: as long as its last file.
		for _, p := range m.Participants {
			for _, f := range p.Files {
				m.Duration = max(m.Duration, f.End())
			}
		}
	}
	if len(m.Participants) == 0 {
		return nil, fmt.Errorf("compose: %s lists no recorded file", path)
	}
	return m, nil
}

// latestRoomManifest finds the newest room manifest directly in dir (their
// names start with the meeting's start time).
func latestRoomManifest(dir string) (string, error) {
	matches, err := filepath.Glob(filepath.Join(dir, "*"+recorder.RoomManifestSuffix))
	if err != nil {
		return "", fmt.Errorf("compose: %w", err)
	}
	if len(matches) == 0 {
		return "", fmt.Errorf("compose: no room manifest (*%s) in %s", recorder.RoomManifestSuffix, dir)
	}
	sort.Strings(matches)
	return matches[len(matches)-1], nil
}

type fileManifest struct {
	path string
	m    *recorder.Manifest
}

// fileManifests finds the per-file manifests of the room manifest's
// recordings: the files it lists, and every per-file manifest below its
// directory with one of its recording ids (a recording cut short by a
// crash has files the room manifest never heard of). They come back by
// recording id, in part order.
func fileManifests(dir string, rm *recorder.RoomManifest) (map[string][]fileManifest, error) {
	want := make(map[string]bool, len(rm.Streams))
	paths := make(map[string]bool)
	for _, s := range rm.Streams {
		want[s.RecordingID] = true
		for _, f := range s.Files {
			paths[filepath.Clean(filepath.Join(dir, filepath.FromSlash(f)))] = true
		}
	}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(p, ".json") && !strings.HasSuffix(p, recorder.RoomManifestSuffix) {
			paths[filepath.Clean(p)] = true
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("compose: %w", err)
	}
	out := make(map[string][]fileManifest)
	for p := range paths {
		m, err := recorder.ReadManifest(p)
		if err != nil {
			// A listed file that is gone, or some other JSON file that
			// happens to sit there: not part of the meeting.
			continue
		}
		if want[m.RecordingID] {
			out[m.RecordingID] = append(out[m.RecordingID], fileManifest{path: p, m: m})
		}
	}
	for _, fs := range out {
		sort.Slice(fs, func(i, j int) bool { return fs[i].m.Part < fs[j].m.Part })
	}
	return out, nil
}
