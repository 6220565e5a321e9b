package loadtest

import (
	"context"
	"fmt"
	"log"
	"time"
)

// A fanout of one publisher to two subscribers through the bare pion
// forwarder (Setup.Compare does the same through the gateway first; Build
// makes the binaries).
func Example() {
	setup, err := binaries() // Build("./cmd/rtcio-gateway"), Build("./cmd/bare-forwarder")
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := setup.RunBare(ctx, Config{
		Scenario: Fanout, Publishers: 1, Subscribers: 2, Video: true,
		Duration: time.Second, Drain: 1500 * time.Millisecond,
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s: %d subscribers, %d streams, %d missing, loss %.1f%%\n",
		res.Target, res.Subscribers, res.Streams, res.Missing, res.LossTotal)
	// Output: bare: 2 subscribers, 1 streams, 0 missing, loss 0.0%
}
