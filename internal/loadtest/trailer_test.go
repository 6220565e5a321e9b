package loadtest

import (
	"bytes"
	"errors"
	"testing"
)

func TestTrailerRoundTrip(t *testing.T) {
	payload := []byte{0x90, 0x80, 0x81, 0x02}
	tr := Trailer{Stream: 7, Seq: 123456, SendNs: 1_700_000_000_123_456_789, Flags: FlagKeyframe}
	got := AppendTrailer(append([]byte(nil), payload...), tr)
	if len(got) != len(payload)+TrailerSize || !bytes.Equal(got[:len(payload)], payload) {
		t.Fatalf("payload not kept in front: % x", got)
	}
	back, err := ParseTrailer(got)
	if err != nil {
		t.Fatal(err)
	}
	if back != tr {
		t.Fatalf("round trip: got %+v, want %+v", back, tr)
	}
}

func TestTrailerRejectsForeignPayloads(t *testing.T) {
	for _, p := range [][]byte{nil, {1, 2, 3}, make([]byte, TrailerSize), bytes.Repeat([]byte{0xff}, 100)} {
		if _, err := ParseTrailer(p); !errors.Is(err, ErrNoTrailer) {
			t.Errorf("ParseTrailer(% x) = %v, want ErrNoTrailer", p, err)
		}
	}
}

func FuzzParseTrailer(f *testing.F) {
	f.Add([]byte{})
	f.Add(AppendTrailer([]byte{0x90, 0x80}, Trailer{Stream: 1, Seq: 2, SendNs: 3}))
	f.Add(AppendTrailer(nil, Trailer{Stream: 1 << 31, Seq: 1<<32 - 1, SendNs: -1, Flags: 0xff}))
	f.Fuzz(func(t *testing.T, b []byte) {
		tr, err := ParseTrailer(b)
		if err != nil {
			return
		}
		// A trailer that parses must re-encode to the same bytes, apart
		// from the reserved padding.
		again := AppendTrailer(nil, tr)
		tail := b[len(b)-TrailerSize:]
		if !bytes.Equal(again[:17], tail[:17]) || !bytes.Equal(again[20:], tail[20:]) {
			t.Fatalf("re-encoded % x, parsed from % x", again, tail)
		}
	})
}
