package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/rtcio-gateway/rtcio-gateway/compose"
	"github.com/rtcio-gateway/rtcio-gateway/recorder"
)

// composeMeeting writes one file of a recorded meeting: its argument is a
// room directory (its latest meeting) or a room manifest.
func composeMeeting(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("rtcio-gateway compose", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: rtcio-gateway compose [flags] DIR/ROOM | MEETING"+recorder.RoomManifestSuffix)
		fs.PrintDefaults()
	}
	out := fs.String("o", "", "output file, .mp4 or .webm (default: the room manifest's name with .mp4)")
	size := fs.String("size", "1280x720", "canvas size WIDTHxHEIGHT")
	fps := fs.Int("fps", 25, "output frame rate")
	ffmpeg := fs.String("ffmpeg", "ffmpeg", "ffmpeg binary")
	quiet := fs.Bool("q", false, "no progress")
	// Flags may follow the path too.
	var paths []string
	for rest := args; ; {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return 0
			}
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		paths = append(paths, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if len(paths) != 1 {
		fs.Usage()
		return 2
	}
	var w, h int
	if _, err := fmt.Sscanf(*size, "%dx%d", &w, &h); err != nil || w < 16 || h < 16 || w > 7680 || h > 4320 {
		fmt.Fprintf(stderr, "--size %q: want WIDTHxHEIGHT between 16x16 and 7680x4320\n", *size)
		return 2
	}
	if *fps < 1 || *fps > 60 {
		fmt.Fprintf(stderr, "--fps %d: want 1 to 60\n", *fps)
		return 2
	}
	m, err := compose.Load(paths[0])
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if *out == "" {
		*out = strings.TrimSuffix(m.Manifest, recorder.RoomManifestSuffix) + ".mp4"
	}
	opts := compose.Options{Output: *out, Width: w, Height: h, FPS: *fps, FFmpeg: *ffmpeg}
	if !*quiet {
		last := -1
		opts.Progress = func(done, total time.Duration) {
			pct := 100
			if total > 0 {
				pct = int(100 * done / total)
			}
			if pct != last {
				last = pct
				fmt.Fprintf(stderr, "\rcomposing %s: %3d%% (%s of %s)", m.Room, pct, done.Round(time.Second), total.Round(time.Second))
			}
		}
	}
	fmt.Fprintf(stderr, "meeting %s: %d streams, %s, from %s\n", m.Room, len(m.Participants), m.Duration.Round(time.Millisecond), filepath.Base(m.Manifest))
	err = compose.Run(ctx, m, opts)
	if !*quiet {
		fmt.Fprintln(stderr)
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprintln(stdout, *out)
	return 0
}
