package codec

import (
	"bytes"
	"testing"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"

	"github.com/rtcio-gateway/rtcio-gateway/internal/mediafixture"
)

func readIVF(t *testing.T, name string) [][]byte {
	t.Helper()
	frames, err := mediafixture.ReadIVF(mediafixture.Path(name))
	if err != nil {
		t.Fatal(err)
	}
	return frames
}

var packetize = mediafixture.Packetize

// checkFrames asserts that exactly the first packet of each keyframe is
// detected, and nothing in delta frames.
func checkFrames(t *testing.T, detect func([]byte) bool, frames [][]*rtp.Packet, isKey func(i int) bool) {
	t.Helper()
	keys := 0
	for i, pkts := range frames {
		if len(pkts) == 0 {
			t.Fatalf("frame %d produced no packets", i)
		}
		for j, pk := range pkts {
			got := detect(pk.Payload)
			want := isKey(i) && j == 0
			if got != want {
				t.Fatalf("frame %d packet %d/%d: keyframe=%v, want %v", i, j, len(pkts), got, want)
			}
		}
		if isKey(i) {
			keys++
		}
	}
	if keys < 2 || keys == len(frames) {
		t.Fatalf("fixture has %d keyframes in %d frames; the test needs both kinds", keys, len(frames))
	}
}

func TestVP8KeyframeRealStream(t *testing.T) {
	frames := readIVF(t, "vp8.ivf")
	for _, pictureID := range []bool{false, true} {
		pkts := packetize(&codecs.VP8Payloader{EnablePictureID: pictureID}, frames, 1, 96, 3000)
		// Ground truth from the VP8 frame tag: bit 0 clear means keyframe.
		checkFrames(t, IsVP8Keyframe, pkts, func(i int) bool { return frames[i][0]&1 == 0 })
	}
}

func TestVP8KeyframeDescriptorExtensions(t *testing.T) {
	frame := []byte{0x50, 0x42, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00}
	cases := []struct {
		name string
		desc []byte
		want bool
	}{
		{"plain", []byte{0x10}, true},
		{"15-bit picture id", []byte{0x90, 0x80, 0x81, 0x23}, true},
		{"7-bit picture id, tl0picidx, tid", []byte{0x90, 0xe0, 0x05, 0x07, 0x40}, true},
		{"not start of partition", []byte{0x00}, false},
		{"partition 1", []byte{0x11}, false},
		{"truncated extension", []byte{0x90}, false},
	}
	for _, c := range cases {
		if got := IsVP8Keyframe(append(c.desc, frame...)); got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
	}
	delta := bytes.Clone(frame)
	delta[0] |= 1
	if IsVP8Keyframe(append([]byte{0x10}, delta...)) {
		t.Error("inter frame detected as keyframe")
	}
	if IsVP8Keyframe(append([]byte{0x10}, frame[:5]...)) {
		t.Error("truncated frame detected as keyframe")
	}
}

func TestVP9KeyframeRealStream(t *testing.T) {
	frames := readIVF(t, "vp9.ivf")
	pkts := packetize(&codecs.VP9Payloader{}, frames, 1, 98, 6000)
	// Ground truth from the uncompressed header (profile 0): frame_marker,
	// profile bits, show_existing_frame, then frame_type 0 for keyframes.
	checkFrames(t, IsVP9Keyframe, pkts, func(i int) bool {
		b := frames[i][0]
		return b>>6 == 2 && b&0x08 == 0 && b&0x04 == 0
	})
}

func TestVP9KeyframeLayers(t *testing.T) {
	cases := []struct {
		name string
		p    []byte
		want bool
	}{
		{"key, picture id", []byte{0x88, 0x12, 0x82}, true},
		{"key, layers sid 0, non-flexible", []byte{0xa8, 0x12, 0x00, 0x07, 0x82}, true},
		{"key, spatial layer 1", []byte{0xa8, 0x12, 0x02, 0x07, 0x82}, false},
		{"inter predicted", []byte{0xc8, 0x12, 0x82}, false},
		{"not beginning of frame", []byte{0x80, 0x12, 0x82}, false},
		{"descriptor only", []byte{0x88, 0x12}, false},
	}
	for _, c := range cases {
		if got := IsVP9Keyframe(c.p); got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
	}
}

func TestH264KeyframeRealStream(t *testing.T) {
	units, err := mediafixture.ReadAnnexB(mediafixture.Path(mediafixture.H264))
	if err != nil {
		t.Fatal(err)
	}
	pkts := packetize(&codecs.H264Payloader{}, units, 1, 102, 3000)
	sawSTAPA, sawFUA := false, false
	keys := 0
	for i, frame := range pkts {
		idr := mediafixture.AnnexBHasIDR(units[i])
		if idr {
			keys++
		}
		first := IsH264Keyframe(frame[0].Payload)
		if first != idr {
			t.Fatalf("unit %d: first packet keyframe=%v, want %v", i, first, idr)
		}
		for _, pk := range frame {
			switch pk.Payload[0] & 0x1f {
			case naluSTAPA:
				sawSTAPA = sawSTAPA || idr
			case naluFUA:
				if idr && pk.Payload[1]&0x80 != 0 && pk.Payload[1]&0x1f == NALUIDR {
					sawFUA = true
					if !IsH264Keyframe(pk.Payload) {
						t.Fatalf("unit %d: FU-A start of IDR not detected", i)
					}
				}
			}
			if !idr && IsH264Keyframe(pk.Payload) {
				t.Fatalf("unit %d: non-IDR packet detected as keyframe", i)
			}
		}
	}
	if keys < 2 || keys == len(units) || !sawSTAPA || !sawFUA {
		t.Fatalf("fixture coverage: %d IDR of %d units, STAP-A %v, FU-A %v", keys, len(units), sawSTAPA, sawFUA)
	}
}

func TestH264KeyframeHandmade(t *testing.T) {
	cases := []struct {
		name string
		p    []byte
		want bool
	}{
		{"single IDR", []byte{0x65, 0x88}, true},
		{"single SPS", []byte{0x67, 0x42}, true},
		{"single non-IDR", []byte{0x41, 0x9a}, false},
		{"STAP-A SPS PPS", []byte{0x78, 0, 2, 0x67, 0x42, 0, 2, 0x68, 0xce}, true},
		{"STAP-A SEI only", []byte{0x78, 0, 2, 0x06, 0x05}, false},
		{"STAP-A truncated", []byte{0x78, 0, 9, 0x67}, false},
		{"STAP-B IDR", []byte{0x79, 0, 1, 0, 2, 0x65, 0x88}, true},
		{"FU-A IDR start", []byte{0x7c, 0x85, 0x88}, true},
		{"FU-A IDR middle", []byte{0x7c, 0x05, 0x88}, false},
		{"FU-A non-IDR start", []byte{0x7c, 0x81, 0x9a}, false},
		{"FU-A truncated", []byte{0x7c}, false},
	}
	for _, c := range cases {
		if got := IsH264Keyframe(c.p); got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
	}
}

func TestAV1KeyframeRealStream(t *testing.T) {
	frames := readIVF(t, "av1.ivf")
	pkts := packetize(&codecs.AV1Payloader{}, frames, 1, 45, 6000)
	// Ground truth: libaom repeats the sequence header (OBU type 1) on
	// every keyframe; the temporal unit starts with a temporal delimiter.
	hasSeqHeader := func(tu []byte) bool {
		for i := 0; i < len(tu); {
			h := tu[i]
			typ := (h >> 3) & 0x0f
			i++
			if h&0x04 != 0 { // extension
				i++
			}
			if h&0x02 == 0 { // no size: runs to the end
				return typ == OBUSequenceHeader
			}
			size, n := LEB128(tu[i:])
			if n == 0 {
				return false
			}
			if typ == OBUSequenceHeader {
				return true
			}
			i += n + int(size)
		}
		return false
	}
	checkFrames(t, IsAV1Keyframe, pkts, func(i int) bool { return hasSeqHeader(frames[i]) })
}

func TestIsKeyframeByMime(t *testing.T) {
	key := []byte{0x10, 0x50, 0x42, 0x00, 0x9d, 0x01, 0x2a, 0x40}
	if !IsKeyframe("video/vp8", key) || !IsKeyframe(MimeTypeVP8, key) {
		t.Fatal("VP8 keyframe not detected through IsKeyframe")
	}
	if IsKeyframe(MimeTypeOpus, key) || IsKeyframe("video/unknown", key) {
		t.Fatal("keyframe reported for a codec without detector")
	}
}

// FuzzKeyframeDetectors feeds arbitrary payloads to every detector: they must
// never panic, and a detected keyframe must survive appending bytes (detection
// only looks at the packet's head).
func FuzzKeyframeDetectors(f *testing.F) {
	seeds := [][]byte{
		{0x10, 0x50, 0x42, 0x00, 0x9d, 0x01, 0x2a},
		{0x90, 0xe0, 0x05, 0x07, 0x40},
		{0xa8, 0x12, 0x00, 0x07, 0x82},
		{0x78, 0, 2, 0x67, 0x42, 0, 2, 0x68, 0xce},
		{0x7c, 0x85, 0x88},
		{0x79, 0, 1, 0, 2, 0x65},
		{0x18, 0x0a, 0x0b},
		{0x00, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80},
		{},
	}
	for _, s := range seeds {
		f.Add(s)
	}
	detectors := []func([]byte) bool{IsVP8Keyframe, IsVP9Keyframe, IsH264Keyframe, IsAV1Keyframe}
	f.Fuzz(func(t *testing.T, payload []byte) {
		for i, detect := range detectors {
			if !detect(payload) {
				continue
			}
			// H.264 STAP parsing checks the whole aggregate; the others
			// only read a fixed head.
			if i != 2 && !detect(append(bytes.Clone(payload), 0, 0, 0)) {
				t.Fatalf("detector %d: keyframe lost by appending bytes", i)
			}
		}
	})
}
