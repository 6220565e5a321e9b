package recorder

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/pion/rtp/codecs"

	"github.com/rtcio-gateway/rtcio-gateway/codec"
)

// inWebM reports whether WebM may hold the codec; anything else needs
// Matroska.
func inWebM(k codec.Kind) bool { return k != codec.H264 }

func matroskaID(k codec.Kind) string {
	switch k {
	case codec.VP8:
		return "V_VP8"
	case codec.VP9:
		return "V_VP9"
	case codec.AV1:
		return "V_AV1"
	case codec.H264:
		return "V_MPEG4/ISO/AVC"
	case codec.Opus:
		return "A_OPUS"
	}
	return ""
}

// frameInfo is what the recorder learns from a frame's bitstream.
type frameInfo struct {
	keyframe      bool
	width, height int
	// config is the codec private data this keyframe implies (H.264 avcC,
	// AV1 av1C); nil when the codec has none or the frame lacks it.
	config []byte
}

var errBadFrame = errors.New("undecodable frame")

// depacketize joins the RTP payloads of one complete frame into the frame
// the container stores. Depacketizers keep state across packets (fragmented
// NAL units and OBUs), so each frame gets fresh ones: junk left by a hostile
// frame never leaks into the next.
func depacketize(k codec.Kind, payloads [][]byte) ([]byte, error) {
	var d interface {
		Unmarshal([]byte) ([]byte, error)
	}
	switch k {
	case codec.VP8:
		d = &codecs.VP8Packet{}
	case codec.VP9:
		d = &codecs.VP9Packet{}
	case codec.AV1:
		d = &codecs.AV1Depacketizer{}
	case codec.H264:
		d = &codecs.H264Packet{IsAVC: true}
	case codec.Opus:
		d = &codecs.OpusPacket{}
	default:
		return nil, fmt.Errorf("%w: unknown codec", errBadFrame)
	}
	var out []byte
	for _, p := range payloads {
		b, err := d.Unmarshal(p)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", errBadFrame, err)
		}
		out = append(out, b...)
	}
	if k == codec.AV1 {
		out = stripTemporalDelimiters(out)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: empty", errBadFrame)
	}
	return out, nil
}

// isPartitionHead reports whether an RTP payload may start a frame.
func isPartitionHead(k codec.Kind, payload []byte) bool {
	switch k {
	case codec.VP8:
		return (&codecs.VP8Packet{}).IsPartitionHead(payload)
	case codec.VP9:
		return (&codecs.VP9Packet{}).IsPartitionHead(payload)
	case codec.AV1:
		return (&codecs.AV1Depacketizer{}).IsPartitionHead(payload)
	case codec.H264:
		return (&codecs.H264Packet{}).IsPartitionHead(payload)
	}
	return len(payload) > 0
}

// inspect parses a frame for keyframe, size and codec configuration.
func inspect(k codec.Kind, frame []byte) frameInfo {
	switch k {
	case codec.VP8:
		return inspectVP8(frame)
	case codec.VP9:
		return inspectVP9(frame)
	case codec.AV1:
		return inspectAV1(frame)
	case codec.H264:
		return inspectH264(frame)
	}
	return frameInfo{keyframe: true}
}

func inspectVP8(f []byte) frameInfo {
	// RFC 6386 9.1: a keyframe's 3-byte tag has P=0, then the start code
	// 9d 01 2a and two 14-bit sizes.
	if len(f) < 10 || !codec.VP8FrameIsKey(f) {
		return frameInfo{}
	}
	return frameInfo{
		keyframe: true,
		width:    int(binary.LittleEndian.Uint16(f[6:]) & 0x3fff),
		height:   int(binary.LittleEndian.Uint16(f[8:]) & 0x3fff),
	}
}

func inspectVP9(f []byte) frameInfo {
	// VP9 bitstream spec 6.2, uncompressed_header up to frame_size().
	r := &bitReader{b: f}
	if r.bits(2) != 2 {
		return frameInfo{}
	}
	profile := r.bit() | r.bit()<<1
	if profile == 3 {
		r.skip(1)
	}
	if r.bit() == 1 { // show_existing_frame
		return frameInfo{}
	}
	if r.bit() != 0 { // frame_type: 0 is KEY_FRAME
		return frameInfo{}
	}
	r.skip(2) // show_frame, error_resilient_mode
	if r.bits(24) != 0x498342 {
		return frameInfo{}
	}
	if profile >= 2 {
		r.skip(1) // ten_or_twelve_bit
	}
	if r.bits(3) != 7 { // color_space != CS_RGB
		r.skip(1) // color_range
		if profile == 1 || profile == 3 {
			r.skip(3)
		}
	} else if profile == 1 || profile == 3 {
		r.skip(1)
	}
	w := int(r.bits(16)) + 1
	h := int(r.bits(16)) + 1
	if r.bad {
		return frameInfo{}
	}
	return frameInfo{keyframe: true, width: w, height: h}
}

// avcNALs splits an AVC (4-byte length prefixed) frame into NAL units.
func avcNALs(f []byte) [][]byte {
	var nals [][]byte
	for len(f) >= 4 {
		n := int(binary.BigEndian.Uint32(f))
		if n <= 0 || n > len(f)-4 {
			break
		}
		nals = append(nals, f[4:4+n])
		f = f[4+n:]
	}
	return nals
}

func inspectH264(f []byte) frameInfo {
	var info frameInfo
	var sps, pps []byte
	for _, nal := range avcNALs(f) {
		switch nal[0] & 0x1f {
		case 5:
			info.keyframe = true
		case 7:
			if sps == nil {
				sps = nal
			}
		case 8:
			if pps == nil {
				pps = nal
			}
		}
	}
	if !info.keyframe || sps == nil || pps == nil {
		return frameInfo{keyframe: info.keyframe}
	}
	w, h, ok := parseSPS(sps)
	if !ok || len(sps) < 4 || len(sps) > 0xffff || len(pps) > 0xffff {
		return frameInfo{keyframe: true}
	}
	info.width, info.height = w, h
	// ISO/IEC 14496-15 AVCDecoderConfigurationRecord, one SPS and one PPS,
	// 4-byte NAL lengths.
	c := []byte{1, sps[1], sps[2], sps[3], 0xff, 0xe1}
	c = binary.BigEndian.AppendUint16(c, uint16(len(sps)))
	c = append(c, sps...)
	c = append(c, 1)
	c = binary.BigEndian.AppendUint16(c, uint16(len(pps)))
	info.config = append(c, pps...)
	return info
}

// parseSPS returns the picture size of an H.264 sequence parameter set
// (ITU-T H.264 7.3.2.1.1).
func parseSPS(nal []byte) (w, h int, ok bool) {
	r := &bitReader{b: unescapeRBSP(nal[1:])}
	profile := r.bits(8)
	r.skip(16) // constraint flags, level
	r.ue()     // seq_parameter_set_id
	chroma := uint32(1)
	switch profile {
	case 100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135:
		chroma = r.ue()
		if chroma > 3 {
			return 0, 0, false
		}
		if chroma == 3 {
			r.skip(1) // separate_colour_plane_flag
		}
		r.ue()            // bit_depth_luma_minus8
		r.ue()            // bit_depth_chroma_minus8
		r.skip(1)         // qpprime_y_zero_transform_bypass_flag
		if r.bit() == 1 { // seq_scaling_matrix_present_flag
			lists := 8
			if chroma == 3 {
				lists = 12
			}
			for i := range lists {
				if r.bit() == 1 {
					size := 16
					if i >= 6 {
						size = 64
					}
					last, next := int32(8), int32(8)
					for range size {
						if next != 0 {
							next = (last + r.se() + 256) % 256
						}
						if next != 0 {
							last = next
						}
					}
				}
			}
		}
	}
	r.ue()          // log2_max_frame_num_minus4
	switch r.ue() { // pic_order_cnt_type
	case 0:
		r.ue()
	case 1:
		r.skip(1)
		r.se()
		r.se()
		n := r.ue()
		if n > 255 {
			return 0, 0, false
		}
		for range n {
			r.se()
		}
	}
	r.ue()    // max_num_ref_frames
	r.skip(1) // gaps_in_frame_num_value_allowed_flag
	wMbs := int(r.ue()) + 1
	hMap := int(r.ue()) + 1
	frameMbsOnly := int(r.bit())
	if frameMbsOnly == 0 {
		r.skip(1)
	}
	r.skip(1) // direct_8x8_inference_flag
	var cl, cr, ct, cb int
	if r.bit() == 1 {
		cl, cr, ct, cb = int(r.ue()), int(r.ue()), int(r.ue()), int(r.ue())
	}
	if r.bad {
		return 0, 0, false
	}
	subW, subH := 2, 2
	switch chroma {
	case 0, 3:
		subW, subH = 1, 1
	case 2:
		subH = 1
	}
	w = wMbs*16 - (cl+cr)*subW
	h = (2-frameMbsOnly)*hMap*16 - (ct+cb)*subH*(2-frameMbsOnly)
	if w <= 0 || h <= 0 || w > 16384 || h > 16384 {
		return 0, 0, false
	}
	return w, h, true
}

// AV1 OBU types (AV1 spec 6.2.2).
const (
	obuSequenceHeader    = 1
	obuTemporalDelimiter = 2
)

// forEachOBU calls f with the type and the whole OBU (header included) of a
// low-overhead bitstream whose OBUs all carry a size field, as the
// depacketizer produces.
func forEachOBU(b []byte, f func(typ byte, obu, payload []byte)) {
	for len(b) > 0 {
		h := b[0]
		hl := 1
		if h&0x04 != 0 { // extension
			hl = 2
		}
		if h&0x02 == 0 || len(b) < hl {
			return
		}
		size, n := codec.LEB128(b[hl:])
		if n == 0 || size > uint64(len(b)-hl-n) {
			return
		}
		end := hl + n + int(size)
		f((h>>3)&0x0f, b[:end], b[hl+n:end])
		b = b[end:]
	}
}

func stripTemporalDelimiters(b []byte) []byte {
	out := b[:0:0]
	forEachOBU(b, func(typ byte, obu, _ []byte) {
		if typ != obuTemporalDelimiter {
			out = append(out, obu...)
		}
	})
	return out
}

func inspectAV1(f []byte) frameInfo {
	var info frameInfo
	forEachOBU(f, func(typ byte, obu, payload []byte) {
		if typ != obuSequenceHeader || info.keyframe {
			return
		}
		w, h, c, ok := parseAV1SequenceHeader(payload)
		if !ok {
			return
		}
		// WebRTC encoders repeat the sequence header on every keyframe,
		// and a decoder can start at one, which is what the recorder
		// needs of a "keyframe".
		info = frameInfo{keyframe: true, width: w, height: h, config: append(c, obu...)}
	})
	return info
}

// parseAV1SequenceHeader returns the maximum frame size and the first four
// bytes of an av1C record (AV1-ISOBMFF 2.3) for a sequence header OBU
// payload (AV1 spec 5.5). The color fields of av1C are left at 8-bit 4:2:0,
// which is what WebRTC encoders produce; decoders read the authoritative
// values from the sequence header that follows in the record.
func parseAV1SequenceHeader(p []byte) (w, h int, av1C []byte, ok bool) {
	r := &bitReader{b: p}
	profile := r.bits(3)
	r.skip(1) // still_picture
	reduced := r.bit() == 1
	var level0, tier0 uint32
	if reduced {
		level0 = r.bits(5)
	} else {
		var bufDelayLen int
		decoderModel := false
		if r.bit() == 1 { // timing_info_present_flag
			r.skip(64)
			if r.bit() == 1 { // equal_picture_interval
				r.uvlc()
			}
			decoderModel = r.bit() == 1
			if decoderModel {
				bufDelayLen = int(r.bits(5)) + 1
				r.skip(32 + 5 + 5)
			}
		}
		initialDelay := r.bit() == 1
		ops := int(r.bits(5)) + 1
		for i := range ops {
			r.skip(12) // operating_point_idc
			level := r.bits(5)
			var tier uint32
			if level > 7 {
				tier = r.bit()
			}
			if i == 0 {
				level0, tier0 = level, tier
			}
			if decoderModel && r.bit() == 1 {
				r.skip(2*bufDelayLen + 1)
			}
			if initialDelay && r.bit() == 1 {
				r.skip(4)
			}
		}
	}
	wBits := int(r.bits(4)) + 1
	hBits := int(r.bits(4)) + 1
	w = int(r.bits(wBits)) + 1
	h = int(r.bits(hBits)) + 1
	if r.bad {
		return 0, 0, nil, false
	}
	c := []byte{0x81, byte(profile<<5 | level0), byte(tier0<<7 | 0x0c), 0}
	return w, h, c, true
}

// opusHead is the Matroska A_OPUS codec private data (RFC 7845 5.1): two
// channels (WebRTC always signals stereo; mono decodes as two equal
// channels), no pre-skip, 48 kHz.
func opusHead() []byte {
	h := []byte("OpusHead")
	h = append(h, 1, 2)
	h = binary.LittleEndian.AppendUint16(h, 0)
	h = binary.LittleEndian.AppendUint32(h, 48000)
	h = binary.LittleEndian.AppendUint16(h, 0)
	return append(h, 0)
}

// sameConfig reports whether two codec configurations are equal.
func sameConfig(a, b []byte) bool { return bytes.Equal(a, b) }
