package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Logf receives the harness's diagnostics (child stderr, page console...).
// testing.TB's Logf fits; nil discards.
type Logf func(format string, args ...any)

func (l Logf) printf(format string, args ...any) {
	if l != nil {
		l(format, args...)
	}
}

// closeGrace is how long a driver gets to shut down by itself (disconnect
// its clients, close Chromium) once its stdin closes, before it is killed.
const closeGrace = 15 * time.Second

// errProcExited is returned by calls that were pending when the driver
// process went away.
var errProcExited = errors.New("driver process exited")

// jsonlProc runs one Node driver that takes JSON commands on stdin and
// writes JSON lines on stdout (test/node/lib/jsonl.mjs). Lines with
// {"type":"reply","seq":N} answer call; every other line goes to onLine.
type jsonlProc struct {
	name   string
	cmd    *exec.Cmd
	logf   Logf
	onLine func(line []byte)

	writeMu sync.Mutex
	stdin   io.WriteCloser

	mu      sync.Mutex
	seq     int64
	pending map[int64]chan procReply
	exited  bool
	exitErr error
	tail    []string // last stderr lines, for error messages

	done      chan struct{} // closed once the process is reaped
	closeOnce sync.Once
	stopCtx   func() bool
}

type procReply struct {
	line []byte
	err  error
}

// startJSONL launches `node script args...` in its own process group.
// Cancelling ctx stops the process; so does close.
func startJSONL(ctx context.Context, logf Logf, name, script string, onLine func([]byte), args ...string) (*jsonlProc, error) {
	node, err := exec.LookPath("node")
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	dir, err := NodeDir()
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	path, err := NodeScript(script)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &jsonlProc{
		name:    name,
		logf:    logf,
		onLine:  onLine,
		pending: make(map[int64]chan procReply),
		done:    make(chan struct{}),
	}
	cmd := exec.Command(node, append([]string{path}, args...)...)
	cmd.Dir = dir
	cmd.Env = os.Environ()
	// Own process group: a forced stop takes the driver's helpers with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Stdout = &lineWriter{fn: p.handleStdout}
	cmd.Stderr = &lineWriter{fn: p.handleStderr}
	// A grandchild that inherited stdout must not hold Wait forever.
	cmd.WaitDelay = 5 * time.Second
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("start %s: stdin: %w", name, err)
	}
	p.stdin = stdin
	p.cmd = cmd
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go p.reap()
	p.stopCtx = context.AfterFunc(ctx, func() { _ = p.close() })
	return p, nil
}

// reap waits for the process and fails every call still waiting on it.
func (p *jsonlProc) reap() {
	err := p.cmd.Wait()
	p.mu.Lock()
	p.exited = true
	p.exitErr = err
	pending := p.pending
	p.pending = nil
	p.mu.Unlock()
	for _, ch := range pending {
		ch <- procReply{err: p.exitError()}
	}
	close(p.done)
}

func (p *jsonlProc) handleStdout(line []byte) {
	// The writer reuses its buffer; handlers may keep what they get.
	line = bytes.Clone(line)
	var head struct {
		Type string `json:"type"`
		Seq  *int64 `json:"seq"`
	}
	if err := json.Unmarshal(line, &head); err != nil {
		p.logf.printf("%s stdout (not JSON): %s", p.name, line)
		return
	}
	if head.Type == "reply" && head.Seq != nil {
		p.mu.Lock()
		ch, ok := p.pending[*head.Seq]
		delete(p.pending, *head.Seq)
		p.mu.Unlock()
		if ok {
			ch <- procReply{line: line}
		}
		return
	}
	if p.onLine != nil {
		p.onLine(line)
	}
}

func (p *jsonlProc) handleStderr(line []byte) {
	s := string(line)
	p.mu.Lock()
	p.tail = append(p.tail, s)
	if len(p.tail) > 20 {
		p.tail = p.tail[len(p.tail)-20:]
	}
	p.mu.Unlock()
	p.logf.printf("%s: %s", p.name, s)
}

// exitError describes how the process ended, with its last stderr lines:
// a driver that crashed usually says why there.
func (p *jsonlProc) exitError() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var details string
	if p.exitErr != nil {
		details += fmt.Sprintf(" (%v)", p.exitErr)
	}
	if len(p.tail) > 0 {
		details += "; stderr: " + strings.Join(p.tail, " | ")
	}
	return fmt.Errorf("%s: %w%s", p.name, errProcExited, details)
}

// call sends cmd with a fresh seq and returns the driver's reply line. An
// {"error": ...} reply becomes an error; decode the line for the rest.
func (p *jsonlProc) call(ctx context.Context, cmd map[string]any) ([]byte, error) {
	ch := make(chan procReply, 1)
	p.mu.Lock()
	if p.exited || p.pending == nil {
		p.mu.Unlock()
		return nil, p.exitError()
	}
	p.seq++
	seq := p.seq
	p.pending[seq] = ch
	p.mu.Unlock()

	forget := func() {
		p.mu.Lock()
		delete(p.pending, seq)
		p.mu.Unlock()
	}
	cmd["seq"] = seq
	if err := p.write(cmd); err != nil {
		forget()
		return nil, err
	}
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, r.err
		}
		var body struct {
			Error *string `json:"error"`
		}
		if err := json.Unmarshal(r.line, &body); err != nil {
			return nil, fmt.Errorf("%s: bad reply %q: %w", p.name, r.line, err)
		}
		if body.Error != nil {
			return r.line, &DriverError{Command: fmt.Sprint(cmd["cmd"]), Message: *body.Error}
		}
		return r.line, nil
	case <-ctx.Done():
		forget()
		return nil, fmt.Errorf("%s: %v: %w", p.name, cmd["cmd"], ctx.Err())
	}
}

func (p *jsonlProc) write(cmd map[string]any) error {
	data, err := json.Marshal(cmd)
	if err != nil {
		return fmt.Errorf("%s: encode %v: %w", p.name, cmd["cmd"], err)
	}
	data = append(data, '\n')
	p.writeMu.Lock()
	defer p.writeMu.Unlock()
	if _, err := p.stdin.Write(data); err != nil {
		return fmt.Errorf("%s: send %v: %w", p.name, cmd["cmd"], err)
	}
	return nil
}

// close asks the driver to stop by closing its stdin, kills its process
// group if it does not stop within closeGrace, and waits until it is
// reaped. Safe to call more than once and concurrently.
func (p *jsonlProc) close() error {
	p.closeOnce.Do(func() {
		p.stopCtx()
		p.writeMu.Lock()
		_ = p.stdin.Close()
		p.writeMu.Unlock()
		timer := time.NewTimer(closeGrace)
		defer timer.Stop()
		select {
		case <-p.done:
		case <-timer.C:
			p.logf.printf("%s did not exit within %v; killing it", p.name, closeGrace)
			p.kill()
			<-p.done
		}
	})
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	var exitErr *exec.ExitError
	if p.exitErr != nil && !errors.As(p.exitErr, &exitErr) {
		return fmt.Errorf("%s: %w", p.name, p.exitErr)
	}
	return nil
}

// kill sends SIGKILL to the driver's whole process group.
func (p *jsonlProc) kill() {
	if p.cmd.Process == nil {
		return
	}
	if err := syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		p.logf.printf("%s: kill: %v", p.name, err)
	}
}

// DriverError is a command the Node driver refused or that failed there
// (for example Page.Eval of a script that threw).
type DriverError struct {
	Command string
	Message string
}

func (e *DriverError) Error() string {
	return fmt.Sprintf("%s failed: %s", e.Command, e.Message)
}

// lineWriter calls fn for every complete line written to it. os/exec feeds
// it from one goroutine per stream, so fn sees lines in output order.
type lineWriter struct {
	buf []byte
	fn  func(line []byte)
}

// maxLine bounds a line we buffer waiting for its newline, so a driver gone
// mad cannot eat the test's memory; longer lines are cut.
const maxLine = 16 << 20

func (w *lineWriter) Write(b []byte) (int, error) {
	w.buf = append(w.buf, b...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		line := bytes.TrimRight(w.buf[:i], "\r")
		if len(line) > 0 {
			w.fn(line)
		}
		w.buf = w.buf[i+1:]
	}
	if len(w.buf) > maxLine {
		w.fn(w.buf)
		w.buf = nil
	}
	if len(w.buf) == 0 {
		w.buf = nil
	}
	return len(b), nil
}
