package bwe_test

import (
	"fmt"
	"time"

	"github.com/rtcio-gateway/rtcio-gateway/forwarding/bwe"
)

// A subscriber whose browser says (REMB) it can take 150 kbit/s of a
// camera sent at 1.7 Mbit/s, and loses a quarter of it: its video is
// paused, and the publisher is not asked to slow down for it.
func Example() {
	now := time.Unix(0, 0)
	est := bwe.NewEstimator(bwe.EstimatorConfig{})
	for range 100 { // two seconds of 1.7 Mbit/s
		est.OnSent(1_700_000/8/50, now)
		now = now.Add(20 * time.Millisecond)
	}
	est.OnREMB(150_000, now)
	est.OnLoss(64, now) // a quarter lost

	policy := bwe.NewPolicy(bwe.PolicyConfig{})
	d := policy.Decide([]bwe.Subscriber{{
		ID: "weak", Estimate: est.Estimate(now), Congested: est.Congested(now), Audio: 32_000,
		Videos: []bwe.Video{{Key: "alice/camera"}},
	}}, now)
	fmt.Println(d.Paused, policy.Cap("alice/camera"))
	// Output: [{weak alice/camera}] 3000000
}
