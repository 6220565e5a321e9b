package testenv

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"
)

// RefServerConfig tunes the reference server. Zero values keep socket.io's
// defaults (ping every 25 s, 20 s timeout); tests of ping-timeout detection
// shorten them.
type RefServerConfig struct {
	PingInterval time.Duration
	PingTimeout  time.Duration
}

// RefServer is the reference rtc.io signaling server (test/node/refserver.mjs)
// running under Node on a loopback port.
type RefServer struct {
	proc *jsonlProc
	url  string

	listening chan int

	mu          sync.Mutex
	changed     chan struct{}
	connected   []string
	disconnects map[string]string // socket id -> socket.io reason
}

// StartRefServer runs the reference server for t and returns its base URL
// (http://127.0.0.1:PORT). It is stopped at cleanup. The test is skipped
// (failed under CI) when Node or test/node is missing.
func StartRefServer(t testing.TB) string {
	t.Helper()
	return StartRefServerWith(t, RefServerConfig{}).URL()
}

// StartRefServerWith is StartRefServer with a configuration, returning the
// server so the test can also watch connections end.
func StartRefServerWith(t testing.TB, cfg RefServerConfig) *RefServer {
	t.Helper()
	SkipIfNoNode(t)
	s, err := NewRefServer(context.Background(), t.Logf, cfg)
	if err != nil {
		t.Fatalf("start reference server: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("stop reference server: %v", err)
		}
	})
	return s
}

// NewRefServer starts the server and waits until it listens. It runs until
// Close or until ctx ends.
func NewRefServer(ctx context.Context, logf Logf, cfg RefServerConfig) (*RefServer, error) {
	s := &RefServer{
		listening:   make(chan int, 1),
		changed:     make(chan struct{}),
		disconnects: make(map[string]string),
	}
	args := []string{"0"}
	if cfg.PingInterval > 0 {
		args = append(args, "--ping-interval="+strconv.FormatInt(cfg.PingInterval.Milliseconds(), 10))
	}
	if cfg.PingTimeout > 0 {
		args = append(args, "--ping-timeout="+strconv.FormatInt(cfg.PingTimeout.Milliseconds(), 10))
	}
	proc, err := startJSONL(ctx, logf, "refserver", "refserver.mjs", s.handleLine, args...)
	if err != nil {
		return nil, err
	}
	s.proc = proc
	timer := time.NewTimer(commandTimeout)
	defer timer.Stop()
	select {
	case port := <-s.listening:
		s.url = fmt.Sprintf("http://127.0.0.1:%d", port)
		return s, nil
	case <-proc.done:
		return nil, fmt.Errorf("reference server did not start: %w", proc.exitError())
	case <-timer.C:
		_ = proc.close()
		return nil, fmt.Errorf("reference server did not listen within %v", commandTimeout)
	}
}

func (s *RefServer) handleLine(line []byte) {
	var msg struct {
		Listening *int   `json:"listening"`
		Type      string `json:"type"`
		ID        string `json:"id"`
		Reason    string `json:"reason"`
	}
	if err := json.Unmarshal(line, &msg); err != nil {
		return
	}
	if msg.Listening != nil {
		select {
		case s.listening <- *msg.Listening:
		default:
		}
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch msg.Type {
	case "connection":
		s.connected = append(s.connected, msg.ID)
	case "disconnect":
		s.disconnects[msg.ID] = msg.Reason
	default:
		return
	}
	close(s.changed)
	s.changed = make(chan struct{})
}

// URL is the server's base URL, http://127.0.0.1:PORT.
func (s *RefServer) URL() string { return s.url }

// Connected returns the ids of every socket that connected so far.
func (s *RefServer) Connected() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.connected...)
}

// WaitDisconnect waits until socket id disconnected and returns socket.io's
// server-side reason: "client namespace disconnect" for a clean DISCONNECT,
// "transport close"/"transport error"/"ping timeout" for a lost transport.
func (s *RefServer) WaitDisconnect(ctx context.Context, id string) (string, error) {
	for {
		s.mu.Lock()
		reason, ok := s.disconnects[id]
		changed := s.changed
		s.mu.Unlock()
		if ok {
			return reason, nil
		}
		select {
		case <-changed:
		case <-s.proc.done:
			return "", fmt.Errorf("waiting for %s to disconnect: %w", id, s.proc.exitError())
		case <-ctx.Done():
			return "", fmt.Errorf("waiting for %s to disconnect: %w", id, ctx.Err())
		}
	}
}

// Close stops the server and waits for it.
func (s *RefServer) Close() error {
	return s.proc.close()
}
