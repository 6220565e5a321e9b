package sfu_test

import (
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/rtcio-gateway/rtcio-gateway/rtcio"
)

// bystander is a room of its own, a publisher and a subscriber, that an
// abuse test watches: whatever another client does elsewhere, its media
// must keep flowing. It records when each relayed audio packet arrives
// (Opus packets come every 20 ms, so a gap says how long relay paused).
type bystander struct {
	mu      sync.Mutex
	arrival []time.Time
	got     chan struct{}
}

// maxRelayGap is the longest pause a bystander may see while another
// client misbehaves.
const maxRelayGap = 200 * time.Millisecond

func startBystander(t *testing.T, url string) *bystander {
	t.Helper()
	b := &bystander{got: make(chan struct{}, 1)}
	room := "bystander-room"
	pub := dial(t, url, room)
	sub := dialNoJoin(t, url)
	sub.SetHooks(rtcio.Hooks{RemoteTrack: func(_ string, _ *rtcio.RemoteStream, tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		audio := tr.Kind() == webrtc.RTPCodecTypeAudio
		go func() {
			for {
				if _, _, err := tr.ReadRTP(); err != nil {
					return
				}
				if !audio {
					continue
				}
				b.mu.Lock()
				b.arrival = append(b.arrival, time.Now())
				b.mu.Unlock()
				select {
				case b.got <- struct{}{}:
				default:
				}
			}
		}()
	}})
	join(t, sub.Socket, room)
	publishFixture(t, pub.Socket, "camera", "bystander-cam", map[string]any{"name": "bystander"})
	b.waitPackets(t, 50)
	// The baseline: the same measure over a quiet second, logged so a
	// failure can be told from a machine that is simply overloaded.
	quiet := b.count()
	b.waitPackets(t, quiet+50)
	t.Logf("bystander baseline: largest gap %v with nothing else going on", b.worstGap(quiet).Round(time.Millisecond))
	return b
}

// worstGap is the largest gap between packets since mark.
func (b *bystander) worstGap(mark int) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	var worst time.Duration
	for i := max(mark, 1); i < len(b.arrival); i++ {
		worst = max(worst, b.arrival[i].Sub(b.arrival[i-1]))
	}
	return worst
}

func (b *bystander) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.arrival)
}

// waitPackets waits until n packets arrived in all.
func (b *bystander) waitPackets(t *testing.T, n int) {
	t.Helper()
	deadline := time.After(waitFor)
	for b.count() < n {
		select {
		case <-b.got:
		case <-deadline:
			t.Fatalf("bystander: %d of %d audio packets", b.count(), n)
		}
	}
}

// mark returns a point to measure gaps from.
func (b *bystander) mark() int { return b.count() }

// checkGap waits for 25 more packets (so the window spans the abuse and
// its aftermath) and fails when any gap since mark reached maxRelayGap.
func (b *bystander) checkGap(t *testing.T, mark int) {
	t.Helper()
	b.waitPackets(t, b.count()+25)
	worst := b.worstGap(mark)
	t.Logf("bystander: largest relay gap %v over %d packets", worst.Round(time.Millisecond), b.count()-mark)
	if worst >= maxRelayGap {
		t.Errorf("bystander's relay paused %v (limit %v)", worst.Round(time.Millisecond), maxRelayGap)
	}
}
