package config

import (
	"fmt"
	"math"
	"strconv"
	"time"
)

// Adapt configures bandwidth adaptation and the active speaker in SFU
// rooms. rtc.io clients send one encoding per track, so the gateway has two
// levers for a subscriber on a weak link: capping the publisher's send
// rate with REMB (never below FloorBps, so one weak subscriber cannot ruin
// the picture for everyone) and pausing that subscriber's video.
type Adapt struct {
	// Enabled turns bandwidth adaptation on.
	Enabled bool `yaml:"enabled"`
	// Interval between two decisions of a room.
	Interval time.Duration `yaml:"interval"`
	// FloorBps is the least a publisher's video is asked to send, and the
	// least share of a subscriber's estimate one video needs to stay on.
	FloorBps int `yaml:"floor_bps"`
	// MaxBps is the cap of one publisher's video when nobody is congested.
	MaxBps int `yaml:"max_bps"`
	// SubscriberMaxBps is a subscriber's estimate before any feedback, and
	// the most it is credited with. It is a whole subscriber's, all videos
	// together: a member of a 20-person meeting receives 19 of them, so
	// this must not be one video's cap.
	SubscriberMaxBps int `yaml:"subscriber_max_bps"`
	// StepDown bounds how far a cap falls in one decision (0.3: 30%).
	StepDown float64 `yaml:"step_down"`
	// ResumeBackoff is how long a paused video waits before it may come
	// back; it doubles for a video paused again soon after a resume, up to
	// MaxResumeBackoff.
	ResumeBackoff    time.Duration `yaml:"resume_backoff"`
	MaxResumeBackoff time.Duration `yaml:"max_resume_backoff"`
	// RetransmitShare is the share of a congested subscriber's estimate
	// that answers to its NACKs may use (until 30 s after its last
	// congestion).
	RetransmitShare float64 `yaml:"retransmit_share"`
	// ActiveSpeaker turns on the active-speaker event, from the audio
	// level extension (RFC 6464).
	ActiveSpeaker bool `yaml:"active_speaker"`
	// SpeakerHold is how long another participant must be clearly louder
	// than the speaker before the active speaker changes.
	SpeakerHold time.Duration `yaml:"speaker_hold"`
}

// DefaultAdapt is the adaptation's default configuration.
func DefaultAdapt() Adapt {
	return Adapt{
		Enabled:          true,
		Interval:         500 * time.Millisecond,
		FloorBps:         200_000,
		MaxBps:           3_000_000,
		SubscriberMaxBps: 50_000_000,
		StepDown:         0.3,
		ResumeBackoff:    2 * time.Second,
		MaxResumeBackoff: 30 * time.Second,
		RetransmitShare:  0.1,
		ActiveSpeaker:    true,
		SpeakerHold:      300 * time.Millisecond,
	}
}

func (v *validator) adapt(a Adapt) {
	v.duration("adapt.interval", a.Interval)
	v.intRange("adapt.floor_bps", a.FloorBps, 30_000, 10_000_000, "must be between 30000 and 10000000 bit/s")
	if a.MaxBps < a.FloorBps || a.MaxBps > 100_000_000 {
		v.fail("adapt.max_bps", strconv.Itoa(a.MaxBps), fmt.Sprintf("must be between adapt.floor_bps (%d) and 100000000 bit/s", a.FloorBps))
	}
	if a.SubscriberMaxBps < a.MaxBps || a.SubscriberMaxBps > 1_000_000_000 {
		v.fail("adapt.subscriber_max_bps", strconv.Itoa(a.SubscriberMaxBps), fmt.Sprintf("must be between adapt.max_bps (%d) and 1000000000 bit/s", a.MaxBps))
	}
	v.fraction("adapt.step_down", a.StepDown, 0.01, 0.9)
	v.fraction("adapt.retransmit_share", a.RetransmitShare, 0.01, 1)
	v.duration("adapt.resume_backoff", a.ResumeBackoff)
	v.duration("adapt.max_resume_backoff", a.MaxResumeBackoff)
	if a.MaxResumeBackoff < a.ResumeBackoff {
		v.fail("adapt.max_resume_backoff", strconv.Quote(a.MaxResumeBackoff.String()), "must be at least adapt.resume_backoff")
	}
	v.duration("adapt.speaker_hold", a.SpeakerHold)
}

func (v *validator) fraction(key string, got, lo, hi float64) {
	if math.IsNaN(got) || got < lo || got > hi {
		v.fail(key, strconv.FormatFloat(got, 'g', -1, 64), fmt.Sprintf("must be between %g and %g", lo, hi))
	}
}
