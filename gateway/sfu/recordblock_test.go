package sfu_test

import (
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/rtcio-gateway/rtcio-gateway/config"
	"github.com/rtcio-gateway/rtcio-gateway/gateway"
	"github.com/rtcio-gateway/rtcio-gateway/gateway/sfu"
	"github.com/rtcio-gateway/rtcio-gateway/internal/gatewaytest"
	"github.com/rtcio-gateway/rtcio-gateway/internal/testenv"
	"github.com/rtcio-gateway/rtcio-gateway/recorder"
	"github.com/rtcio-gateway/rtcio-gateway/rtcio"
)

// arrivals notes when each relayed chat event reached a client.
type arrivals struct {
	mu      sync.Mutex
	at      []time.Time
	changed chan struct{}
}

func (a *arrivals) add() {
	a.mu.Lock()
	a.at = append(a.at, time.Now())
	a.mu.Unlock()
	select {
	case a.changed <- struct{}{}:
	default:
	}
}

// waitCount waits until n events arrived in all.
func (a *arrivals) waitCount(t *testing.T, n int) {
	t.Helper()
	deadline := time.After(waitFor)
	for {
		a.mu.Lock()
		got := len(a.at)
		a.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-a.changed:
		case <-deadline:
			t.Fatalf("%d chat events relayed, want %d", got, n)
		}
	}
}

// maxGap is the longest wait between two arrivals from index from on.
func (a *arrivals) maxGap(from int) (time.Duration, int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	var gap time.Duration
	for i := max(from, 1); i < len(a.at); i++ {
		gap = max(gap, a.at[i].Sub(a.at[i-1]))
	}
	return gap, len(a.at)
}

// TestChatFlowsWhileRecordingStartsOnAStalledDisk: a stream's recording
// starts while the recording disk blocks every write (fsfreeze) for about
// a second. Creating the recording's files waits for the disk, but the
// room's ctrl relay (on the gateway peer's dispatcher) does not: a chat
// event every 10 ms keeps arriving at the other client.
func TestChatFlowsWhileRecordingStartsOnAStalledDisk(t *testing.T) {
	disk := testenv.MountFreezable(t)
	n := newNotices()
	cfg := gatewaytest.SFUConfig()
	cfg.Recording = config.Recording{Mode: "all", Dir: disk.Dir, FlushInterval: 200 * time.Millisecond}
	gw := gatewaytest.StartGateway(t, cfg, gateway.WithStreamNotices(n.add))
	const room = "stalled-disk"
	a := dial(t, gw.URL, room)
	b := dialNoJoin(t, gw.URL)
	got := &arrivals{changed: make(chan struct{}, 1)}
	b.On("chat", func(*rtcio.Event) { got.add() })
	join(t, b.Socket, room)

	stop := make(chan struct{})
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
				_ = a.Emit("chat", i)
			}
		}
	}()
	defer func() { close(stop); <-sent }()
	got.waitCount(t, 20) // the relay works

	disk.Freeze(t)
	frozenAt := time.Now()
	_, from := got.maxGap(0)
	st := publishFixture(t, a.Socket, "camera", "stalled-cam", map[string]any{"name": "a"})
	n.wait(t, "published", func(x sfu.Notice) bool { return x.Kind == sfu.StreamPublished && x.Stream == st.ID() })
	got.waitCount(t, from+100) // about a second of chat with the disk frozen
	if m, _ := filepath.Glob(filepath.Join(disk.Dir, "*", "*"+recorder.RoomManifestSuffix)); len(m) != 0 {
		t.Fatalf("the recording wrote %v while its disk was frozen: the test did not stall it", m)
	}
	gap, count := got.maxGap(from)
	frozenFor := time.Since(frozenAt)
	disk.Thaw(t)
	t.Logf("disk frozen %v while the recording started; %d chat events relayed meanwhile, longest gap %v", frozenFor.Round(time.Millisecond), count-from, gap.Round(time.Millisecond))
	if gap >= frozenFor/2 {
		t.Errorf("chat relay stalled %v while the recording's disk was frozen for %v", gap, frozenFor)
	}
	// And the recording itself went on once the disk came back.
	deadline := time.Now().Add(waitFor)
	for {
		if m, _ := filepath.Glob(filepath.Join(disk.Dir, "*", "*"+recorder.RoomManifestSuffix)); len(m) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no room manifest after the disk was thawed")
		}
		time.Sleep(20 * time.Millisecond) // files appear with no event to wait on
	}
}
