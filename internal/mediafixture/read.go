package mediafixture

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4/pkg/media/ivfreader"
)

// ReadIVF returns the frames of an IVF file (VP8, VP9, AV1), in order.
func ReadIVF(path string) ([][]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("mediafixture: %w", err)
	}
	defer f.Close()
	r, _, err := ivfreader.NewWith(f)
	if err != nil {
		return nil, fmt.Errorf("mediafixture: %s: %w", path, err)
	}
	var frames [][]byte
	for {
		b, _, err := r.ParseNextFrame()
		if errors.Is(err, io.EOF) {
			return frames, nil
		}
		if err != nil {
			return nil, fmt.Errorf("mediafixture: %s: %w", path, err)
		}
		frames = append(frames, b)
	}
}

// ReadAnnexB returns the access units of an Annex-B H.264 file: each is
// the NAL units up to and including one slice (types 1 and 5), every one
// prefixed with a 4-byte start code.
func ReadAnnexB(path string) ([][]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("mediafixture: %w", err)
	}
	var units [][]byte
	var cur []byte
	for _, nal := range bytes.Split(b, []byte{0, 0, 1}) {
		nal = bytes.TrimRight(nal, "\x00")
		if len(nal) == 0 {
			continue
		}
		cur = append(cur, 0, 0, 0, 1)
		cur = append(cur, nal...)
		if t := nal[0] & 0x1f; t == 1 || t == 5 {
			units = append(units, cur)
			cur = nil
		}
	}
	return units, nil
}

// Packetize turns frames into RTP packets with the payloader, one slice of
// packets per frame, samples RTP ticks apart.
func Packetize(payloader rtp.Payloader, frames [][]byte, ssrc uint32, pt uint8, samples uint32) [][]*rtp.Packet {
	pz := rtp.NewPacketizer(1200, pt, ssrc, payloader, rtp.NewRandomSequencer(), 90000)
	out := make([][]*rtp.Packet, len(frames))
	for i, f := range frames {
		out[i] = pz.Packetize(f, samples)
	}
	return out
}

// AnnexBHasIDR reports whether an Annex-B access unit holds an IDR slice.
func AnnexBHasIDR(unit []byte) bool {
	for _, nal := range bytes.Split(unit, []byte{0, 0, 1}) {
		nal = bytes.TrimRight(nal, "\x00")
		if len(nal) > 0 && nal[0]&0x1f == 5 {
			return true
		}
	}
	return false
}
