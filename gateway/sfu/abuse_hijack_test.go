package sfu_test

import (
	"context"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/pion/webrtc/v4"

	"github.com/rtcio-gateway/rtcio-gateway/gateway"
	"github.com/rtcio-gateway/rtcio-gateway/gateway/sfu"
	"github.com/rtcio-gateway/rtcio-gateway/internal/gatewaytest"
	"github.com/rtcio-gateway/rtcio-gateway/internal/mediafixture"
	"github.com/rtcio-gateway/rtcio-gateway/rtcio"
)

// Payload marks: whose media a receiver got.
const (
	victimMark   byte = 0x11
	attackerMark byte = 0xa7
)

// markWatcher is a receiving client that counts, by payload mark, every
// packet it gets on any track.
type markWatcher struct {
	*rtcio.Socket
	mu    sync.Mutex
	marks map[byte]int
	got   chan struct{}
}

func newMarkWatcher(s *rtcio.Socket) *markWatcher {
	w := &markWatcher{Socket: s, marks: make(map[byte]int), got: make(chan struct{}, 1)}
	s.SetHooks(rtcio.Hooks{RemoteTrack: func(_ string, _ *rtcio.RemoteStream, tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		go func() {
			for {
				p, _, err := tr.ReadRTP()
				if err != nil {
					return
				}
				if len(p.Payload) == 0 {
					continue
				}
				w.mu.Lock()
				w.marks[p.Payload[0]]++
				w.mu.Unlock()
				select {
				case w.got <- struct{}{}:
				default:
				}
			}
		}()
	}})
	return w
}

func (w *markWatcher) count(mark byte) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.marks[mark]
}

// waitMark waits until n more packets with mark than base arrived.
func (w *markWatcher) waitMark(t *testing.T, mark byte, n int) {
	t.Helper()
	deadline := time.After(waitFor)
	for w.count(mark) < n {
		select {
		case <-w.got:
		case <-deadline:
			t.Fatalf("%s: %d of %d packets marked %#x", w.ID(), w.count(mark), n, mark)
		}
	}
}

// dialAs connects a Go rtc.io client with a token (nil: none).
func dialAs(t *testing.T, url, token string) *rtcio.Socket {
	t.Helper()
	if token == "" {
		return dialSocket(t, url)
	}
	api, err := rtcio.LoopbackAPI()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	s, err := rtcio.Dial(ctx, url, rtcio.Options{API: api, Auth: map[string]any{"token": token}})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// publishAs publishes one raw audio track under the given RTCIOStream id
// and MediaStream id (a stream the sender made itself, or one whose ids it
// learnt as a subscriber).
func publishAs(t *testing.T, s *rtcio.Socket, id, msid string, mark byte) *mediafixture.RawTrack {
	t.Helper()
	tr := mediafixture.NewRawTrack("raw-"+s.ID(), msid)
	tr.Mark = mark
	st := rtcio.NewRelayStream(id, msid)
	if err := st.AddTrack(tr); err != nil {
		t.Fatal(err)
	}
	if err := s.Emit("camera", map[string]any{"name": "cam", "stream": st}); err != nil {
		t.Fatal(err)
	}
	playRaw(t, tr, 20*time.Millisecond)
	return tr
}

// TestAbuseStreamHijackRefused (finding 1): a room mate publishes a stream
// with the ids of another member's live stream, which every subscriber
// learns. The gateway refuses the claim (logged and counted): the observer
// and a late joiner keep getting only the victim's media, and the admin
// view still names the victim as publisher.
func TestAbuseStreamHijackRefused(t *testing.T) {
	gw, notes := startSFU(t)
	const room = "hijack"
	victim := dialAs(t, gw.URL, "")
	join(t, victim, room)
	observer := newMarkWatcher(dialAs(t, gw.URL, ""))
	join(t, observer.Socket, room)
	cams := collect(observer.Socket, "camera")
	publishAs(t, victim, "victim-stream-id", "victim-msid", victimMark)
	cams.next(t, "victim's camera on the observer")
	observer.waitMark(t, victimMark, 20)

	attacker := dialAs(t, gw.URL, "")
	join(t, attacker, room)
	publishAs(t, attacker, "victim-stream-id", "victim-msid", attackerMark)
	waitDropped(t, gw, sfu.DropStreamClaim, 1)

	base := observer.count(victimMark)
	observer.waitMark(t, victimMark, base+50)
	late := newMarkWatcher(dialAs(t, gw.URL, ""))
	join(t, late.Socket, room)
	late.waitMark(t, victimMark, 50)
	for who, w := range map[string]*markWatcher{"observer": observer, "late joiner": late} {
		if n := w.count(attackerMark); n > 0 {
			t.Errorf("%s got %d packets of the attacker's media", who, n)
		}
	}
	for _, st := range gw.Server.SFU().Room(room).Streams() {
		if st.Publisher != victim.ID() {
			t.Errorf("stream %s is listed with publisher %s, want the victim %s", st.Stream, st.Publisher, victim.ID())
		}
	}
	_ = notes
}

// waitDropped waits until a drop counter reaches n.
func waitDropped(t *testing.T, gw *gatewaytest.Gateway, reason string, n uint64) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for dropped(gw, reason) < n {
		if time.Now().After(deadline) {
			t.Fatalf("drop counter %s stayed at %d, want %d", reason, dropped(gw, reason), n)
		}
		<-tick.C
	}
}

// signToken makes a client token for subject.
func signToken(t *testing.T, secret, subject string) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": subject, "exp": time.Now().Add(time.Hour).Unix(),
	}).SignedString([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestAbuseStreamIdentityProperty (acceptance 4): random sequences of
// publish and reconnect events by the victim and by a room mate that knows
// the victim's stream ids. Whatever the sequence, no receiver ever gets the
// room mate's media, while the victim's own reconnects keep working
// (its media keeps arriving). Clients authenticate, so identities differ.
func TestAbuseStreamIdentityProperty(t *testing.T) {
	const secret = "identity-property-secret-0123456789"
	cfg := gatewaytest.SFUConfig()
	cfg.Auth.JWTSecret = secret
	cfg.Admin.Token = metricsToken
	cfg.Media.AdoptGrace = 5 * time.Second
	n := newNotices()
	gw := gatewaytest.StartGateway(t, cfg, gateway.WithStreamNotices(n.add))
	victimToken, attackerToken := signToken(t, secret, "alice"), signToken(t, secret, "mallory")
	watcherToken := signToken(t, secret, "watcher")

	const steps = 4
	rng := rand.New(rand.NewPCG(12, 2026))
	for seq := range 3 {
		room := "identity-" + strings.Repeat("x", seq+1)
		observer := newMarkWatcher(dialAs(t, gw.URL, watcherToken))
		join(t, observer.Socket, room)
		victim := dialAs(t, gw.URL, victimToken)
		join(t, victim, room)
		publishAs(t, victim, "v-id-"+room, "v-msid-"+room, victimMark)
		observer.waitMark(t, victimMark, 10)
		var trace []string
		for range steps {
			switch rng.IntN(3) {
			case 0: // the room mate claims the victim's stream
				trace = append(trace, "attacker claims")
				a := dialAs(t, gw.URL, attackerToken)
				join(t, a, room)
				before := dropped(gw, sfu.DropStreamClaim)
				publishAs(t, a, "v-id-"+room, "v-msid-"+room, attackerMark)
				waitDropped(t, gw, sfu.DropStreamClaim, before+1)
			case 1: // the victim reconnects (make before break) and continues
				trace = append(trace, "victim reconnects")
				old := victim
				victim = dialAs(t, gw.URL, victimToken)
				join(t, victim, room)
				publishAs(t, victim, "v-id-"+room, "v-msid-"+room, victimMark)
				n.wait(t, "victim's stream adopted", func(x sfu.Notice) bool {
					return x.Kind == sfu.StreamAdopted && x.Room == room && x.Publisher == victim.ID()
				})
				_ = old.Close()
			case 2: // the victim's connection drops; the room mate claims at once
				trace = append(trace, "victim drops, attacker claims")
				_ = victim.Close()
				a := dialAs(t, gw.URL, attackerToken)
				join(t, a, room)
				before := dropped(gw, sfu.DropStreamClaim)
				publishAs(t, a, "v-id-"+room, "v-msid-"+room, attackerMark)
				waitDropped(t, gw, sfu.DropStreamClaim, before+1)
				victim = dialAs(t, gw.URL, victimToken)
				join(t, victim, room)
				publishAs(t, victim, "v-id-"+room, "v-msid-"+room, victimMark)
			}
			observer.waitMark(t, victimMark, observer.count(victimMark)+10)
		}
		late := newMarkWatcher(dialAs(t, gw.URL, watcherToken))
		join(t, late.Socket, room)
		late.waitMark(t, victimMark, 10)
		t.Logf("sequence %d: %v; observer got %d victim packets", seq, trace, observer.count(victimMark))
		for who, w := range map[string]*markWatcher{"observer": observer, "late joiner": late} {
			if n := w.count(attackerMark); n > 0 {
				t.Fatalf("sequence %v: %s got %d packets of the room mate's media", trace, who, n)
			}
		}
	}
}
