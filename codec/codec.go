// Package codec is the repository's one home for codec knowledge that the
// media plane and the recorder share: which codec a MIME type names, and
// what an RTP payload or a frame of VP8, VP9, H.264 and AV1 says about
// keyframes. It parses only what those decisions need, reads nothing
// beyond the bytes it is given, and never allocates.
package codec

import "strings"

// MIME types as SDP and pion spell them; matching is case-insensitive.
const (
	MimeTypeVP8  = "video/VP8"
	MimeTypeVP9  = "video/VP9"
	MimeTypeH264 = "video/H264"
	MimeTypeAV1  = "video/AV1"
	MimeTypeOpus = "audio/opus"
)

// Kind is a codec the gateway knows.
type Kind int

// The codecs the gateway knows.
const (
	Unknown Kind = iota
	VP8
	VP9
	AV1
	H264
	Opus
)

// KindOf names the codec of a MIME type ("video/VP8", case-insensitive).
func KindOf(mimeType string) Kind {
	switch {
	case strings.EqualFold(mimeType, MimeTypeVP8):
		return VP8
	case strings.EqualFold(mimeType, MimeTypeVP9):
		return VP9
	case strings.EqualFold(mimeType, MimeTypeAV1):
		return AV1
	case strings.EqualFold(mimeType, MimeTypeH264):
		return H264
	case strings.EqualFold(mimeType, MimeTypeOpus):
		return Opus
	}
	return Unknown
}

// Video reports whether the codec is a video codec.
func (k Kind) Video() bool { return k == VP8 || k == VP9 || k == AV1 || k == H264 }

// String is the codec's name.
func (k Kind) String() string {
	switch k {
	case VP8:
		return "VP8"
	case VP9:
		return "VP9"
	case AV1:
		return "AV1"
	case H264:
		return "H264"
	case Opus:
		return "opus"
	}
	return "unknown"
}

// LEB128 decodes an unsigned LEB128 value of at most 8 bytes (AV1's
// sizes), returning the value and the number of bytes used (0 when the
// input is truncated).
func LEB128(b []byte) (uint64, int) {
	var v uint64
	for i := 0; i < len(b) && i < 8; i++ {
		v |= uint64(b[i]&0x7f) << (7 * i)
		if b[i]&0x80 == 0 {
			return v, i + 1
		}
	}
	return 0, 0
}

// VP8FrameIsKey reports whether a VP8 frame (the bitstream, after any RTP
// payload descriptor) starts with a keyframe's frame tag: P bit clear and
// the start code 9d 01 2a after the 3-byte tag. Checking both rejects
// garbage that merely has P clear.
func VP8FrameIsKey(frame []byte) bool {
	return len(frame) >= 6 && frame[0]&0x01 == 0 && frame[3] == 0x9d && frame[4] == 0x01 && frame[5] == 0x2a
}

// H.264 NAL unit types that matter for keyframes (RFC 6184).
const (
	NALUIDR   = 5
	NALUSPS   = 7
	NALUPPS   = 8
	naluSTAPA = 24
	naluSTAPB = 25
	naluFUA   = 28
	naluFUB   = 29
)

// OBUSequenceHeader is the AV1 OBU type of a sequence header, which every
// keyframe that starts a coded video sequence carries first.
const OBUSequenceHeader = 1
