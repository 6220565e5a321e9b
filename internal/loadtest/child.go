package loadtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ModuleRoot finds the directory of this repository's go.mod, walking up
// from the working directory, so the tool can build the binaries it runs.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("loadtest: module root: %w", err)
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.Contains(b, []byte("module github.com/rtcio-gateway/rtcio-gateway\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("loadtest: run inside the rtcio-gateway repository (or pass the binaries' paths)")
		}
		dir = parent
	}
}

// Build compiles a main package of the repository (e.g. "./cmd/rtcio-gateway")
// into dir and returns the binary's path.
func Build(ctx context.Context, pkg, dir string) (string, error) {
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, filepath.Base(pkg))
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("loadtest: go build %s: %w\n%s", pkg, err, b)
	}
	return out, nil
}

// Process is a server the tool started.
type Process struct {
	URL    string
	PID    int
	cmd    *exec.Cmd
	exited chan struct{}
	err    error
	logs   *tailBuffer
}

// ProcessOptions start a server binary.
type ProcessOptions struct {
	Bin  string
	Args []string
	// CPUList pins the process (every thread) to these CPUs via taskset,
	// e.g. "0"; empty leaves it free.
	CPUList string
	// ReadyPath is polled until it answers 200.
	ReadyPath string
	URL       string
}

// Start runs a server and waits until it is ready.
func Start(ctx context.Context, o ProcessOptions) (*Process, error) {
	name, args := o.Bin, o.Args
	if o.CPUList != "" {
		// taskset sets the affinity before exec, so every thread the Go
		// runtime creates inherits it (and GOMAXPROCS follows it).
		name, args = "taskset", append([]string{"-c", o.CPUList, o.Bin}, o.Args...)
	}
	cmd := exec.Command(name, args...)
	logs := &tailBuffer{max: 64 << 10}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("loadtest: start %s: %w", o.Bin, err)
	}
	p := &Process{URL: o.URL, PID: cmd.Process.Pid, cmd: cmd, exited: make(chan struct{}), logs: logs}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := p.waitReady(rctx, o.URL+o.ReadyPath); err != nil {
		_ = p.Stop()
		return nil, fmt.Errorf("loadtest: %s: %w\n%s", filepath.Base(o.Bin), err, logs.String())
	}
	return p, nil
}

func (p *Process) waitReady(ctx context.Context, url string) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return fmt.Errorf("readiness request: %w", err)
		}
		if resp, err := oneShotClient().Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-p.exited:
			return fmt.Errorf("exited before ready: %v", p.err)
		case <-ctx.Done():
			return fmt.Errorf("not ready: %w", ctx.Err())
		case <-tick.C:
		}
	}
}

// Logs returns the end of the process's output.
func (p *Process) Logs() string { return p.logs.String() }

// Stop sends SIGTERM and waits up to 10 s before killing.
func (p *Process) Stop() error {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(10 * time.Second)
	defer t.Stop()
	select {
	case <-p.exited:
		return nil
	case <-t.C:
		_ = p.cmd.Process.Kill()
		<-p.exited
		return errors.New("loadtest: server ignored SIGTERM and was killed")
	}
}

// FreePort returns a loopback port that was free a moment ago, for TCP or
// UDP ("tcp4" or "udp4").
func FreePort(network string) (int, error) {
	if network == "udp4" {
		c, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("loadtest: free udp port: %w", err)
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port, nil
	}
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("loadtest: free tcp port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// GatewayArgs are the serve flags of a load-test gateway: SFU rooms, media
// on loopback through one UDP port, quiet logs, plus extra.
func GatewayArgs(httpPort, udpPort int, pprof string, extra ...string) []string {
	args := []string{"serve",
		"--listen", fmt.Sprintf("127.0.0.1:%d", httpPort),
		"--topology", "sfu",
		"--log-level", "warn",
		"--set", "media.allowed_ips=127.0.0.0/8",
		"--set", fmt.Sprintf("media.udp_port=%d", udpPort),
		"--set", "shutdown.timeout=3s",
		// The tool reads the gateway's refusals from /metrics, which is
		// behind the admin token unless made public.
		"--set", "metrics.public=true",
	}
	if pprof != "" {
		args = append(args, "--set", "debug.pprof_listen="+pprof)
	}
	return append(args, extra...)
}

// tailBuffer keeps the last max bytes written.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.b))
}

// oneShotClient makes requests without keep-alive: the tool sends a handful
// of signaling and probe requests, and idle connections would outlive a run.
func oneShotClient() *http.Client {
	return &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
}
