package forwarding

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/rtcio-gateway/rtcio-gateway/internal/defaults"
)

// PublicationConfig configures a publication. Zero values get defaults.
type PublicationConfig struct {
	Codec Codec // required: MimeType and ClockRate

	// Keyframes receives aggregated, throttled keyframe requests (PLI).
	// Nil disables them.
	Keyframes KeyframeRequester
	// Nacks receives NACKs for upstream losses. Nil disables upstream loss
	// recovery.
	Nacks NackSender

	Logger *slog.Logger
	// Clock returns the current time; nil means time.Now. Tests inject a
	// fake clock to control the wall time seen by timestamp rewriting.
	Clock func() time.Time

	// HistorySize is the number of recent packets kept to answer
	// subscriber NACKs (rounded up to a power of two), and of each
	// down-track's sequence mappings. Default 1024 for video, 128 for
	// audio: 2.5 s of Opus at 50 packets/s is plenty for the NACKs audio
	// rarely gets, and every kept packet costs a 1.5 KB buffer whatever
	// its size (a meeting's audio history was most of its memory).
	HistorySize int

	// KeyframeRequestInterval is the minimum time between two keyframe
	// requests sent upstream. Default 600ms: a publisher must see at most
	// one request per 500 ms, and the way from here to it (another
	// gateway's throttle in a cascaded room, scheduling on a loaded host)
	// can bring two requests sent 500 ms apart closer together.
	KeyframeRequestInterval time.Duration

	// The keyframe cache (video only) is bounded by packets and bytes.
	// Defaults 2048 packets, 2 MiB. DisableKeyframeCache turns it off.
	KeyframeCacheMaxPackets int
	KeyframeCacheMaxBytes   int
	DisableKeyframeCache    bool

	// Upstream NACK policy: NACKs are sent every NackInterval (default
	// 30ms) for each missing packet, at most NackMaxRetries times (default
	// 5) and while younger than NackMaxAge (default 1s); at most
	// NackMaxMissing (default 256) packets are tracked.
	NackInterval   time.Duration
	NackMaxRetries int
	NackMaxAge     time.Duration
	NackMaxMissing int
}

func (c *PublicationConfig) setDefaults() error {
	if c.Codec.MimeType == "" {
		return errors.New("forwarding: publication codec has no mime type")
	}
	if c.Codec.ClockRate == 0 {
		return fmt.Errorf("forwarding: publication codec %s has no clock rate", c.Codec.MimeType)
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	if c.Codec.IsVideo() {
		defaults.Positive(&c.HistorySize, 1024)
	} else {
		defaults.Positive(&c.HistorySize, 128)
	}
	defaults.Positive(&c.KeyframeRequestInterval, 600*time.Millisecond)
	defaults.Positive(&c.KeyframeCacheMaxPackets, 2048)
	defaults.Positive(&c.KeyframeCacheMaxBytes, 2<<20)
	defaults.Positive(&c.NackInterval, 30*time.Millisecond)
	defaults.Positive(&c.NackMaxRetries, 5)
	defaults.Positive(&c.NackMaxAge, time.Second)
	defaults.Positive(&c.NackMaxMissing, 256)
	return nil
}
