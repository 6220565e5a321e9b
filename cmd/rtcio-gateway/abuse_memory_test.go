package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/rtcio-gateway/rtcio-gateway/internal/mediafixture"
	"github.com/rtcio-gateway/rtcio-gateway/internal/testenv"
	"github.com/rtcio-gateway/rtcio-gateway/rtcio"
)

// memoryLimit is what the process runs under (GOMEMLIMIT) and rssBound the
// resident size it must stay under while attacked; both are in README's
// "Limits and abuse".
const (
	memoryLimit = "512MiB"
	rssBound    = 384 << 20
)

// abuseDuration is how long each attack runs: short in the suite, 60 s for
// the acceptance run (RTCIO_ABUSE_SECONDS=60).
func abuseDuration(t *testing.T) time.Duration {
	if v := os.Getenv("RTCIO_ABUSE_SECONDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("RTCIO_ABUSE_SECONDS=%q: %v", v, err)
		}
		return time.Duration(n) * time.Second
	}
	return 4 * time.Second
}

// rssOf reads a process's resident set size.
func rssOf(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmRSS for pid %d", pid)
}

// TestAbuseMemoryBound (acceptance 2): the real gateway process, under
// GOMEMLIMIT=512MiB, faces findings 3 (non-reading flooders), 4 (a
// publisher cycling SSRCs, reconnecting whenever it is closed) and 5
// (clients joining SFU rooms and never answering), one after the other. It
// must not die, and its RSS, sampled throughout, must stay under rssBound.
func TestAbuseMemoryBound(t *testing.T) {
	t.Setenv("GOMEMLIMIT", memoryLimit)
	gw := testenv.StartGatewayProcess(t, "--log-level", "warn")
	d := abuseDuration(t)
	var peak int64
	sample := func(phase string, until time.Time) {
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		var top int64
		for time.Now().Before(until) {
			<-tick.C
			if err, exited := gw.Wait(0); exited {
				t.Fatalf("%s: the gateway exited: %v", phase, err)
			}
			rss, err := rssOf(gw.PID())
			if err != nil {
				t.Fatal(err)
			}
			top = max(top, rss)
		}
		peak = max(peak, top)
		t.Logf("%s for %v: peak RSS %.1f MiB", phase, d, float64(top)/(1<<20))
	}

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() { defer wg.Done(); floodWithoutReading(ctx, gw.URL) }()
	}
	sample("finding 3: 8 non-reading flooders", time.Now().Add(d))
	cancel()
	wg.Wait()

	ctx, cancel = context.WithCancel(context.Background())
	wg.Add(1)
	go func() { defer wg.Done(); cycleSSRCs(ctx, gw.URL) }()
	sample("finding 4: a publisher cycling SSRCs at 1000 packets/s", time.Now().Add(d))
	cancel()
	wg.Wait()

	ctx, cancel = context.WithCancel(context.Background())
	for i := range 125 {
		wg.Add(1)
		go func() { defer wg.Done(); joinSilently(ctx, gw.URL, i) }()
	}
	sample("finding 5: 125 sockets x 8 SFU rooms that never answer", time.Now().Add(d))
	cancel()
	wg.Wait()

	if peak > rssBound {
		t.Errorf("peak RSS %.1f MiB, bound %d MiB", float64(peak)/(1<<20), rssBound>>20)
	}
}

// floodWithoutReading sends refused events over a WebSocket it never reads,
// reconnecting whenever the gateway drops it, until ctx ends.
func floodWithoutReading(ctx context.Context, url string) {
	u := "ws" + strings.TrimPrefix(url, "http") + "/socket.io/?EIO=4&transport=websocket"
	frame := []byte(`42["#rtcio:init-offer",{"source":"` + strings.Repeat("x", 1000) + `"}]`)
	for ctx.Err() == nil {
		ws, resp, err := websocket.DefaultDialer.DialContext(ctx, u, http.Header{})
		if err != nil {
			return
		}
		if resp != nil && resp.Body != nil {
			_ = resp.Body.Close()
		}
		if _, _, err := ws.ReadMessage(); err == nil {
			_ = ws.WriteMessage(websocket.TextMessage, []byte("40"))
			for ctx.Err() == nil {
				_ = ws.SetWriteDeadline(time.Now().Add(time.Second))
				if ws.WriteMessage(websocket.TextMessage, frame) != nil {
					break
				}
			}
		}
		_ = ws.Close()
	}
}

// cycleSSRCs publishes a track with a new SSRC on every packet, and
// publishes again from a new connection whenever the gateway closes it.
func cycleSSRCs(ctx context.Context, url string) {
	api, err := rtcio.LoopbackAPI()
	if err != nil {
		return
	}
	for ctx.Err() == nil {
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		s, err := rtcio.Dial(dctx, url, rtcio.Options{API: api})
		cancel()
		if err != nil {
			return
		}
		_ = s.Server().Emit("join-room", map[string]any{"roomId": "ssrc-abuse", "name": "cycler"})
		tr := mediafixture.NewRawTrack("cycle", "cycle-cam")
		tr.CycleSSRC.Store(true)
		if st, err := rtcio.NewStream(tr); err == nil {
			_ = s.Emit("camera", map[string]any{"stream": st})
		}
		closed := make(chan struct{})
		s.On(rtcio.EventPeerDisconnect, func(*rtcio.Event) {
			select {
			case <-closed:
			default:
				close(closed)
			}
		})
		pctx, stop := context.WithCancel(ctx)
		go func() {
			select {
			case <-closed:
			case <-time.After(5 * time.Second): // never connected: try again
			case <-pctx.Done():
			}
			stop()
		}()
		tr.Play(pctx, time.Millisecond)
		stop()
		_ = s.Close()
	}
}

// joinSilently joins eight SFU rooms over plain socket.io and never answers
// the gateway peers' offers, until ctx ends.
func joinSilently(ctx context.Context, url string, i int) {
	dctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	s, closeFn, err := rtcio.DialSignaling(dctx, url, nil)
	cancel()
	if err != nil {
		return
	}
	defer closeFn()
	for r := range 8 {
		_ = s.Emit("join-room", map[string]any{"roomId": fmt.Sprintf("silent-%d", (i+r)%8), "name": "silent"})
	}
	<-ctx.Done()
}
