package compose

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Options shape the output file.
type Options struct {
	// Output is the file to write; its extension picks the format: ".mp4"
	// (H.264 and AAC) or ".webm" (VP8 and Opus).
	Output string
	// Width and Height of the canvas (default 1280x720); FPS its frame
	// rate (default 25).
	Width, Height, FPS int
	// FFmpeg is the ffmpeg binary (default "ffmpeg" on PATH).
	FFmpeg string
	// Progress, when set, is called as ffmpeg advances, with how much of
	// the meeting is written.
	Progress func(done, total time.Duration)
}

func (o *Options) setDefaults() {
	if o.Width <= 0 || o.Height <= 0 {
		o.Width, o.Height = 1280, 720
	}
	o.Width, o.Height = even(o.Width), even(o.Height)
	if o.FPS <= 0 {
		o.FPS = 25
	}
	if o.FFmpeg == "" {
		o.FFmpeg = "ffmpeg"
	}
}

// ErrNoFFmpeg is returned when the ffmpeg binary cannot be found.
var ErrNoFFmpeg = errors.New("compose: ffmpeg not found (install it, e.g. apt-get install ffmpeg, or name it with --ffmpeg)")

// Run writes the meeting into one file with ffmpeg.
func Run(ctx context.Context, m *Meeting, o Options) error {
	o.setDefaults()
	bin, err := exec.LookPath(o.FFmpeg)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrNoFFmpeg, err)
	}
	args, err := Args(m, o)
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return fmt.Errorf("compose: %w", err)
	}
	var stderr strings.Builder
	cmd.Stderr = &limitedWriter{w: &stderr, left: 64 << 10}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("compose: start ffmpeg: %w", err)
	}
	readProgress(stdout, m.Duration, o.Progress)
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("compose: ffmpeg: %w\n%s", err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// Args returns ffmpeg's command line (without the program name) for the
// meeting.
func Args(m *Meeting, o Options) ([]string, error) {
	o.setDefaults()
	var codecs []string
	switch strings.ToLower(filepath.Ext(o.Output)) {
	case ".mp4", ".m4v", ".mov":
		codecs = []string{"-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p",
			"-c:a", "aac", "-b:a", "128k", "-movflags", "+faststart"}
	case ".webm":
		codecs = []string{"-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "1500k",
			"-c:a", "libopus", "-b:a", "96k"}
	default:
		return nil, fmt.Errorf("compose: output %q: use a .mp4 or .webm name", o.Output)
	}
	args := []string{"-hide_banner", "-nostdin", "-y", "-loglevel", "error", "-progress", "pipe:1", "-nostats"}
	// One input per file, shifted to its place on the meeting's clock.
	input := make(map[[2]int]int)
	n := 0
	for pi, p := range m.Participants {
		for fi, f := range p.Files {
			args = append(args, "-itsoffset", seconds(f.Offset), "-i", f.Path)
			input[[2]int{pi, fi}] = n
			n++
		}
	}
	graph := filterGraph(m, o, input)
	args = append(args, "-filter_complex", graph, "-map", "[vout]", "-map", "[aout]",
		"-t", seconds(m.Duration), "-r", strconv.Itoa(o.FPS))
	args = append(args, codecs...)
	return append(args, o.Output), nil
}

// filterGraph draws every segment's tiles over a black canvas and mixes
// every file's audio over silence as long as the meeting.
func filterGraph(m *Meeting, o Options, input map[[2]int]int) string {
	var g []string
	dur := seconds(m.Duration)
	g = append(g, fmt.Sprintf("color=c=black:s=%dx%d:r=%d:d=%s[canvas0]", o.Width, o.Height, o.FPS, dur))
	// How many tiles each input's video feeds, to split it that many ways.
	uses := make(map[int][]string)
	type draw struct {
		label string
		seg   Segment
		cell  Rect
	}
	var draws []draw
	for _, seg := range Plan(m, o.Width, o.Height) {
		for _, t := range seg.Tiles {
			in := input[[2]int{t.Participant, t.File}]
			label := fmt.Sprintf("v%d_%d", in, len(uses[in]))
			uses[in] = append(uses[in], label)
			draws = append(draws, draw{label: label, seg: seg, cell: t.Cell})
		}
	}
	for in := 0; in < len(input); in++ {
		labels := uses[in]
		switch len(labels) {
		case 0:
		case 1:
			g = append(g, fmt.Sprintf("[%d:v]null[%s]", in, labels[0]))
		default:
			g = append(g, fmt.Sprintf("[%d:v]split=%d[%s]", in, len(labels), strings.Join(labels, "][")))
		}
	}
	canvas := "canvas0"
	for i, d := range draws {
		c := d.cell
		g = append(g, fmt.Sprintf("[%s]scale=%d:%d:force_original_aspect_ratio=decrease,pad=%d:%d:(ow-iw)/2:(oh-ih)/2,setsar=1[t%d]",
			d.label, c.W, c.H, c.W, c.H, i))
		next := fmt.Sprintf("canvas%d", i+1)
		g = append(g, fmt.Sprintf("[%s][t%d]overlay=x=%d:y=%d:eof_action=pass:enable='gte(t,%s)*lt(t,%s)'[%s]",
			canvas, i, c.X, c.Y, seconds(d.seg.From), seconds(d.seg.To), next))
		canvas = next
	}
	g = append(g, fmt.Sprintf("[%s]format=yuv420p[vout]", canvas))

	// Audio: each file's samples from its offset (aresample pads the start
	// with silence), summed without normalisation so a lone speaker keeps
	// their level; the silent first input sets the length.
	mix := []string{"[silence]"}
	g = append(g, fmt.Sprintf("anullsrc=r=48000:cl=stereo,atrim=0:%s[silence]", dur))
	for pi, p := range m.Participants {
		for fi, f := range p.Files {
			if !f.Audio {
				continue
			}
			in := input[[2]int{pi, fi}]
			g = append(g, fmt.Sprintf("[%d:a]aresample=48000:async=1:first_pts=0,aformat=sample_rates=48000:channel_layouts=stereo[a%d]", in, in))
			mix = append(mix, fmt.Sprintf("[a%d]", in))
		}
	}
	g = append(g, fmt.Sprintf("%samix=inputs=%d:duration=first:normalize=0[aout]", strings.Join(mix, ""), len(mix)))
	return strings.Join(g, ";")
}

func seconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', 3, 64)
}

// readProgress follows ffmpeg's -progress output (key=value lines).
func readProgress(r io.Reader, total time.Duration, f func(done, total time.Duration)) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		// out_time_us is in microseconds (out_time_ms, despite its name,
		// too); "N/A" before the first frame.
		if !ok || k != "out_time_us" || f == nil {
			continue
		}
		us, err := strconv.ParseInt(v, 10, 64)
		if err != nil || us < 0 {
			continue
		}
		f(min(time.Duration(us)*time.Microsecond, total), total)
	}
	_, _ = io.Copy(io.Discard, r)
}

// limitedWriter keeps the first bytes of ffmpeg's error output, enough to
// explain a failure without holding a runaway log in memory.
type limitedWriter struct {
	w    io.Writer
	left int
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	n := len(p)
	if l.left > 0 {
		k := min(n, l.left)
		_, _ = l.w.Write(p[:k])
		l.left -= k
	}
	return n, nil
}
