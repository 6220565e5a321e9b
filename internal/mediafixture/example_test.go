package mediafixture_test

import (
	"context"
	"fmt"
	"time"

	"github.com/rtcio-gateway/rtcio-gateway/internal/mediafixture"
)

// A VP8 track fed from the fixture file until the context ends; add the
// track to a peer connection to send it.
func Example() {
	track, err := mediafixture.NewVP8Track("video", "camera-stream")
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err = mediafixture.PlayIVF(ctx, mediafixture.Path(mediafixture.VP8), track)
	fmt.Println(track.StreamID(), err)
	// Output: camera-stream <nil>
}
