package recorder

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/rtcio-gateway/rtcio-gateway/internal/defaults"
)

// Config configures a Recorder. Zero values get the defaults noted on each
// field; Dir is required.
type Config struct {
	// Dir is the output directory. It is created if missing.
	Dir string

	// NameTemplate names each file, relative to Dir and without extension
	// (".webm" or ".mkv" is added, the manifest gets ".json"). It may
	// contain "/" to make subdirectories, and these placeholders, each
	// replaced by a value restricted to [A-Za-z0-9._-]:
	// {room} {publisher} (socket id) {name} (publisher name) {event}
	// {stream} (RTCIOStream id) {mediastream} {start} (UTC, 20060102T150405Z)
	// {date} (2006-01-02) {id} (recording id) {part} (1, 2, ... per file).
	// Without {part}, files after the first get "-partN" appended.
	// Default "{room}/{start}_{publisher}_{stream}".
	NameTemplate string

	// MaxFileSize rolls to a new file once a file reaches this many bytes
	// (at the next video keyframe once within 10% of it). 0: no limit.
	MaxFileSize int64
	// MaxDuration rolls to a new file once a file holds this much media
	// (at the next video keyframe once within 10% of it). 0: no limit.
	MaxDuration time.Duration

	// FlushInterval bounds how long written media stays in memory: after a
	// crash the file plays up to the last flush. Default 1s.
	FlushInterval time.Duration
	// Sync also fsyncs the file at every flush, so that the same holds
	// after a power loss, at the cost of disk I/O.
	Sync bool

	// CheckpointInterval is how often the manifest of the file being
	// written is refreshed (state still "recording"), so that after a
	// crash it tells at least how much media the file held then.
	// Default 10s.
	CheckpointInterval time.Duration

	// ReorderLatency is how long a track waits for a missing packet
	// (reordered, or retransmitted after a NACK) before declaring it lost.
	// Default 300ms. ReorderPackets bounds the same wait in packets
	// (default 512).
	ReorderLatency time.Duration
	ReorderPackets int

	// SyncWait is how long a new file waits, from the first frame, for
	// every track to be ready (video: a keyframe) and to have a sender
	// report, before it starts with what it has. Sender reports give the
	// exact audio/video offset; without them tracks are aligned by arrival
	// time. Default 3s.
	SyncWait time.Duration

	// KeyframeRequestInterval throttles the recorder's keyframe requests
	// while a video track waits for one. Default 1s.
	KeyframeRequestInterval time.Duration

	// InterleaveWindow is how long frames of one track wait for the other
	// tracks so that the file is written in time order. Default 500ms.
	InterleaveWindow time.Duration

	// RollOnResolutionChange starts a new file when the video resolution
	// changes. VP8, VP9 and AV1 carry their size in-band and play across a
	// change, so by default the file continues; H.264 files always roll
	// when the parameter sets change, because the container's codec
	// private data describes them.
	RollOnResolutionChange bool

	// QueueSize bounds the packets waiting between the tracks' sinks and
	// the recording's writer. A full queue drops packets (the recorder
	// then waits for a keyframe) rather than slowing forwarding.
	// Default 2048.
	QueueSize int

	// MinFreeBytes is the free space the output directory must have for
	// a recording to start (checked on Linux). Default 1 MiB.
	MinFreeBytes int64

	// MaxPendingBytes bounds the media a recording buffers while it waits
	// to start a file (SyncWait, a keyframe). Default 8 MiB.
	MaxPendingBytes int

	Logger *slog.Logger
}

const defaultNameTemplate = "{room}/{start}_{publisher}_{stream}"

var (
	placeholderRE = regexp.MustCompile(`\{[^{}]*\}`)
	knownVars     = map[string]bool{
		"room": true, "publisher": true, "name": true, "event": true, "stream": true,
		"mediastream": true, "start": true, "date": true, "id": true, "part": true,
	}
)

func (c *Config) setDefaults() error {
	if c.Dir == "" {
		return errors.New("recorder: output directory not set")
	}
	if c.NameTemplate == "" {
		c.NameTemplate = defaultNameTemplate
	}
	if err := validateTemplate(c.NameTemplate); err != nil {
		return err
	}
	if c.MaxFileSize < 0 || c.MaxDuration < 0 {
		return fmt.Errorf("recorder: negative limit (max file size %d, max duration %v)", c.MaxFileSize, c.MaxDuration)
	}
	if c.MaxFileSize > 0 && c.MaxFileSize < 64<<10 {
		return fmt.Errorf("recorder: max file size %d is below 64 KiB", c.MaxFileSize)
	}
	if c.MaxDuration > 0 && c.MaxDuration < time.Second {
		return fmt.Errorf("recorder: max duration %v is below 1s", c.MaxDuration)
	}
	defaults.Positive(&c.FlushInterval, time.Second)
	defaults.Positive(&c.CheckpointInterval, 10*time.Second)
	defaults.Positive(&c.ReorderLatency, 300*time.Millisecond)
	defaults.Positive(&c.ReorderPackets, 512)
	defaults.Positive(&c.SyncWait, 3*time.Second)
	defaults.Positive(&c.KeyframeRequestInterval, time.Second)
	defaults.Positive(&c.InterleaveWindow, 500*time.Millisecond)
	defaults.Positive(&c.QueueSize, 2048)
	defaults.Positive(&c.MaxPendingBytes, 8<<20)
	if c.MinFreeBytes <= 0 {
		c.MinFreeBytes = 1 << 20
	}
	if c.ReorderPackets > 1<<14 {
		return fmt.Errorf("recorder: reorder window of %d packets is above 16384", c.ReorderPackets)
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

// validateTemplate rejects templates that could leave the output directory
// or that use unknown placeholders (most likely typos).
func validateTemplate(t string) error {
	if filepath.IsAbs(t) || strings.HasPrefix(t, "/") {
		return fmt.Errorf("recorder: name template %q must be relative", t)
	}
	for _, part := range strings.Split(t, "/") {
		if part == "" || part == "." || part == ".." {
			return fmt.Errorf("recorder: name template %q has an empty, . or .. path element", t)
		}
	}
	for _, m := range placeholderRE.FindAllString(t, -1) {
		if !knownVars[m[1:len(m)-1]] {
			return fmt.Errorf("recorder: name template %q: unknown placeholder %s", t, m)
		}
	}
	if strings.ContainsAny(placeholderRE.ReplaceAllString(t, ""), "{}\\\x00") {
		return fmt.Errorf("recorder: name template %q has a stray brace, backslash or NUL", t)
	}
	return nil
}

// sanitize makes a value safe as (part of) one path element.
func sanitize(v string) string {
	b := make([]byte, 0, len(v))
	for i := 0; i < len(v) && len(b) < 64; i++ {
		c := v[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
			b = append(b, c)
		default:
			b = append(b, '_')
		}
	}
	s := string(b)
	if strings.Trim(s, ".") == "" {
		// Empty, ".", ".." and friends would name a directory.
		return strings.Repeat("_", max(len(s), 1))
	}
	return s
}

// expandName fills the template for one file; the result is relative to the
// output directory, without extension.
func expandName(tmpl string, vars map[string]string, part int) string {
	out := placeholderRE.ReplaceAllStringFunc(tmpl, func(m string) string {
		k := m[1 : len(m)-1]
		if k == "part" {
			return fmt.Sprint(part)
		}
		return sanitize(vars[k])
	})
	if part > 1 && !strings.Contains(tmpl, "{part}") {
		out += fmt.Sprintf("-part%d", part)
	}
	return out
}
