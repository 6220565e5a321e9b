package sfu

import (
	"testing"

	"github.com/pion/rtp"
)

// FuzzAudioLevel: whatever a publisher sends on an audio track, reading its
// audio level neither panics nor returns a level outside RFC 6464's range.
func FuzzAudioLevel(f *testing.F) {
	h := rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: 1, SSRC: 5}
	_ = h.SetExtension(1, []byte{0x80 | 30})
	pkt, _ := (&rtp.Packet{Header: h, Payload: []byte{0xf8, 0xff, 0xfe}}).Marshal()
	f.Add(pkt)
	f.Add([]byte{0x90, 0, 0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		l := &levelReader{id: 1}
		if level, ok := l.level(b); ok && level > 127 {
			t.Fatalf("level %d", level)
		}
	})
}
