package mediafixture

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4/pkg/media"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// collector records samples and signals once it has seen want of them.
type collector struct {
	mu      sync.Mutex
	samples []media.Sample
	want    int
	done    chan struct{}
}

func newCollector(want int) *collector { return &collector{want: want, done: make(chan struct{})} }

func (c *collector) WriteSample(s media.Sample) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.samples = append(c.samples, media.Sample{Data: append([]byte(nil), s.Data...), Duration: s.Duration})
	if len(c.samples) == c.want {
		close(c.done)
	}
	return nil
}

func play(t *testing.T, want int, run func(ctx context.Context, c *collector) error) ([]media.Sample, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := newCollector(want)
	errc := make(chan error, 1)
	start := time.Now()
	go func() { errc <- run(ctx, c) }()
	select {
	case <-c.done:
	case <-ctx.Done():
		t.Fatalf("only %d of %d samples before deadline", len(c.samples), want)
	}
	elapsed := time.Since(start)
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("player: %v", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]media.Sample(nil), c.samples[:want]...), elapsed
}

func TestPlayIVFLoopsInRealTime(t *testing.T) {
	// 4 s file at 15 fps = 60 frames; 75 frames proves it loops.
	samples, elapsed := play(t, 75, func(ctx context.Context, c *collector) error { return PlayIVF(ctx, Path(VP8), c) })
	if elapsed < 4*time.Second {
		t.Fatalf("75 frames at 15 fps took %v: not paced in real time", elapsed)
	}
	// VP8 payload header: bit 0 of the first byte is 0 for keyframes.
	if samples[0].Data[0]&1 != 0 {
		t.Fatalf("first frame is not a keyframe")
	}
	keyframes := 0
	for _, s := range samples {
		if s.Data[0]&1 == 0 {
			keyframes++
		}
		if s.Duration < 60*time.Millisecond || s.Duration > 70*time.Millisecond {
			t.Fatalf("frame duration %v, want ~66ms", s.Duration)
		}
	}
	if keyframes < 5 {
		t.Fatalf("%d keyframes in 5 s, want one per second", keyframes)
	}
}

func TestPlayOggWritesOpusPackets(t *testing.T) {
	samples, _ := play(t, 30, func(ctx context.Context, c *collector) error { return PlayOgg(ctx, Path(Opus), c) })
	for i, s := range samples {
		if s.Duration != 20*time.Millisecond {
			t.Fatalf("sample %d duration %v, want 20ms", i, s.Duration)
		}
		if len(s.Data) == 0 || string(s.Data[:min(8, len(s.Data))]) == "OpusHead" {
			t.Fatalf("sample %d is not an Opus packet", i)
		}
	}
}

func TestPlayH264StartsWithParameterSets(t *testing.T) {
	samples, _ := play(t, 10, func(ctx context.Context, c *collector) error { return PlayH264(ctx, Path(H264), 15, c) })
	if typ := samples[0].Data[0] & 0x1f; typ != 7 && typ != 9 {
		t.Fatalf("first NAL type %d, want SPS (7) or AUD (9)", typ)
	}
}

func TestPlayMissingFile(t *testing.T) {
	if err := PlayIVF(context.Background(), Path("nope.ivf"), newCollector(1)); err == nil {
		t.Fatal("want error for a missing file")
	}
}
