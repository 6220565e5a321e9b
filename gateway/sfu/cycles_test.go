package sfu_test

import (
	"testing"
	"time"

	"github.com/rtcio-gateway/rtcio-gateway/gateway/sfu"
	"github.com/rtcio-gateway/rtcio-gateway/rtcio"
)

func roomStats(t *testing.T, m *sfu.Manager, room string) sfu.RoomStats {
	t.Helper()
	for _, st := range m.Stats() {
		if st.Room == room {
			return st
		}
	}
	t.Fatalf("no SFU room %s", room)
	return sfu.RoomStats{}
}

// TestSFUJoinLeaveCycles: a hundred clients join a room with a live stream,
// receive it, and leave; afterwards the room holds only the publisher's
// peer connection, publications and no down-track of a client that left
// (goroutines are checked by the package's leak check).
func TestSFUJoinLeaveCycles(t *testing.T) {
	cycles := 100
	if testing.Short() {
		cycles = 10
	}
	gw, _ := startSFU(t)
	const room = "cycles"
	pub := dial(t, gw.URL, room)
	st := publishFixture(t, pub.Socket, "camera", "cycles-cam", map[string]any{"name": "p"})
	for i := range cycles {
		c := dial(t, gw.URL, room)
		cam := collect(c.Socket, "camera")
		cam.next(t, "camera")
		c.waitRTP(t, 1, trackIDs(st)...)
		if i%2 == 0 {
			// Half leave the room and keep their socket, half go away.
			if err := c.Server().Emit("leave-room", map[string]any{"roomId": room}); err != nil {
				t.Fatal(err)
			}
		}
		_ = c.Close()
	}
	deadline := time.Now().Add(waitFor)
	tick := time.NewTicker(50 * time.Millisecond) // the state has no event to wait on
	defer tick.Stop()
	for {
		s := roomStats(t, gw.Server.SFU(), room)
		if s.Peers == 1 && s.Publications == len(st.Tracks()) && s.DownTracks == 0 {
			t.Logf("after %d cycles: %+v", cycles, s)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %d cycles the room still holds %+v, want 1 peer, %d publications, 0 down-tracks", cycles, s, len(st.Tracks()))
		}
		<-tick.C
	}
}

// TestSFUStalledSubscriberDoesNotSlowOthers: one subscriber stops reading
// its tracks; another subscriber's packet rate stays within 5% of its rate
// before the stall.
func TestSFUStalledSubscriberDoesNotSlowOthers(t *testing.T) {
	gw, _ := startSFU(t)
	const room = "stall"
	pub := dial(t, gw.URL, room)
	st := publishFixture(t, pub.Socket, "camera", "stall-cam", map[string]any{"name": "p"})
	good := dial(t, gw.URL, room)
	stalled := dialStalled(t, gw.URL, room)
	collect(good.Socket, "camera").next(t, "camera on good")
	stalled.next(t, "camera on stalled")
	good.waitRTP(t, 50, trackIDs(st)...)

	// Two equal windows: the stalled client reads nothing in either (its
	// pion buffers fill within the first), so compare the good client's
	// rate in a window where the stall is fresh against a later one.
	const window = 2 * time.Second
	count := func() int {
		good.mu.Lock()
		defer good.mu.Unlock()
		n := 0
		for _, v := range good.packets {
			n += v
		}
		return n
	}
	measure := func() float64 {
		start, t0 := count(), time.Now()
		<-time.After(window) // the measurement window itself
		return float64(count()-start) / time.Since(t0).Seconds()
	}
	before := measure()
	after := measure()
	t.Logf("good subscriber: %.1f packets/s, then %.1f packets/s with a stalled peer", before, after)
	if after < before*0.95 {
		t.Fatalf("good subscriber slowed from %.1f to %.1f packets/s", before, after)
	}
}

// dialStalled joins a client that never reads the tracks it receives.
func dialStalled(t *testing.T, url, room string) *mailbox {
	c := dial(t, url, room)
	c.SetHooks(rtcio.Hooks{})
	return collect(c.Socket, "camera")
}
