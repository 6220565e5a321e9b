package signaling_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/rtcio-gateway/rtcio-gateway/gateway/signaling"
	"github.com/rtcio-gateway/rtcio-gateway/internal/gatewaytest"
)

func TestRoomScenarioGoClient(t *testing.T) {
	gw := gatewaytest.StartGateway(t, gatewaytest.TestConfig())
	runRoomScenario(t, func(name string) sigClient {
		return dialGo(t, gw.URL, name, dialOptions{})
	})
}

// refusal waits for the gateway-error event with the given code.
func refusal(c sigClient, code string) received {
	return c.Wait("gateway-error", func(o map[string]any) bool { return o["code"] == code })
}

func joinPair(t *testing.T, url, room string) (a, b *goClient) {
	a = dialGo(t, url, "a", dialOptions{})
	b = dialGo(t, url, "b", dialOptions{})
	a.Emit("join-room", map[string]any{"roomId": room, "name": "a"})
	a.Wait("join-ok", nil)
	b.Emit("join-room", map[string]any{"roomId": room, "name": "b"})
	b.Wait("join-ok", nil)
	return a, b
}

// TestHardeningRefusals sends each kind of bad request and checks it is
// refused with its documented reason while the room keeps working, including
// the null payload that crashes the reference server.
func TestHardeningRefusals(t *testing.T) {
	cfg := gatewaytest.TestConfig()
	cfg.Signaling.MaxPayloadBytes = 4 << 10
	cfg.Signaling.MessagesPerSecond = 20
	cfg.Signaling.MessageBurst = 40
	cfg.Signaling.MaxRoomsPerSocket = 2
	gw := gatewaytest.StartGateway(t, cfg)
	a, b := joinPair(t, gw.URL, "hardening")
	outsider := dialGo(t, gw.URL, "outsider", dialOptions{})
	outsider.Emit("join-room", map[string]any{"roomId": "elsewhere", "name": "o"})
	outsider.Wait("join-ok", nil)

	data := map[string]any{"mid": "x"}
	cases := []struct {
		name string
		send func()
		code string
	}{
		{"forged source", func() {
			a.Emit("#rtcio:message", map[string]any{"source": b.ID(), "target": b.ID(), "data": data})
		}, "forged-source"},
		{"target outside the sender's rooms", func() {
			a.Emit("#rtcio:message", map[string]any{"source": a.ID(), "target": outsider.ID(), "data": data})
		}, "no-shared-room"},
		{"unknown target", func() {
			a.Emit("#rtcio:message", map[string]any{"target": "no-such-socket", "data": data})
		}, "no-shared-room"},
		{"oversized payload", func() {
			a.Emit("#rtcio:message", map[string]any{"target": b.ID(), "data": map[string]any{"sdp": strings.Repeat("x", 8<<10)}})
		}, "payload-too-large"},
		{"null payload", func() { a.Emit("#rtcio:message", nil) }, "invalid-payload"},
		{"string payload", func() { a.Emit("#rtcio:message", "hello") }, "invalid-payload"},
		{"no payload", func() { a.Emit("#rtcio:message") }, "missing-field"},
		{"missing target", func() { a.Emit("#rtcio:message", map[string]any{"data": data}) }, "missing-field"},
		{"missing data", func() { a.Emit("#rtcio:message", map[string]any{"target": b.ID()}) }, "missing-field"},
		{"non-string target", func() { a.Emit("#rtcio:message", map[string]any{"target": 7, "data": data}) }, "invalid-payload"},
		{"join without roomId", func() { a.Emit("join-room", map[string]any{"name": "x"}) }, "missing-field"},
		{"room name too long", func() { a.Emit("join-room", map[string]any{"roomId": strings.Repeat("r", 200)}) }, "room-name-too-long"},
		{"media-state for a room not joined", func() {
			a.Emit("media-state", map[string]any{"roomId": "elsewhere", "mic": true, "cam": true})
		}, "not-in-room"},
		{"client sends a server-only event", func() { a.Emit("#rtcio:init-offer", map[string]any{"source": "x"}) }, "reserved-event"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.send()
			ev := refusal(a, tc.code)
			if msg, _ := ev.obj()["message"].(string); msg == "" {
				t.Errorf("refusal %s has no message: %v", tc.code, ev.obj())
			}
		})
	}

	// Rooms per socket: a is in one room; a second is fine, a third is not.
	a.Emit("join-room", map[string]any{"roomId": "second"})
	a.Wait("join-ok", func(o map[string]any) bool { return o["roomId"] == "second" })
	a.Emit("join-room", map[string]any{"roomId": "third"})
	refusal(a, "too-many-rooms")
	a.Wait("join-error", func(o map[string]any) bool { return o["reason"] == "too-many-rooms" })

	// The room still works after all that: a legitimate message gets through.
	a.Emit("#rtcio:message", map[string]any{"target": b.ID(), "data": data})
	if got := b.Wait("#rtcio:message", bySource(a.ID())); got.obj()["target"] != b.ID() {
		t.Fatalf("relay after refusals: %v", got.obj())
	}
	for _, ev := range b.Events() {
		if ev.Event == "#rtcio:message" && ev.obj()["source"] != a.ID() {
			t.Errorf("b received a message with a source other than a: %v", ev.obj())
		}
	}

	// A flood above the rate limit is refused, and the flooder's room mate
	// is still served afterwards.
	for range 200 {
		a.Emit("media-state", map[string]any{"roomId": "hardening", "mic": true, "cam": true})
	}
	refusal(a, "rate-limited")
	b.Emit("#rtcio:message", map[string]any{"target": a.ID(), "data": data})
	a.Wait("#rtcio:message", bySource(b.ID()))
	refused := gw.Server.Signaling().Refusals()
	for _, code := range []string{"forged-source", "no-shared-room", "payload-too-large", "invalid-payload", "missing-field", "rate-limited"} {
		if refused[signalingReason(code)] == 0 {
			t.Errorf("refusal counter for %s did not move: %v", code, refused)
		}
	}
}

func TestTokenCheck(t *testing.T) {
	const secret = "0123456789abcdef0123456789abcdef"
	cfg := gatewaytest.TestConfig()
	cfg.Auth.JWTSecret = secret
	gw := gatewaytest.StartGateway(t, cfg)

	sign := func(claims jwt.MapClaims) string {
		tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(secret))
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	exp := time.Now().Add(time.Hour).Unix()

	if _, err := tryDialGo(t, gw.URL, "anonymous", dialOptions{}); err == nil || !strings.Contains(err.Error(), "unauthorized") {
		t.Errorf("connect without token: err = %v, want unauthorized", err)
	}
	bad := jwt.MapClaims{"exp": exp}
	badTok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, bad).SignedString([]byte("another secret, 32 bytes long!!!"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tryDialGo(t, gw.URL, "forger", dialOptions{auth: map[string]any{"token": badTok}}); err == nil {
		t.Errorf("connect with a token signed by another key succeeded")
	}
	expired := sign(jwt.MapClaims{"exp": time.Now().Add(-time.Minute).Unix()})
	if _, err := tryDialGo(t, gw.URL, "expired", dialOptions{auth: map[string]any{"token": expired}}); err == nil {
		t.Errorf("connect with an expired token succeeded")
	}

	c := dialGo(t, gw.URL, "restricted", dialOptions{auth: map[string]any{"token": sign(jwt.MapClaims{"exp": exp, "rooms": []string{"team-*", "lobby"}})}})
	c.Emit("join-room", map[string]any{"roomId": "team-blue"})
	c.Wait("join-ok", func(o map[string]any) bool { return o["roomId"] == "team-blue" })
	c.Emit("join-room", map[string]any{"roomId": "lobby"})
	c.Wait("join-ok", func(o map[string]any) bool { return o["roomId"] == "lobby" })
	c.Emit("join-room", map[string]any{"roomId": "secret"})
	refusal(c, "room-not-allowed")
}

func TestOriginAllowList(t *testing.T) {
	cfg := gatewaytest.TestConfig()
	cfg.CORS.AllowedOrigins = []string{"https://app.example.com"}
	gw := gatewaytest.StartGateway(t, cfg)
	for _, tc := range []struct {
		origin string
		want   int
	}{
		{"https://app.example.com", 200},
		{"https://evil.example.com", 403},
		{"", 200},
		{strings.TrimPrefix(gw.URL, ""), 200}, // same origin
	} {
		code, allow := pollHandshake(t, gw.URL, tc.origin)
		if (code == 200) != (tc.want == 200) {
			t.Errorf("origin %q: status %d, want %d", tc.origin, code, tc.want)
		}
		if tc.want == 200 && tc.origin == "https://app.example.com" && allow != tc.origin {
			t.Errorf("origin %q: Access-Control-Allow-Origin = %q", tc.origin, allow)
		}
	}
}

func signalingReason(code string) signaling.Reason { return signaling.Reason(code) }

// pollHandshake opens an Engine.IO polling session the way a browser page
// from origin would, returning the status and the CORS header.
func pollHandshake(t *testing.T, base, origin string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(waitCtx(t), http.MethodGet, base+"/socket.io/?EIO=4&transport=polling", nil)
	if err != nil {
		t.Fatal(err)
	}
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin")
}
