package codec

import "testing"

func TestKindOf(t *testing.T) {
	for mime, want := range map[string]Kind{
		"video/VP8": VP8, "video/vp8": VP8, "VIDEO/VP9": VP9, "video/AV1": AV1, "video/H264": H264,
		"audio/opus": Opus, "audio/OPUS": Opus, "video/H265": Unknown, "": Unknown,
	} {
		if got := KindOf(mime); got != want {
			t.Errorf("KindOf(%q) = %v, want %v", mime, got, want)
		}
	}
	if !VP8.Video() || !H264.Video() || Opus.Video() || Unknown.Video() {
		t.Error("Video() is wrong for some kind")
	}
}

func TestLEB128(t *testing.T) {
	for _, c := range []struct {
		in   []byte
		v    uint64
		size int
	}{
		{[]byte{0x00}, 0, 1}, {[]byte{0x7f}, 127, 1}, {[]byte{0x80, 0x01}, 128, 2},
		{[]byte{0xe5, 0x8e, 0x26, 0xff}, 624485, 3}, {[]byte{0x80}, 0, 0}, {nil, 0, 0},
		{[]byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}, 0, 0}, // over 8 bytes
	} {
		if v, n := LEB128(c.in); v != c.v || n != c.size {
			t.Errorf("LEB128(% x) = %d, %d; want %d, %d", c.in, v, n, c.v, c.size)
		}
	}
}

func TestVP8FrameIsKey(t *testing.T) {
	key := []byte{0x50, 0x42, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00}
	if !VP8FrameIsKey(key) {
		t.Error("keyframe tag not recognised")
	}
	inter := append([]byte{0x51}, key[1:]...)
	if VP8FrameIsKey(inter) || VP8FrameIsKey(key[:5]) || VP8FrameIsKey([]byte{0x50, 0, 0, 0x9d, 0x01, 0x2b}) {
		t.Error("an inter frame, a short frame or a wrong start code counted as a keyframe")
	}
}
