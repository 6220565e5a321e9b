package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rtcio-gateway/rtcio-gateway/internal/testenv"
)

func TestMain(m *testing.M) { testenv.VerifyTestMain(m) }

func runCmd(t *testing.T, environ []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, &out, &errb, environ)
	return code, out.String(), errb.String()
}

// TestConfigOverrideOrder sets keys in the file, the environment and flags:
// the flag beats the environment, which beats the file, which beats the
// default.
func TestConfigOverrideOrder(t *testing.T) {
	file := filepath.Join(t.TempDir(), "gateway.yaml")
	yaml := `listen: "127.0.0.1:1111"
log:
  level: warn
signaling:
  max_room_name_length: 50
  max_rooms_per_socket: 3
`
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"RTCIO_LISTEN=127.0.0.1:2222", "RTCIO_SIGNALING_MAX_ROOM_NAME_LENGTH=60"}
	code, out, errs := runCmd(t, env, "config", "check", "--config", file, "--set", "signaling.max_room_name_length=70")
	if code != 0 {
		t.Fatalf("config check exit %d: %s", code, errs)
	}
	for _, want := range []string{
		"listen: 127.0.0.1:2222",   // env over file
		"max_room_name_length: 70", // flag over env over file
		"max_rooms_per_socket: 3",  // file over default
		"level: warn",              // file over default
		"max_payload_bytes: 65536", // default
		"configuration OK",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("config check output lacks %q:\n%s", want, out)
		}
	}
}

func TestConfigCheckNamesBadKey(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  []string
		key  string
		val  string
	}{
		{[]string{"--set", "signaling.max_rooms_per_socket=-1"}, nil, "signaling.max_rooms_per_socket", "-1"},
		{nil, []string{"RTCIO_LOG_FORMAT=xml"}, "log.format", "xml"},
		{[]string{"--set", "rooms.default_topology=ring"}, nil, "rooms.default_topology", "ring"},
	} {
		code, _, errs := runCmd(t, tc.env, append([]string{"config", "check"}, tc.args...)...)
		if code == 0 {
			t.Errorf("%v %v: config check passed", tc.args, tc.env)
			continue
		}
		if !strings.Contains(errs, tc.key) || !strings.Contains(errs, tc.val) {
			t.Errorf("%v %v: error does not name %s and %s:\n%s", tc.args, tc.env, tc.key, tc.val, errs)
		}
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := runCmd(t, nil, "version")
	if code != 0 || !strings.HasPrefix(out, "rtcio-gateway ") {
		t.Errorf("version: %d %q", code, out)
	}
	if code, _, _ := runCmd(t, nil, "frobnicate"); code != 2 {
		t.Errorf("unknown command exit %d, want 2", code)
	}
}

// TestServeStopsOnSIGTERM runs the real binary: it serves, and on SIGTERM it
// tells connected clients, closes them and exits 0 within its bound.
func TestServeStopsOnSIGTERM(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "rtcio-gateway")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	addr := testenv.FreeAddr(t)
	const bound = 3 * time.Second
	cmd := exec.Command(bin, "serve", "--listen", addr, "--set", "shutdown.timeout="+bound.String())
	var logs bytes.Buffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	var exitedAt time.Time
	go func() {
		err := cmd.Wait()
		exitedAt = time.Now()
		exited <- err
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
		}
	})
	url := "http://" + addr
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := testenv.WaitReady(ctx, url, nil); err != nil {
		t.Fatalf("%v\n%s", err, logs.String())
	}

	nodes := testenv.StartNodeClients(t)
	// Over WebSocket the notice is flushed before the close; a long-polling
	// client gets it only if it polls within the notice wait (best effort).
	if _, err := nodes.Connect("c", url, map[string]any{"transports": []string{"websocket"}}); err != nil {
		t.Fatal(err)
	}
	_ = nodes.Emit("c", "join-room", map[string]any{"roomId": "r"})
	if _, err := nodes.WaitEvent(ctx, "c", "join-ok", nil); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if _, err := nodes.WaitEvent(ctx, "c", "server-shutdown", nil); err != nil {
		t.Errorf("client was not told: %v", err)
	}
	if _, err := nodes.WaitEvent(ctx, "c", testenv.EventDisconnect, nil); err != nil {
		t.Errorf("client was not disconnected: %v", err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("exit: %v\n%s", err, logs.String())
		}
		t.Logf("gateway log:\n%s", logs.String())
		if took := exitedAt.Sub(start); took > bound+time.Second {
			t.Errorf("exit took %v, bound %v", took, bound)
		}
	case <-time.After(bound + 2*time.Second):
		t.Fatalf("still running %v after SIGTERM\n%s", bound+2*time.Second, logs.String())
	}
}
