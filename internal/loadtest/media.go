package loadtest

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4/pkg/media/ivfreader"
	"github.com/pion/webrtc/v4/pkg/media/oggreader"
)

// Kind is a track's media kind.
type Kind string

// Track kinds.
const (
	Video Kind = "video"
	Audio Kind = "audio"
)

// Media chooses what publishers send.
type Media struct {
	// Source is "synthetic" (generated packets at the rates below) or
	// "fixture" (the repository's VP8 and Opus files, looped).
	Source string `json:"source"`
	// VideoPPS is the packet rate of one synthetic video track.
	VideoPPS int `json:"videoPps"`
	// VideoBitrate (bit/s) sets the synthetic video payload size:
	// bitrate / 8 / VideoPPS bytes per packet (at least a header's worth).
	VideoBitrate int `json:"videoBitrate"`
	// FrameRate of synthetic video; a frame's packets leave in one burst.
	FrameRate int `json:"frameRate"`
	// KeyframeInterval of synthetic video.
	KeyframeInterval time.Duration `json:"keyframeInterval"`
	// AudioBitrate (bit/s) of synthetic audio.
	AudioBitrate int `json:"audioBitrate"`
	// AudioPPS is the packet rate of synthetic audio: 50 (20 ms packets,
	// what browsers send) unless set; lower rates keep a correctness test
	// of a big meeting cheap.
	AudioPPS int `json:"audioPps"`
	// FixtureDir holds vp8.ivf and opus.ogg for Source "fixture".
	FixtureDir string `json:"-"`
}

// frame is the payloads of one media frame, without trailers.
type frame struct {
	payloads [][]byte
	key      bool
	dur      time.Duration
	ticks    uint32 // RTP timestamp advance after this frame
}

// source yields frames forever. A source is used by one goroutine and may
// reuse the returned slices at the next call.
type source interface {
	next() frame
	// keyframe makes the next frame a keyframe (where the source has one
	// to give), as an encoder does on a PLI or FIR.
	keyframe()
}

// maxPayload leaves room for the RTP header, header extensions, SRTP's tag
// and the trailer inside a 1200-byte packet, the size WebRTC stacks assume.
const maxPayload = 1100 - TrailerSize

// syntheticVP8 generates VP8 RTP payloads with valid descriptors and frame
// tags: the first packet of every frame has S=1, and a keyframe's first
// packet carries the keyframe start code, so keyframe detection and caches in
// the forwarder behave as with a real encoder. The rest is filler.
type syntheticVP8 struct {
	perFrame  int
	size      int
	keyEvery  int
	frameDur  time.Duration
	ticks     uint32
	n         int
	pictureID uint16
	forceKey  bool
	bufs      [][]byte
}

func (s *syntheticVP8) keyframe() { s.forceKey = true }

func newSyntheticVP8(m Media) (*syntheticVP8, error) {
	if m.VideoPPS <= 0 || m.FrameRate <= 0 {
		return nil, fmt.Errorf("loadtest: video packet rate %d and frame rate %d must be positive", m.VideoPPS, m.FrameRate)
	}
	perFrame := max(1, m.VideoPPS/m.FrameRate)
	size := m.VideoBitrate / 8 / max(1, m.VideoPPS)
	size = min(max(size-TrailerSize, 16), maxPayload)
	keyEvery := max(1, int(m.KeyframeInterval*time.Duration(m.FrameRate)/time.Second))
	s := &syntheticVP8{
		perFrame: perFrame,
		size:     size,
		keyEvery: keyEvery,
		frameDur: time.Second / time.Duration(m.FrameRate),
		ticks:    uint32(90000 / m.FrameRate),
	}
	s.bufs = make([][]byte, perFrame)
	for i := range s.bufs {
		b := make([]byte, size)
		for j := range b {
			b[j] = byte(j)
		}
		s.bufs[i] = b
	}
	return s, nil
}

func (s *syntheticVP8) next() frame {
	key := s.n%s.keyEvery == 0 || s.forceKey
	if key {
		// The periodic keyframes count from the latest one.
		s.n = 0
		s.forceKey = false
	}
	s.n++
	s.pictureID = (s.pictureID + 1) & 0x7fff
	for i, b := range s.bufs {
		// Descriptor: X=1, S on the first packet, partition 0; I=1 with a
		// 15-bit picture id.
		b[0] = 0x80
		if i == 0 {
			b[0] |= 0x10
		}
		b[1] = 0x80
		b[2] = 0x80 | byte(s.pictureID>>8)
		b[3] = byte(s.pictureID)
		if i == 0 {
			// Frame tag: P bit (bit 0; 0 = keyframe), version 0,
			// show_frame (bit 4),
			// then for a keyframe the start code and 320x240.
			tag := []byte{0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00}
			if !key {
				tag = []byte{0x11, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00}
			}
			copy(b[4:], tag)
		}
	}
	return frame{payloads: s.bufs, key: key, dur: s.frameDur, ticks: s.ticks}
}

// syntheticOpus generates 20 ms Opus packets of a fixed size (a valid TOC
// byte, then filler).
type syntheticOpus struct {
	buf [][]byte
	dur time.Duration
}

func newSyntheticOpus(m Media) *syntheticOpus {
	pps := m.AudioPPS
	if pps <= 0 {
		pps = 50
	}
	size := min(max(m.AudioBitrate/8/pps-TrailerSize, 8), maxPayload)
	b := make([]byte, size)
	b[0] = 0xfc // config 31 (CELT fullband 20 ms), stereo, one frame
	for i := 1; i < len(b); i++ {
		b[i] = byte(i)
	}
	return &syntheticOpus{buf: [][]byte{b}, dur: time.Second / time.Duration(pps)}
}

func (s *syntheticOpus) keyframe() {}

func (s *syntheticOpus) next() frame {
	return frame{payloads: s.buf, dur: s.dur, ticks: uint32(s.dur * 48000 / time.Second)}
}

// loopFrames replays frames loaded from a fixture file.
type loopFrames struct {
	frames []frame
	i      int
}

// keyframe skips to the next keyframe of the file (decoders would not mind
// in a load test; nothing decodes).
func (l *loopFrames) keyframe() {
	for k := range l.frames {
		if i := (l.i + k) % len(l.frames); l.frames[i].key {
			l.i = i
			return
		}
	}
}

func (l *loopFrames) next() frame {
	f := l.frames[l.i]
	l.i = (l.i + 1) % len(l.frames)
	return f
}

// loadIVF packetizes every frame of a VP8 IVF file once, so that playback
// costs the load generator nothing but the writes.
func loadIVF(path string) (*loopFrames, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("loadtest: open fixture: %w", err)
	}
	defer f.Close()
	r, hdr, err := ivfreader.NewWith(f)
	if err != nil {
		return nil, fmt.Errorf("loadtest: ivf header of %s: %w", path, err)
	}
	if hdr.TimebaseDenominator == 0 || hdr.TimebaseNumerator == 0 {
		return nil, fmt.Errorf("loadtest: %s: zero timebase", path)
	}
	dur := time.Duration(float64(time.Second) * float64(hdr.TimebaseNumerator) / float64(hdr.TimebaseDenominator))
	pay := &codecs.VP8Payloader{EnablePictureID: true}
	var out loopFrames
	for {
		data, _, err := r.ParseNextFrame()
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("loadtest: %s: %w", path, err)
		}
		if len(data) == 0 {
			continue
		}
		out.frames = append(out.frames, frame{
			payloads: pay.Payload(maxPayload, data),
			key:      data[0]&0x01 == 0,
			dur:      dur,
			ticks:    uint32(dur * 90000 / time.Second),
		})
	}
	if len(out.frames) == 0 {
		return nil, fmt.Errorf("loadtest: %s holds no frames", path)
	}
	return &out, nil
}

// loadOgg reads every Opus packet of an Ogg file (one packet per page).
func loadOgg(path string) (*loopFrames, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("loadtest: open fixture: %w", err)
	}
	defer f.Close()
	r, _, err := oggreader.NewWith(f)
	if err != nil {
		return nil, fmt.Errorf("loadtest: ogg header of %s: %w", path, err)
	}
	var out loopFrames
	var last uint64
	for {
		page, hdr, err := r.ParseNextPage()
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("loadtest: %s: %w", path, err)
		}
		if len(page) == 0 || len(page) >= 8 && string(page[:8]) == "OpusTags" {
			continue
		}
		samples := hdr.GranulePosition - last
		last = hdr.GranulePosition
		if samples == 0 || samples > 48000 {
			samples = 960
		}
		out.frames = append(out.frames, frame{
			payloads: [][]byte{page[:min(len(page), maxPayload)]},
			dur:      time.Duration(samples) * time.Second / 48000,
			ticks:    uint32(samples),
		})
	}
	if len(out.frames) == 0 {
		return nil, fmt.Errorf("loadtest: %s holds no packets", path)
	}
	return &out, nil
}

// newSource builds the source of one track.
func newSource(m Media, kind Kind) (source, error) {
	switch m.Source {
	case "", "synthetic":
		if kind == Video {
			return newSyntheticVP8(m)
		}
		return newSyntheticOpus(m), nil
	case "fixture":
		if kind == Video {
			return loadIVF(filepath.Join(m.FixtureDir, "vp8.ivf"))
		}
		return loadOgg(filepath.Join(m.FixtureDir, "opus.ogg"))
	}
	return nil, fmt.Errorf("loadtest: unknown media source %q (want synthetic or fixture)", m.Source)
}
