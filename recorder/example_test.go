package recorder_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/pion/rtp"

	"github.com/rtcio-gateway/rtcio-gateway/codec"
	"github.com/rtcio-gateway/rtcio-gateway/forwarding"
	"github.com/rtcio-gateway/rtcio-gateway/recorder"
)

// A recording of one stream with one Opus track. The gateway attaches each
// track to its publication with Recording.Attach, which makes the track one
// more sink of it; here the track, a forwarding.Sink, is fed directly.
// Stopping the recording finishes the file and its manifest.
func Example() {
	dir, _ := os.MkdirTemp("", "recordings")
	defer os.RemoveAll(dir)

	rec, err := recorder.New(recorder.Config{Dir: dir, NameTemplate: "{room}/{publisher}"})
	if err != nil {
		panic(err)
	}
	defer rec.Close()
	r, err := rec.Start(context.Background(), recorder.StreamInfo{Room: "lobby", PublisherID: "alice", StreamID: "stream-1"})
	if err != nil {
		panic(err)
	}
	track, err := r.AddTrack(recorder.TrackConfig{
		Codec: forwarding.Codec{MimeType: codec.MimeTypeOpus, ClockRate: 48000, PayloadType: 111},
		ID:    "mic",
	})
	if err != nil {
		panic(err)
	}
	for i := range 50 { // one second of 20 ms Opus packets
		_ = track.WriteRTP(&rtp.Packet{
			Header:  rtp.Header{Version: 2, PayloadType: 111, SSRC: 1, SequenceNumber: uint16(i), Timestamp: uint32(i) * 960},
			Payload: []byte{0xfc, 0xff, 0xfe}, // an Opus packet of silence
		})
	}
	if err := r.Stop(); err != nil {
		panic(err)
	}
	m, err := recorder.ReadManifest(filepath.Join(dir, "lobby", "alice.json"))
	if err != nil {
		panic(err)
	}
	fmt.Println(r.Status().Files, m.State, m.EndReason, m.Tracks[0].CodecID, m.DurationMs)
	// Output: [lobby/alice.webm] done stopped A_OPUS 1000
}
