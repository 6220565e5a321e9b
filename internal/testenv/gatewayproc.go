package testenv

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// GatewayProcess is the rtcio-gateway binary serving on a loopback port for
// one test, for packages the gateway itself imports (they cannot run it in
// process without an import cycle).
type GatewayProcess struct {
	URL    string
	cmd    *exec.Cmd
	exited chan error
	logs   *LockedBuffer
	// Bin is the built binary, to start another process on the same files.
	Bin string
}

// Signal sends sig to the process.
func (g *GatewayProcess) Signal(sig os.Signal) error { return g.cmd.Process.Signal(sig) }

// Wait waits (at most d) for the process to exit and returns how it ended.
func (g *GatewayProcess) Wait(d time.Duration) (error, bool) {
	select {
	case err := <-g.exited:
		g.exited <- err // keep it for cleanup
		return err, true
	case <-time.After(d):
		return nil, false
	}
}

// PID is the process id.
func (g *GatewayProcess) PID() int { return g.cmd.Process.Pid }

// Logs returns what the process wrote so far.
func (g *GatewayProcess) Logs() string { return g.logs.String() }

// StartGatewayProcess builds cmd/rtcio-gateway and runs `serve` on a free
// loopback port with media on loopback and args appended (for example
// "--topology", "mesh"). It is stopped with SIGTERM at cleanup.
func StartGatewayProcess(t testing.TB, args ...string) *GatewayProcess {
	t.Helper()
	bin, err := BuildGateway(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return RunGateway(t, bin, args...)
}

// BuildGateway builds cmd/rtcio-gateway into dir and returns the binary's
// path; a test package that runs many gateways builds it once (TestMain).
func BuildGateway(dir string) (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "rtcio-gateway")
	build := exec.Command("go", "build", "-o", bin, "./cmd/rtcio-gateway")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build rtcio-gateway: %w\n%s", err, out)
	}
	return bin, nil
}

// RunGateway runs bin's `serve` like StartGatewayProcess, on a fresh
// loopback port, and waits until it is ready.
func RunGateway(t testing.TB, bin string, args ...string) *GatewayProcess {
	t.Helper()
	addr := FreeAddr(t)
	full := append([]string{"serve", "--listen", addr,
		"--set", "media.allowed_ips=127.0.0.0/8",
		"--set", "shutdown.timeout=5s"}, args...)
	cmd := exec.Command(bin, full...)
	logs := &LockedBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start rtcio-gateway: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			exited <- err
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			t.Errorf("rtcio-gateway did not stop on SIGTERM")
		}
		if t.Failed() {
			t.Logf("rtcio-gateway log:\n%s", logs.String())
		}
	})
	g := &GatewayProcess{URL: "http://" + addr, cmd: cmd, exited: exited, logs: logs, Bin: bin}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// WaitReady gets its own copy of the exit: the cleanup above waits
	// for it too (a process that exited before ready used to leave the
	// cleanup blocked for ever).
	early := make(chan error, 1)
	stopCopy := make(chan struct{})
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		select {
		case err := <-exited:
			exited <- err
			early <- err
		case <-stopCopy:
		}
	}()
	err := WaitReady(ctx, g.URL, early)
	close(stopCopy)
	<-copied
	if err != nil {
		t.Fatalf("rtcio-gateway: %v\n%s", err, logs.String())
	}
	return g
}

// WaitReady polls /readyz until it answers 200, or exited (when not nil)
// reports an exit: a process gives no other sign that it is listening.
func WaitReady(ctx context.Context, url string, exited <-chan error) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"/readyz", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case err := <-exited:
			return fmt.Errorf("exited before ready: %v", err)
		case <-ctx.Done():
			return fmt.Errorf("not ready: %w", ctx.Err())
		case <-tick.C:
		}
	}
}

// LockedBuffer is a bytes.Buffer that one goroutine may read while others
// write to it (a process's output, a server's log).
type LockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *LockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *LockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
