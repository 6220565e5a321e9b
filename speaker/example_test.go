package speaker_test

import (
	"fmt"
	"time"

	"github.com/rtcio-gateway/rtcio-gateway/speaker"
)

// A room's packets go to Observe; a clock calls Tick.
func Example() {
	d := speaker.New(speaker.Config{})
	now := time.Unix(0, 0)
	for range 50 { // one second of Opus from two publishers
		d.Observe("alice", 20, now) // -20 dBov: speaking
		d.Observe("bob", 110, now)  // -110 dBov: silent
		now = now.Add(20 * time.Millisecond)
	}
	who, previous, changed := d.Tick(now)
	fmt.Println(who, previous == "", changed)
	// Output: alice true true
}
