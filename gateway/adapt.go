package gateway

import (
	"github.com/rtcio-gateway/rtcio-gateway/config"
	"github.com/rtcio-gateway/rtcio-gateway/forwarding/bwe"
	"github.com/rtcio-gateway/rtcio-gateway/gateway/sfu"
	"github.com/rtcio-gateway/rtcio-gateway/speaker"
)

// adaptConfig is the SFU rooms' bandwidth adaptation per the configuration.
func adaptConfig(a config.Adapt) sfu.AdaptConfig {
	return sfu.AdaptConfig{
		Enabled:         a.Enabled,
		Interval:        a.Interval,
		Estimator:       bwe.EstimatorConfig{Max: uint64(a.SubscriberMaxBps)},
		RetransmitShare: a.RetransmitShare,
		Policy: bwe.PolicyConfig{
			Floor:      uint64(a.FloorBps),
			Max:        uint64(a.MaxBps),
			StepDown:   a.StepDown,
			Backoff:    a.ResumeBackoff,
			MaxBackoff: a.MaxResumeBackoff,
		},
	}
}

// speakerConfig is the SFU rooms' active-speaker detection per the
// configuration.
func speakerConfig(a config.Adapt) sfu.SpeakerConfig {
	return sfu.SpeakerConfig{Enabled: a.ActiveSpeaker, Detector: speaker.Config{Hold: a.SpeakerHold}}
}
