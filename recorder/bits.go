package recorder

// bitReader reads big-endian bit fields (H.264 SPS, VP9 and AV1 headers).
// Reading past the end yields zeros and sets bad, so parsers check once at
// the end instead of after every field.
type bitReader struct {
	b   []byte
	pos int // in bits
	bad bool
}

func (r *bitReader) bit() uint32 {
	if r.pos >= len(r.b)*8 {
		r.bad = true
		return 0
	}
	v := uint32(r.b[r.pos/8]>>(7-uint(r.pos%8))) & 1
	r.pos++
	return v
}

func (r *bitReader) bits(n int) uint32 {
	var v uint32
	for range n {
		v = v<<1 | r.bit()
	}
	return v
}

func (r *bitReader) skip(n int) {
	if n < 0 || r.pos+n > len(r.b)*8 {
		r.bad = true
		r.pos = len(r.b) * 8
		return
	}
	r.pos += n
}

// ue reads an unsigned Exp-Golomb code; codes longer than 31 bits are
// invalid in every field we read.
func (r *bitReader) ue() uint32 {
	zeros := 0
	for r.bit() == 0 {
		if r.bad || zeros == 31 {
			r.bad = true
			return 0
		}
		zeros++
	}
	return (1<<zeros - 1) + r.bits(zeros)
}

// se reads a signed Exp-Golomb code.
func (r *bitReader) se() int32 {
	v := r.ue()
	if v&1 == 1 {
		return int32((v + 1) / 2)
	}
	return -int32(v / 2)
}

// uvlc reads AV1's variable length unsigned code.
func (r *bitReader) uvlc() uint32 {
	zeros := 0
	for r.bit() == 0 {
		if r.bad || zeros == 32 {
			r.bad = true
			return 0
		}
		zeros++
	}
	if zeros >= 32 {
		return 1<<32 - 1
	}
	return r.bits(zeros) + (1<<zeros - 1)
}

// unescapeRBSP removes H.264 emulation prevention bytes (00 00 03).
func unescapeRBSP(b []byte) []byte {
	out := make([]byte, 0, len(b))
	zeros := 0
	for _, c := range b {
		if zeros >= 2 && c == 3 {
			zeros = 0
			continue
		}
		out = append(out, c)
		if c == 0 {
			zeros++
		} else {
			zeros = 0
		}
	}
	return out
}
