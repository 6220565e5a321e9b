package codec

// Detector returns the keyframe detector of a codec's RTP payloads, or nil
// for codecs without keyframes it knows (audio, unknown video codecs).
func Detector(k Kind) func(payload []byte) bool {
	switch k {
	case VP8:
		return IsVP8Keyframe
	case VP9:
		return IsVP9Keyframe
	case H264:
		return IsH264Keyframe
	case AV1:
		return IsAV1Keyframe
	}
	return nil
}

// IsKeyframe reports whether payload, an RTP payload of the codec named by
// mimeType, begins a keyframe. It returns false for codecs it does not know.
func IsKeyframe(mimeType string, payload []byte) bool {
	if f := Detector(KindOf(mimeType)); f != nil {
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
	if i > len(payload) {
		return false
	}
	return VP8FrameIsKey(payload[i:])
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

// IsH264Keyframe reports whether an H.264 RTP payload (RFC 6184) carries a
// sequence parameter set or the start of an IDR slice: either begins a frame
// a decoder can start from.
func IsH264Keyframe(payload []byte) bool {
	if len(payload) < 1 {
		return false
	}
	switch t := payload[0] & 0x1f; t {
	case NALUIDR, NALUSPS:
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
			if nt := payload[i] & 0x1f; nt == NALUIDR || nt == NALUSPS {
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
		return nt == NALUIDR || nt == NALUSPS
	default:
		return false
	}
}

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
		_, n := LEB128(payload[i:])
		if n == 0 {
			return false
		}
		i += n
	}
	if i >= len(payload) {
		return false
	}
	return (payload[i]>>3)&0x0f == OBUSequenceHeader
}
