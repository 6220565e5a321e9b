package loadtest

import (
	"encoding/binary"
	"errors"
)

// TrailerSize is the number of bytes the load generator appends to every
// RTP payload it sends.
const TrailerSize = 24

// trailerMagic ends every trailer, so a payload that does not come from the
// load generator (or a truncated one) is recognised and dropped.
const trailerMagic = 0x524c5431 // "RLT1"

// Trailer flags.
const (
	// FlagKeyframe marks the first packet of a video keyframe as sent.
	FlagKeyframe = 1 << iota
)

// Trailer is the load generator's per-packet record, appended at the end of
// the payload so that codec payload headers stay first (the gateway parses
// those for keyframes) and header rewriting cannot touch it.
type Trailer struct {
	Stream uint32 // index of the published stream (track) in the run
	Seq    uint32 // per-stream sequence number, from 0, never wrapping in a run
	SendNs int64  // publisher's wall clock (Unix ns) just before the write
	Flags  uint8
}

// ErrNoTrailer is returned for a payload without a valid trailer.
var ErrNoTrailer = errors.New("loadtest: payload has no load-test trailer")

// AppendTrailer appends tr to payload.
func AppendTrailer(payload []byte, tr Trailer) []byte {
	var b [TrailerSize]byte
	binary.BigEndian.PutUint32(b[0:], tr.Stream)
	binary.BigEndian.PutUint32(b[4:], tr.Seq)
	binary.BigEndian.PutUint64(b[8:], uint64(tr.SendNs))
	b[16] = tr.Flags
	binary.BigEndian.PutUint32(b[20:], trailerMagic)
	return append(payload, b[:]...)
}

// ParseTrailer reads the trailer at the end of payload.
func ParseTrailer(payload []byte) (Trailer, error) {
	if len(payload) < TrailerSize {
		return Trailer{}, ErrNoTrailer
	}
	b := payload[len(payload)-TrailerSize:]
	if binary.BigEndian.Uint32(b[20:]) != trailerMagic {
		return Trailer{}, ErrNoTrailer
	}
	return Trailer{
		Stream: binary.BigEndian.Uint32(b[0:]),
		Seq:    binary.BigEndian.Uint32(b[4:]),
		SendNs: int64(binary.BigEndian.Uint64(b[8:])),
		Flags:  b[16],
	}, nil
}
