package forwarding

import "strings"

// Mime types the keyframe detectors understand. Matching is case-insensitive,
// because SDP and pion spell codec names in either case.
const (
	MimeTypeVP8  = "video/VP8"
	MimeTypeVP9  = "video/VP9"
	MimeTypeH264 = "video/H264"
	MimeTypeAV1  = "video/AV1"
	MimeTypeOpus = "audio/opus"
)

// keyframeFunc reports whether an RTP payload carries the start (or a part
// that is only found in) a keyframe.
type keyframeFunc func(payload []byte) bool

// keyframeDetector returns the detector for a mime type, or nil when the codec
// has no keyframes we know of (audio, unknown video codecs).
func keyframeDetector(mimeType string) keyframeFunc {
	switch {
	case strings.EqualFold(mimeType, MimeTypeVP8):
		return IsVP8Keyframe
	case strings.EqualFold(mimeType, MimeTypeVP9):
		return IsVP9Keyframe
	case strings.EqualFold(mimeType, MimeTypeH264):
		return IsH264Keyframe
	case strings.EqualFold(mimeType, MimeTypeAV1):
		return IsAV1Keyframe
	default:
		return nil
	}
}

// IsKeyframe reports whether payload, an RTP payload of the given codec,
// belongs to a keyframe. It returns false for codecs it does not know.
func IsKeyframe(mimeType string, payload []byte) bool {
	if f := keyframeDetector(mimeType); f != nil {
		return f(payload)
	}
	return false
}

// IsVP8Keyframe reports whether a VP8 RTP payload (RFC 7741) is the first
// packet of a keyframe. Only the first packet of a frame carries the frame
// tag, so later packets of the same keyframe report false.
func IsVP8Keyframe(payload []byte) bool {
	if len(payload) < 1 {
		return false
	}
	b0 := payload[0]
	// S (start of partition) must be set and the partition index must be 0:
	// only there does the VP8 frame header follow the descriptor.
	if b0&0x10 == 0 || b0&0x07 != 0 {
		return false
	}
	i := 1
	if b0&0x80 != 0 { // X: extension byte follows
		if len(payload) <= i {
			return false
		}
		x := payload[i]
		i++
		if x&0x80 != 0 { // I: PictureID, 7 or 15 bits (M flag)
			if len(payload) <= i {
				return false
			}
			if payload[i]&0x80 != 0 {
				i += 2
			} else {
				i++
			}
		}
		if x&0x40 != 0 { // L: TL0PICIDX
			i++
		}
		if x&0x30 != 0 { // T or K: TID/Y/KEYIDX share one byte
			i++
		}
	}
	// The frame tag is 3 bytes; a keyframe adds the 3-byte start code
	// 9d 01 2a. Checking both rejects garbage that merely has P == 0.
	if len(payload) < i+6 {
		return false
	}
	if payload[i]&0x01 != 0 { // P: 0 means keyframe
		return false
	}
	return payload[i+3] == 0x9d && payload[i+4] == 0x01 && payload[i+5] == 0x2a
}

// IsVP9Keyframe reports whether a VP9 RTP payload (RFC 9628 descriptor) is the
// first packet of a keyframe of the base spatial layer.
func IsVP9Keyframe(payload []byte) bool {
	if len(payload) < 1 {
		return false
	}
	b0 := payload[0]
	const (
		flagI = 0x80 // picture id present
		flagP = 0x40 // inter-picture predicted
		flagL = 0x20 // layer indices present
		flagF = 0x10 // flexible mode
		flagB = 0x08 // start of frame
	)
	if b0&flagP != 0 || b0&flagB == 0 {
		return false
	}
	i := 1
	if b0&flagI != 0 {
		if len(payload) <= i {
			return false
		}
		if payload[i]&0x80 != 0 {
			i += 2
		} else {
			i++
		}
	}
	if b0&flagL != 0 {
		if len(payload) <= i {
			return false
		}
		// Upper spatial layers of a keyframe are not independently
		// decodable starts; only spatial layer 0 begins a keyframe.
		if sid := (payload[i] >> 1) & 0x07; sid != 0 {
			return false
		}
		i++
		if b0&flagF == 0 {
			i++ // TL0PICIDX
		}
	}
	// There must be a VP9 frame after the descriptor.
	return len(payload) > i
}

// H.264 NAL unit types that matter for keyframes (RFC 6184).
const (
	naluIDR   = 5
	naluSPS   = 7
	naluSTAPA = 24
	naluSTAPB = 25
	naluFUA   = 28
	naluFUB   = 29
)

// IsH264Keyframe reports whether an H.264 RTP payload (RFC 6184) carries a
// sequence parameter set or the start of an IDR slice: either begins a frame
// a decoder can start from.
func IsH264Keyframe(payload []byte) bool {
	if len(payload) < 1 {
		return false
	}
	switch t := payload[0] & 0x1f; t {
	case naluIDR, naluSPS:
		return true
	case naluSTAPA, naluSTAPB:
		i := 1
		if t == naluSTAPB {
			i += 2 // decoding order number
		}
		for i+2 < len(payload) {
			size := int(payload[i])<<8 | int(payload[i+1])
			i += 2
			if size == 0 || i+size > len(payload) {
				return false
			}
			if nt := payload[i] & 0x1f; nt == naluIDR || nt == naluSPS {
				return true
			}
			i += size
		}
		return false
	case naluFUA, naluFUB:
		if len(payload) < 2 {
			return false
		}
		fu := payload[1]
		if fu&0x80 == 0 { // only the start fragment marks the frame start
			return false
		}
		nt := fu & 0x1f
		return nt == naluIDR || nt == naluSPS
	default:
		return false
	}
}

// AV1 OBU type of a sequence header, which every keyframe that starts a coded
// video sequence carries first.
const obuSequenceHeader = 1

// IsAV1Keyframe reports whether an AV1 RTP payload starts a new coded video
// sequence: the aggregation header's N bit, or a sequence header as the first
// OBU of a packet that does not continue a fragment.
func IsAV1Keyframe(payload []byte) bool {
	if len(payload) < 2 {
		return false
	}
	agg := payload[0]
	if agg&0x08 != 0 { // N: first packet of a coded video sequence
		return true
	}
	if agg&0x80 != 0 { // Z: first element continues an OBU fragment
		return false
	}
	i := 1
	if w := (agg >> 4) & 0x03; w != 1 {
		// With W != 1 the first element is preceded by its leb128 length.
		_, n := leb128(payload[i:])
		if n == 0 {
			return false
		}
		i += n
	}
	if i >= len(payload) {
		return false
	}
	return (payload[i]>>3)&0x0f == obuSequenceHeader
}

// leb128 decodes an unsigned LEB128 value of at most 8 bytes, returning the
// value and the number of bytes used (0 when the input is truncated).
func leb128(b []byte) (uint64, int) {
	var v uint64
	for i := 0; i < len(b) && i < 8; i++ {
		v |= uint64(b[i]&0x7f) << (7 * i)
		if b[i]&0x80 == 0 {
			return v, i + 1
		}
	}
	return 0, 0
}
