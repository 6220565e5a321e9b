package testenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is a throwaway redis-server on a loopback port, without
// persistence, in its own temporary directory.
type Redis struct {
	cmd  *exec.Cmd
	addr string
	dir  string
	done chan struct{}
	logf Logf

	stopCtx func() bool

	mu      sync.Mutex
	waitErr error
	tail    []string
}

// StartRedis runs a redis-server for t and returns its "127.0.0.1:PORT".
// It is stopped at cleanup. The test is skipped (failed under CI) when
// redis-server is missing.
func StartRedis(t testing.TB) string {
	t.Helper()
	return StartRedisServer(t).Addr()
}

// StartRedisServer is StartRedis for a test that kills and restarts the
// server (Kill, Restart).
func StartRedisServer(t testing.TB) *Redis {
	t.Helper()
	SkipIfNoRedis(t)
	r, err := NewRedis(context.Background(), t.Logf)
	if err != nil {
		t.Fatalf("start redis: %v", err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Errorf("stop redis: %v", err)
		}
	})
	return r
}

// NewRedis starts redis-server and waits until it accepts connections. It
// runs until Close or until ctx ends.
func NewRedis(ctx context.Context, logf Logf) (*Redis, error) {
	var errs []error
	// The free port can be taken between our probe and redis binding it;
	// a few fresh ports make that race irrelevant.
	for range 3 {
		r, err := startRedisOnce(ctx, logf)
		if err == nil {
			return r, nil
		}
		errs = append(errs, err)
	}
	return nil, fmt.Errorf("start redis: %w", errors.Join(errs...))
}

func startRedisOnce(ctx context.Context, logf Logf) (*Redis, error) {
	port, err := freeLoopbackPort()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "rtcio-redis-")
	if err != nil {
		return nil, fmt.Errorf("redis dir: %w", err)
	}
	r := &Redis{addr: "127.0.0.1:" + strconv.Itoa(port), dir: dir, logf: logf}
	if err := r.start(ctx); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return r, nil
}

// Kill ends the server with SIGKILL, as a crash would, and waits for it.
// Restart brings it back.
func (r *Redis) Kill() {
	_ = syscall.Kill(-r.cmd.Process.Pid, syscall.SIGKILL)
	<-r.done
}

// Restart starts a killed server again on the same address, empty (it
// keeps nothing on disk).
func (r *Redis) Restart(ctx context.Context) error {
	r.stopCtx()
	return r.start(ctx)
}

// start runs redis-server on r.addr and waits until it accepts
// connections.
func (r *Redis) start(ctx context.Context) error {
	logf := r.logf
	_, portStr, _ := strings.Cut(r.addr, ":")
	port, _ := strconv.Atoi(portStr)
	dir := r.dir
	r.done = make(chan struct{})
	r.mu.Lock()
	r.waitErr, r.tail = nil, nil
	r.mu.Unlock()
	ready := make(chan struct{})
	var readyOnce sync.Once
	out := &lineWriter{fn: func(line []byte) {
		s := string(line)
		r.mu.Lock()
		r.tail = append(r.tail, s)
		if len(r.tail) > 20 {
			r.tail = r.tail[len(r.tail)-20:]
		}
		r.mu.Unlock()
		logf.printf("redis: %s", s)
		if strings.Contains(s, "Ready to accept connections") {
			readyOnce.Do(func() { close(ready) })
		}
	}}
	r.cmd = exec.Command("redis-server",
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", dir,
		"--daemonize", "no", "--protected-mode", "no")
	r.cmd.Stdout = out
	r.cmd.Stderr = out
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	r.cmd.WaitDelay = 5 * time.Second
	if err := r.cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	done := r.done
	go func() {
		err := r.cmd.Wait()
		r.mu.Lock()
		r.waitErr = err
		r.mu.Unlock()
		close(done)
	}()
	r.stopCtx = context.AfterFunc(ctx, func() { _ = r.Close() })
	timer := time.NewTimer(commandTimeout)
	defer timer.Stop()
	select {
	case <-ready:
		return nil
	case <-r.done:
		r.stopCtx()
		return fmt.Errorf("redis-server exited: %s", r.lastLines())
	case <-timer.C:
		r.stopCtx()
		_ = syscall.Kill(-r.cmd.Process.Pid, syscall.SIGKILL)
		<-r.done
		return fmt.Errorf("redis-server not ready within %v: %s", commandTimeout, r.lastLines())
	}
}

func (r *Redis) lastLines() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.tail, " | ")
}

// Addr is "127.0.0.1:PORT".
func (r *Redis) Addr() string { return r.addr }

// Close stops the server (SIGTERM, then SIGKILL after a grace period),
// waits for it and removes its directory.
func (r *Redis) Close() error {
	r.stopCtx()
	pid := r.cmd.Process.Pid
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	timer := time.NewTimer(closeGrace)
	defer timer.Stop()
	select {
	case <-r.done:
	case <-timer.C:
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		<-r.done
	}
	if err := os.RemoveAll(r.dir); err != nil {
		return fmt.Errorf("remove redis dir: %w", err)
	}
	return nil
}

// KillRedisClients cuts every connection to the Redis at addr whose client
// name is name (CLIENT KILL), as a network blip or a failover would, and
// returns how many it cut.
func KillRedisClients(t testing.TB, addr, name string) int {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	list, err := rdb.ClientList(ctx).Result()
	if err != nil {
		t.Fatalf("redis client list: %v", err)
	}
	n := 0
	for _, line := range strings.Split(list, "\n") {
		if !strings.Contains(line, " name="+name+" ") {
			continue
		}
		for _, f := range strings.Fields(line) {
			if id, ok := strings.CutPrefix(f, "id="); ok {
				if err := rdb.Do(ctx, "CLIENT", "KILL", "ID", id).Err(); err == nil {
					n++
				}
			}
		}
	}
	return n
}
