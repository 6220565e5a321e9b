package forwarding_test

import (
	"context"
	"fmt"
	"time"

	"github.com/pion/rtp"

	"github.com/rtcio-gateway/rtcio-gateway/codec"
	"github.com/rtcio-gateway/rtcio-gateway/forwarding"
)

// subscriber stands in for a pion TrackLocalWriter.
type subscriber chan rtp.Header

func (s subscriber) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	s <- *h
	return len(payload), nil
}

// A publication fed by the gateway's read loop fans out to a down-track that
// rewrites SSRC, payload type, sequence numbers and timestamps.
func Example() {
	ctx := context.Background()
	pub, err := forwarding.NewPublication(ctx, forwarding.PublicationConfig{
		Codec: forwarding.Codec{MimeType: codec.MimeTypeVP8, ClockRate: 90000, PayloadType: 96},
	})
	if err != nil {
		panic(err)
	}
	defer pub.Close()

	sub := make(subscriber, 3)
	if _, err := pub.Subscribe(ctx, forwarding.DownTrackConfig{SSRC: 1234, PayloadType: 100, Writer: sub}); err != nil {
		panic(err)
	}
	for seq := uint16(500); seq < 503; seq++ {
		_ = pub.WriteRTP(&rtp.Packet{
			Header:  rtp.Header{Version: 2, PayloadType: 96, SSRC: 42, SequenceNumber: seq, Timestamp: uint32(seq) * 3000},
			Payload: []byte{0x00, 0x01},
		})
	}
	var first rtp.Header
	for i := 0; i < 3; i++ {
		var h rtp.Header
		select {
		case h = <-sub:
		case <-time.After(10 * time.Second):
			fmt.Println("timed out waiting for the subscriber")
			return
		}
		if i == 0 {
			first = h
			continue
		}
		fmt.Printf("ssrc %d pt %d seq +%d ts +%d\n", h.SSRC, h.PayloadType,
			h.SequenceNumber-first.SequenceNumber, h.Timestamp-first.Timestamp)
	}
	// Output:
	// ssrc 1234 pt 100 seq +1 ts +3000
	// ssrc 1234 pt 100 seq +2 ts +6000
}
