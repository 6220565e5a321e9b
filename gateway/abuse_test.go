package gateway_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/rtcio-gateway/rtcio-gateway/config"
	"github.com/rtcio-gateway/rtcio-gateway/gateway/sfu"
	"github.com/rtcio-gateway/rtcio-gateway/internal/gatewaytest"
	"github.com/rtcio-gateway/rtcio-gateway/internal/mediafixture"
	"github.com/rtcio-gateway/rtcio-gateway/rtcio"
)

const testSecret = "abuse-test-secret-0123456789abcdef"

func token(t *testing.T, claims jwt.MapClaims) string {
	t.Helper()
	if _, ok := claims["exp"]; !ok {
		claims["exp"] = time.Now().Add(time.Hour).Unix()
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(testSecret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// sigClient is a socket.io client whose events a test waits on.
type sigClient struct {
	rtcio.Signaling
	mu      sync.Mutex
	events  []sigEvent
	changed chan struct{}
}

type sigEvent struct {
	name string
	args []any
}

func dialSig(t *testing.T, url, tok string) *sigClient {
	t.Helper()
	var auth map[string]any
	if tok != "" {
		auth = map[string]any{"token": tok}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, closeFn, err := rtcio.DialSignaling(ctx, url, auth)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(closeFn)
	c := &sigClient{Signaling: s, changed: make(chan struct{})}
	s.Subscribe(func(name string, args []any) {
		c.mu.Lock()
		c.events = append(c.events, sigEvent{name, args})
		close(c.changed)
		c.changed = make(chan struct{})
		c.mu.Unlock()
	})
	return c
}

// wait returns the first event named name whose first argument (an
// object) has field == value ("" field: any).
func (c *sigClient) wait(t *testing.T, name, field, value string) sigEvent {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		c.mu.Lock()
		for _, ev := range c.events {
			if ev.name != name {
				continue
			}
			if field == "" {
				c.mu.Unlock()
				return ev
			}
			if len(ev.args) > 0 {
				if m, ok := ev.args[0].(map[string]any); ok && fmt.Sprint(m[field]) == value {
					c.mu.Unlock()
					return ev
				}
			}
		}
		ch := c.changed
		c.mu.Unlock()
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("%s: no %s event with %s=%s; got %v", c.ID(), name, field, value, c.all())
		}
	}
}

func (c *sigClient) all() []sigEvent {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]sigEvent(nil), c.events...)
}

func (c *sigClient) emit(t *testing.T, name string, arg map[string]any) {
	t.Helper()
	if err := c.Emit(name, arg); err != nil {
		t.Fatal(err)
	}
}

// TestAbuseRecordingNeedsRoomRights (finding 2): a client whose token
// allows only team-* rooms, refused entry to "board", can neither start a
// recording of board nor stop the one the operator started; a member of
// another room cannot either. The operator's recording keeps running.
func TestAbuseRecordingNeedsRoomRights(t *testing.T) {
	cfg := gatewaytest.SFUConfig()
	cfg.Auth.JWTSecret = testSecret
	cfg.Admin.Token = "admin-token-abuse"
	cfg.Recording.Dir = t.TempDir()
	gw := gatewaytest.StartGateway(t, cfg)

	member := dialPublisher(t, gw.URL, token(t, jwt.MapClaims{"sub": "member"}), "board")
	room := waitSFURoom(t, gw, "board")
	if code, body := do(t, http.MethodPost, gw.URL+"/admin/v1/rooms/board/recording/start", cfg.Admin.Token); code != http.StatusOK {
		t.Fatalf("operator start = %d %s", code, body)
	}
	waitFor(t, "the operator's recording", func() bool { return len(room.Recordings()) > 0 })
	_ = member

	outsider := dialSig(t, gw.URL, token(t, jwt.MapClaims{"sub": "outsider", "rooms": []string{"team-*"}}))
	outsider.emit(t, "join-room", map[string]any{"roomId": "board", "name": "o"})
	outsider.wait(t, "join-error", "roomId", "board")
	outsider.emit(t, "join-room", map[string]any{"roomId": "team-a", "name": "o"})
	outsider.wait(t, "join-ok", "roomId", "team-a")
	outsider.emit(t, "recording", map[string]any{"roomId": "board", "action": "stop"})
	outsider.wait(t, "gateway-error", "code", "room-not-allowed")
	outsider.emit(t, "recording", map[string]any{"roomId": "board", "action": "start"})
	outsider.wait(t, "gateway-error", "code", "room-not-allowed")

	// A token that would allow the room does not help a non-member.
	other := dialSig(t, gw.URL, token(t, jwt.MapClaims{"sub": "other"}))
	other.emit(t, "join-room", map[string]any{"roomId": "elsewhere", "name": "x"})
	other.wait(t, "join-ok", "roomId", "elsewhere")
	other.emit(t, "recording", map[string]any{"roomId": "board", "action": "stop"})
	other.wait(t, "gateway-error", "code", "not-in-room")

	// Every refusal above has been answered, so each was handled: the
	// operator's recording is still running.
	if len(room.Recordings()) == 0 {
		t.Errorf("the operator's recording was stopped by a client without rights to the room")
	}
}

// waitFor polls cond until it holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-time.After(10 * time.Millisecond)
	}
}

// dialPublisher joins room as a Go rtc.io client publishing the looping
// VP8 + Opus fixture as "camera".
func dialPublisher(t *testing.T, url, tok, room string) *rtcio.Socket {
	t.Helper()
	api, err := rtcio.LoopbackAPI()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := rtcio.Dial(ctx, url, rtcio.Options{API: api, Auth: map[string]any{"token": tok}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if err := s.Server().Emit("join-room", map[string]any{"roomId": room, "name": "publisher"}); err != nil {
		t.Fatal(err)
	}
	audio, err := mediafixture.NewOpusTrack("a-"+room, "cam-"+room)
	if err != nil {
		t.Fatal(err)
	}
	video, err := mediafixture.NewVP8Track("v-"+room, "cam-"+room)
	if err != nil {
		t.Fatal(err)
	}
	playCtx, stop := context.WithCancel(context.Background())
	wait := mediafixture.PlayVP8AndOpus(playCtx, video, audio)
	t.Cleanup(func() { stop(); wait() })
	st, err := rtcio.NewStream(audio, video)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Emit("camera", map[string]any{"stream": st}); err != nil {
		t.Fatal(err)
	}
	return s
}

// waitSFURoom waits for the media side of an SFU room (its gateway peer
// joins just after the first client).
func waitSFURoom(t *testing.T, gw *gatewaytest.Gateway, room string) *sfu.Room {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if r := gw.Server.SFU().Room(room); r != nil {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("SFU room %s never got its gateway peer", room)
		}
		<-time.After(10 * time.Millisecond)
	}
}

// TestAbuseTokenExpiryDuringSession (finding 9): a socket whose token
// expires is told (gateway-error token-expired) and disconnected; TURN
// credentials over HTTP need a valid token when auth is on.
func TestAbuseTokenExpiryDuringSession(t *testing.T) {
	cfg := gatewaytest.TestConfig()
	cfg.Auth.JWTSecret = testSecret
	cfg.TURN.Secret = "turn-secret-0123456789"
	cfg.TURN.URIs = []string{"turn:127.0.0.1:3478"}
	gw := gatewaytest.StartGateway(t, cfg)

	if code, _ := get(t, gw.URL+"/turn-credentials", ""); code != http.StatusUnauthorized {
		t.Errorf("TURN credentials without a token = %d, want 401", code)
	}
	good := token(t, jwt.MapClaims{"sub": "alice"})
	if code, body := get(t, gw.URL+"/turn-credentials", good); code != http.StatusOK {
		t.Errorf("TURN credentials with a token = %d %s, want 200", code, body)
	}
	expired := token(t, jwt.MapClaims{"sub": "alice", "exp": time.Now().Add(-time.Minute).Unix()})
	if code, _ := get(t, gw.URL+"/turn-credentials?token="+expired, ""); code != http.StatusUnauthorized {
		t.Errorf("TURN credentials with an expired token = %d, want 401", code)
	}

	// JWT expiry has a one-second resolution, so a token "two seconds from
	// now" may have only one left: on a loaded machine the dial and join
	// took longer, and the handshake was refused as unauthorized. Five
	// seconds leave the join time; the session still outlives its token.
	short := dialSig(t, gw.URL, token(t, jwt.MapClaims{"sub": "bob", "exp": time.Now().Add(5 * time.Second).Unix()}))
	short.emit(t, "join-room", map[string]any{"roomId": "r", "name": "b"})
	short.wait(t, "join-ok", "roomId", "r")
	short.wait(t, "gateway-error", "code", "token-expired")
	short.wait(t, "disconnect", "", "")
}

// TestAbuseSmallerFindings (finding 10): turn.ttl's default validates with
// TURN on; kicking the room's gateway participant is refused; a foreign
// origin's WebSocket gets 403; /metrics is not public by default.
func TestAbuseSmallerFindings(t *testing.T) {
	c := config.Default()
	c.TURN.Secret, c.TURN.URIs = "turn-secret-0123456789", []string{"turn:127.0.0.1:3478"}
	if err := c.Validate(); err != nil {
		t.Errorf("TURN with the default turn.ttl does not validate: %v", err)
	}

	cfg := gatewaytest.SFUConfig()
	cfg.Admin.Token = "admin-token-abuse"
	gw := gatewaytest.StartGateway(t, cfg)
	a := dialSig(t, gw.URL, "")
	a.emit(t, "join-room", map[string]any{"roomId": "kick", "name": "a"})
	a.wait(t, "join-ok", "roomId", "kick")
	gwPeer := waitSFURoom(t, gw, "kick").PeerID()
	if code, body := do(t, http.MethodDelete, gw.URL+"/admin/v1/sockets/"+gwPeer, cfg.Admin.Token); code != http.StatusConflict {
		t.Errorf("kicking the gateway participant = %d %s, want 409", code, body)
	}
	b := dialSig(t, gw.URL, "")
	b.emit(t, "join-room", map[string]any{"roomId": "kick", "name": "b"})
	b.wait(t, "join-ok", "roomId", "kick")
	b.wait(t, "#rtcio:message", "source", gwPeer) // the gateway peer still offers

	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, gw.URL+"/socket.io/?EIO=4&transport=websocket", nil)
	req.Header.Set("Origin", "https://evil.example")
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("foreign-origin WebSocket = %d, want 403", resp.StatusCode)
	}

	if code, _ := get(t, gw.URL+"/metrics", ""); code != http.StatusUnauthorized {
		t.Errorf("/metrics without the admin token = %d, want 401", code)
	}
	if code, _ := get(t, gw.URL+"/metrics", cfg.Admin.Token); code != http.StatusOK {
		t.Errorf("/metrics with the admin token = %d, want 200", code)
	}
}

// TestAbuseIdleConnectionsAreBounded (finding 6): idle keep-alive
// connections are closed after http.idle_timeout, connections past
// http.max_connections get 503 at once, and the health probe answers again
// as soon as the idle ones are gone.
func TestAbuseIdleConnectionsAreBounded(t *testing.T) {
	cfg := gatewaytest.TestConfig()
	cfg.HTTP.IdleTimeout = 500 * time.Millisecond
	cfg.HTTP.MaxConnections = 20
	gw := gatewaytest.StartGateway(t, cfg)
	addr := strings.TrimPrefix(gw.URL, "http://")

	var idle []net.Conn
	for range cfg.HTTP.MaxConnections {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		// One request, then the connection sits idle, kept alive.
		fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		idle = append(idle, c)
	}
	// Past the bound: 503 at once, whatever the idle ones do.
	extra, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(extra, "GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
	resp, err := http.ReadResponse(bufio.NewReader(extra), nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	_ = extra.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("connection past http.max_connections = %d, want 503", resp.StatusCode)
	}
	// The server closes every idle connection (EOF on read).
	for _, c := range idle {
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("idle connection: read = %v, want EOF from the server's idle timeout", err)
		}
	}
	// Slots are free again (a closed connection frees its slot as soon as
	// the server's Close returns; poll until then).
	deadline := time.Now().Add(10 * time.Second)
	for {
		if code, _ := get(t, gw.URL+"/healthz", ""); code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("/healthz did not answer after the idle connections were closed")
		}
	}
}
