// Package mediafixture plays the small media files committed under
// internal/testdata/media into pion local tracks, looping them in real time,
// so that tests exercise real VP8, Opus and H.264 RTP without a camera.
package mediafixture

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
	"github.com/pion/webrtc/v4/pkg/media/h264reader"
	"github.com/pion/webrtc/v4/pkg/media/ivfreader"
	"github.com/pion/webrtc/v4/pkg/media/oggreader"
)

// Fixture file names inside Dir().
const (
	VP8        = "vp8.ivf"        // 320x240, 15 fps, keyframe every second, 4 s
	VP8LongGOP = "vp8-gop10s.ivf" // 320x240, 15 fps, one keyframe per 10 s, 10 s
	Opus       = "opus.ogg"       // 440 Hz sine, 48 kHz, 20 ms pages, 5 s
	H264       = "h264.h264"      // Annex-B baseline, 320x240, 15 fps, 4 s
	VP9        = "vp9.ivf"        // libvpx-vp9, with keyframes and inter frames
	AV1        = "av1.ivf"        // libaom, sequence header repeated on keyframes
)

// Dir returns the directory holding the fixture files. It is resolved from
// this source file's location because the files are test data, not embedded
// assets: binaries never need them.
func Dir() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return filepath.Join("internal", "testdata", "media")
	}
	return filepath.Join(filepath.Dir(file), "..", "testdata", "media")
}

// Path returns the full path of one fixture file.
func Path(name string) string { return filepath.Join(Dir(), name) }

// SampleWriter is what the players write to; *webrtc.TrackLocalStaticSample
// implements it.
type SampleWriter interface {
	WriteSample(s media.Sample) error
}

// NewVP8Track returns a VP8 sample track with the given track and stream ids.
func NewVP8Track(trackID, streamID string) (*webrtc.TrackLocalStaticSample, error) {
	t, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8}, trackID, streamID)
	if err != nil {
		return nil, fmt.Errorf("mediafixture: vp8 track: %w", err)
	}
	return t, nil
}

// NewOpusTrack returns an Opus sample track with the given track and stream ids.
func NewOpusTrack(trackID, streamID string) (*webrtc.TrackLocalStaticSample, error) {
	t, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{
		MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2,
	}, trackID, streamID)
	if err != nil {
		return nil, fmt.Errorf("mediafixture: opus track: %w", err)
	}
	return t, nil
}

// NewH264Track returns an H.264 sample track with the given track and stream ids.
func NewH264Track(trackID, streamID string) (*webrtc.TrackLocalStaticSample, error) {
	t, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264}, trackID, streamID)
	if err != nil {
		return nil, fmt.Errorf("mediafixture: h264 track: %w", err)
	}
	return t, nil
}

// pacer sleeps until each sample's due time so that playback runs in real
// time; it is the one place the players wait, and it honours ctx.
type pacer struct {
	next  time.Time
	timer *time.Timer
}

func newPacer() *pacer {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &pacer{next: time.Now(), timer: t}
}

func (p *pacer) wait(ctx context.Context, d time.Duration) error {
	p.next = p.next.Add(d)
	wait := time.Until(p.next)
	if wait <= 0 {
		// Fell behind (slow machine): resynchronise instead of bursting.
		if wait < -time.Second {
			p.next = time.Now()
		}
		return ctx.Err()
	}
	p.timer.Reset(wait)
	select {
	case <-ctx.Done():
		p.timer.Stop()
		return ctx.Err()
	case <-p.timer.C:
		return nil
	}
}

// loop runs play over the file again and again until ctx is done. It returns
// nil when ctx ends and the first real error otherwise.
func loop(ctx context.Context, path string, play func(io.Reader, *pacer) error) error {
	p := newPacer()
	for {
		f, err := os.Open(path)
		if err != nil {
			return fmt.Errorf("mediafixture: open %s: %w", path, err)
		}
		err = play(f, p)
		_ = f.Close()
		if ctx.Err() != nil {
			return nil
		}
		if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("mediafixture: play %s: %w", path, err)
		}
	}
}

// PlayIVF loops an IVF (VP8) file into w in real time until ctx is done.
func PlayIVF(ctx context.Context, path string, w SampleWriter) error {
	return loop(ctx, path, func(r io.Reader, p *pacer) error {
		ivf, hdr, err := ivfreader.NewWith(r)
		if err != nil {
			return fmt.Errorf("ivf header: %w", err)
		}
		if hdr.TimebaseDenominator == 0 {
			return errors.New("ivf header: zero timebase")
		}
		frameDur := time.Duration(float64(time.Second) * float64(hdr.TimebaseNumerator) / float64(hdr.TimebaseDenominator))
		for {
			frame, _, err := ivf.ParseNextFrame()
			if err != nil {
				return err
			}
			if err := w.WriteSample(media.Sample{Data: frame, Duration: frameDur}); err != nil {
				return fmt.Errorf("write sample: %w", err)
			}
			if err := p.wait(ctx, frameDur); err != nil {
				return err
			}
		}
	})
}

// PlayOgg loops an Ogg Opus file into w in real time until ctx is done. The
// fixture holds one 20 ms Opus packet per page, which is what lets a page be
// written as one sample.
func PlayOgg(ctx context.Context, path string, w SampleWriter) error {
	return loop(ctx, path, func(r io.Reader, p *pacer) error {
		ogg, _, err := oggreader.NewWith(r)
		if err != nil {
			return fmt.Errorf("ogg header: %w", err)
		}
		var lastGranule uint64
		for {
			page, hdr, err := ogg.ParseNextPage()
			if err != nil {
				return err
			}
			if len(page) >= 8 && string(page[:8]) == "OpusTags" {
				continue
			}
			samples := hdr.GranulePosition - lastGranule
			lastGranule = hdr.GranulePosition
			if samples == 0 || samples > 48000 {
				samples = 960
			}
			d := time.Duration(samples) * time.Second / 48000
			if err := w.WriteSample(media.Sample{Data: page, Duration: d}); err != nil {
				return fmt.Errorf("write sample: %w", err)
			}
			if err := p.wait(ctx, d); err != nil {
				return err
			}
		}
	})
}

// PlayH264 loops an Annex-B H.264 file into w at fps until ctx is done.
func PlayH264(ctx context.Context, path string, fps int, w SampleWriter) error {
	if fps <= 0 {
		return fmt.Errorf("mediafixture: fps %d must be positive", fps)
	}
	frameDur := time.Second / time.Duration(fps)
	return loop(ctx, path, func(r io.Reader, p *pacer) error {
		h, err := h264reader.NewReader(r)
		if err != nil {
			return fmt.Errorf("h264 reader: %w", err)
		}
		for {
			nal, err := h.NextNAL()
			if err != nil {
				return err
			}
			// Only picture NALs advance the clock; parameter sets ride
			// along with the next picture's timestamp.
			var d time.Duration
			if nal.UnitType == h264reader.NalUnitTypeCodedSliceIdr || nal.UnitType == h264reader.NalUnitTypeCodedSliceNonIdr {
				d = frameDur
			}
			if err := w.WriteSample(media.Sample{Data: nal.Data, Duration: d}); err != nil {
				return fmt.Errorf("write sample: %w", err)
			}
			if d > 0 {
				if err := p.wait(ctx, d); err != nil {
					return err
				}
			}
		}
	})
}
