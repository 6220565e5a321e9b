package codec_test

import (
	"fmt"

	"github.com/rtcio-gateway/rtcio-gateway/codec"
)

// The forwarding plane asks whether an RTP payload starts a keyframe; the
// recorder asks the same of a whole frame.
func Example() {
	payload := []byte{0x10, 0x50, 0x42, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00} // descriptor + frame
	fmt.Println(codec.KindOf("video/vp8"), codec.IsKeyframe("video/VP8", payload), codec.VP8FrameIsKey(payload[1:]))
	// Output: VP8 true true
}
