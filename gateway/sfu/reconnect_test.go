package sfu_test

import (
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/rtcio-gateway/rtcio-gateway/gateway"
	"github.com/rtcio-gateway/rtcio-gateway/gateway/sfu"
	"github.com/rtcio-gateway/rtcio-gateway/internal/gatewaytest"
	"github.com/rtcio-gateway/rtcio-gateway/rtcio"
)

// seqLog records the RTP headers a subscriber receives on one track.
type seqLog struct {
	mu      sync.Mutex
	headers []rtp.Header
	arrival []time.Time
}

func (l *seqLog) add(h rtp.Header) {
	l.mu.Lock()
	l.headers = append(l.headers, h)
	l.arrival = append(l.arrival, time.Now())
	l.mu.Unlock()
}

func (l *seqLog) snapshot() ([]rtp.Header, []time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]rtp.Header(nil), l.headers...), append([]time.Time(nil), l.arrival...)
}

// TestSFUPublisherReconnectKeepsDownTrackContinuous: a publisher's
// connection goes away and a new one (new socket, new peer connection, new
// SSRCs) publishes the same stream. The subscriber keeps the same track,
// sees no track-removed, and its sequence numbers stay monotonic with no
// timestamp jump beyond the real gap.
func TestSFUPublisherReconnectKeepsDownTrackContinuous(t *testing.T) {
	n := newNotices()
	cfg := gatewaytest.SFUConfig()
	cfg.Media.AdoptGrace = 10 * time.Second // a reconnect under -race on 2 cores
	gw := gatewaytest.StartGateway(t, cfg, gateway.WithStreamNotices(n.add))
	const room = "reconnect"

	b := dial(t, gw.URL, room)
	video := &seqLog{}
	videoTrack := make(chan *webrtc.TrackRemote, 4)
	b.SetHooks(rtcio.Hooks{RemoteTrack: func(_ string, _ *rtcio.RemoteStream, tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		if tr.Kind() != webrtc.RTPCodecTypeVideo {
			go func() {
				for {
					if _, _, err := tr.ReadRTP(); err != nil {
						return
					}
				}
			}()
			return
		}
		videoTrack <- tr
		go func() {
			for {
				pk, _, err := tr.ReadRTP()
				if err != nil {
					return
				}
				video.add(pk.Header)
			}
		}()
	}})
	removed := collect(b.Socket, rtcio.EventTrackRemoved)
	cams := collect(b.Socket, "camera")

	a1 := dial(t, gw.URL, room)
	st := publishFixture(t, a1.Socket, "camera", "cam", map[string]any{"name": "a"})
	cams.next(t, "camera on b")
	first := <-videoTrack
	waitHeaders(t, video, 30)

	// The publisher's connection goes; a new one publishes the same stream.
	_ = a1.Close()
	a2 := dial(t, gw.URL, room)
	if err := a2.Emit("camera", map[string]any{"name": "a", "stream": st}); err != nil {
		t.Fatal(err)
	}
	n.wait(t, "adopted", func(x sfu.Notice) bool { return x.Kind == sfu.StreamAdopted && x.Stream == st.ID() })
	before, _ := video.snapshot()
	waitHeaders(t, video, len(before)+60)

	select {
	case tr := <-videoTrack:
		t.Fatalf("b got a new video track %s after the reconnect, want the old one %s", tr.ID(), first.ID())
	default:
	}
	if !removed.empty() {
		t.Fatalf("b saw track-removed across the reconnect")
	}
	if !cams.empty() {
		t.Fatalf("b saw a second camera event across the reconnect")
	}
	headers, arrival := video.snapshot()
	ssrc := headers[0].SSRC
	maxJump := 0.0
	for i := 1; i < len(headers); i++ {
		prev, cur := headers[i-1], headers[i]
		if cur.SSRC != ssrc {
			t.Fatalf("down-track SSRC changed from %d to %d", ssrc, cur.SSRC)
		}
		if d := int16(cur.SequenceNumber - prev.SequenceNumber); d <= 0 {
			t.Fatalf("sequence number went from %d to %d at packet %d", prev.SequenceNumber, cur.SequenceNumber, i)
		}
		gap := arrival[i].Sub(arrival[i-1]).Seconds()
		jump := float64(int32(cur.Timestamp-prev.Timestamp)) / 90000
		// The timestamp may not run ahead of the real gap by more than
		// the fixture's frame spacing plus scheduling noise.
		if jump-gap > 0.25 {
			t.Fatalf("timestamp jumped %.3fs over a %.3fs gap at packet %d", jump, gap, i)
		}
		if jump-gap > maxJump {
			maxJump = jump - gap
		}
	}
	t.Logf("%d packets continuous across the reconnect; largest timestamp lead over arrival %.0f ms", len(headers), maxJump*1000)
}

func waitHeaders(t *testing.T, l *seqLog, n int) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		h, _ := l.snapshot()
		if len(h) >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("got %d of %d video packets", len(h), n)
		}
		<-tick.C
	}
}
