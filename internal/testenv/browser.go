package testenv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// browserStartTimeout covers Chromium's first start on a cold, busy
// two-core machine.
const browserStartTimeout = 90 * time.Second

// Browser is one headless Debian Chromium (fake camera and microphone,
// loopback WebRTC allowed, no network chatter) driven by playwright-core in
// test/node/browser.mjs. Pages share one fresh profile.
type Browser struct {
	proc    *jsonlProc
	logf    Logf
	profile string
	ready   chan error

	mu      sync.Mutex
	changed chan struct{}
	pages   map[string]*pageLog
}

type pageLog struct {
	console []ConsoleMessage
	errors  []string
	closed  bool
	crashed bool
}

// ConsoleMessage is one console.* call of a page.
type ConsoleMessage struct {
	Level string // "log", "error", "warning", ...
	Text  string
}

// StartBrowser launches Chromium for t; it is closed at cleanup and its
// profile removed. The test is skipped (failed under CI) when Chromium,
// Node or playwright-core is missing.
func StartBrowser(t testing.TB) *Browser {
	t.Helper()
	return StartBrowserWith(t, BrowserOptions{})
}

// BrowserOptions change how Chromium is started.
type BrowserOptions struct {
	// Netns runs Chromium inside that network namespace (see Shaped), so
	// its traffic crosses a shaped link.
	Netns string
	// Args are extra Chromium flags, e.g.
	// --unsafely-treat-insecure-origin-as-secure=http://198.18.0.1:PORT
	// (a page served from an address other than localhost is not a secure
	// context, and getUserMedia needs one).
	Args []string
}

// StartBrowserWith is StartBrowser with options.
func StartBrowserWith(t testing.TB, opts BrowserOptions) *Browser {
	t.Helper()
	SkipIfNoBrowser(t)
	b, err := NewBrowserWith(context.Background(), t.Logf, opts)
	if err != nil {
		t.Fatalf("start browser: %v", err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("stop browser: %v", err)
		}
	})
	return b
}

// NewBrowser launches Chromium and waits until it runs. It runs until Close
// or until ctx ends.
func NewBrowser(ctx context.Context, logf Logf) (*Browser, error) {
	return NewBrowserWith(ctx, logf, BrowserOptions{})
}

// NewBrowserWith is NewBrowser with options.
func NewBrowserWith(ctx context.Context, logf Logf, opts BrowserOptions) (*Browser, error) {
	profile, err := os.MkdirTemp("", "rtcio-chromium-")
	if err != nil {
		return nil, fmt.Errorf("browser profile: %w", err)
	}
	b := &Browser{
		logf:    logf,
		profile: profile,
		ready:   make(chan error, 1),
		changed: make(chan struct{}),
		pages:   make(map[string]*pageLog),
	}
	chromium := ChromiumPath()
	if opts.Netns != "" {
		// A launcher that enters the namespace first: playwright starts
		// whatever executable it is given, with Chromium's arguments.
		chromium = filepath.Join(profile, "chromium-in-netns")
		script := fmt.Sprintf("#!/bin/sh\nexec ip netns exec %s %s \"$@\"\n", opts.Netns, ChromiumPath())
		if err := os.WriteFile(chromium, []byte(script), 0o755); err != nil {
			_ = os.RemoveAll(profile)
			return nil, fmt.Errorf("browser launcher: %w", err)
		}
	}
	args := []string{"--profile=" + filepath.Join(profile, "profile"), "--chromium=" + chromium}
	for _, a := range opts.Args {
		args = append(args, "--arg="+a)
	}
	proc, err := startJSONL(ctx, logf, "browser", "browser.mjs", b.handleLine, args...)
	if err != nil {
		_ = os.RemoveAll(profile)
		return nil, err
	}
	b.proc = proc
	timer := time.NewTimer(browserStartTimeout)
	defer timer.Stop()
	select {
	case err := <-b.ready:
		if err == nil {
			return b, nil
		}
		_ = b.Close()
		return nil, err
	case <-proc.done:
		_ = b.Close()
		return nil, fmt.Errorf("browser did not start: %w", proc.exitError())
	case <-timer.C:
		_ = b.Close()
		return nil, fmt.Errorf("browser did not start within %v", browserStartTimeout)
	}
}

// Close closes Chromium, waits for the driver and removes the profile. A
// Chromium the driver failed to close is killed.
func (b *Browser) Close() error {
	err := b.proc.close()
	// playwright starts Chromium in a process group of its own, so killing
	// the driver's group does not reach it; the profile path identifies it.
	killByArg("--user-data-dir=" + b.profile)
	if rmErr := os.RemoveAll(b.profile); rmErr != nil {
		err = errors.Join(err, fmt.Errorf("remove browser profile: %w", rmErr))
	}
	return err
}

func (b *Browser) handleLine(line []byte) {
	var msg struct {
		Type    string `json:"type"`
		Page    string `json:"page"`
		Level   string `json:"level"`
		Text    string `json:"text"`
		Message string `json:"message"`
		Error   string `json:"error"`
	}
	if err := json.Unmarshal(line, &msg); err != nil {
		b.logf.printf("browser: unexpected line: %s", line)
		return
	}
	switch msg.Type {
	case "ready", "fatal":
		var err error
		if msg.Type == "fatal" {
			err = fmt.Errorf("browser: %s", msg.Error)
		}
		select {
		case b.ready <- err:
		default:
		}
		return
	case "console":
		b.logf.printf("page %s console.%s: %s", msg.Page, msg.Level, msg.Text)
	case "pageerror":
		b.logf.printf("page %s error: %s", msg.Page, msg.Message)
	case "crash":
		b.logf.printf("page %s crashed", msg.Page)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	p := b.page(msg.Page)
	switch msg.Type {
	case "console":
		p.console = append(p.console, ConsoleMessage{Level: msg.Level, Text: msg.Text})
	case "pageerror":
		p.errors = append(p.errors, msg.Message)
	case "crash":
		p.crashed = true
	case "closed":
		p.closed = true
	default:
		return
	}
	close(b.changed)
	b.changed = make(chan struct{})
}

// page returns the log of page id, creating it; b.mu must be held.
func (b *Browser) page(id string) *pageLog {
	p, ok := b.pages[id]
	if !ok {
		p = &pageLog{}
		b.pages[id] = p
	}
	return p
}

// Page is one tab.
type Page struct {
	b  *Browser
	id string
}

// OpenPage opens a tab and loads url, returning once the load event fired.
func (b *Browser) OpenPage(ctx context.Context, url string) (*Page, error) {
	line, err := b.proc.call(ctx, map[string]any{"cmd": "open", "url": url})
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", url, err)
	}
	var body struct {
		Page string `json:"page"`
	}
	if err := json.Unmarshal(line, &body); err != nil || body.Page == "" {
		return nil, fmt.Errorf("open %s: reply without page: %s", url, line)
	}
	return &Page{b: b, id: body.Page}, nil
}

// ID is the driver's handle of the page ("p1", ...), used in log lines.
func (p *Page) ID() string { return p.id }

// Eval evaluates js in the page and decodes its JSON result into result
// (nil ignores it). js is an expression or a function source; a function
// is called (with null). Promises are awaited. A script that throws yields
// a *DriverError carrying the page's message.
func (p *Page) Eval(ctx context.Context, js string, result any) error {
	return p.EvalArg(ctx, js, nil, result)
}

// EvalArg is Eval for a function source called with arg (JSON-encoded).
func (p *Page) EvalArg(ctx context.Context, js string, arg any, result any) error {
	line, err := p.b.proc.call(ctx, map[string]any{"cmd": "eval", "page": p.id, "js": js, "arg": arg})
	if err != nil {
		return fmt.Errorf("eval in page %s: %w", p.id, err)
	}
	if result == nil {
		return nil
	}
	var body struct {
		Result json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(line, &body); err != nil {
		return fmt.Errorf("eval in page %s: bad reply: %w", p.id, err)
	}
	if err := json.Unmarshal(body.Result, result); err != nil {
		return fmt.Errorf("eval in page %s: decode result %s: %w", p.id, body.Result, err)
	}
	return nil
}

// Goto navigates the page to url and waits for its load event.
func (p *Page) Goto(ctx context.Context, url string) error {
	if _, err := p.b.proc.call(ctx, map[string]any{"cmd": "goto", "page": p.id, "url": url}); err != nil {
		return fmt.Errorf("page %s goto %s: %w", p.id, url, err)
	}
	return nil
}

// Screenshot writes a full-page PNG to path, for looking at a failure.
func (p *Page) Screenshot(ctx context.Context, path string) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("screenshot path: %w", err)
	}
	if _, err := p.b.proc.call(ctx, map[string]any{"cmd": "screenshot", "page": p.id, "path": abs}); err != nil {
		return fmt.Errorf("page %s screenshot: %w", p.id, err)
	}
	return nil
}

// Close closes the tab.
func (p *Page) Close(ctx context.Context) error {
	if _, err := p.b.proc.call(ctx, map[string]any{"cmd": "close", "page": p.id}); err != nil {
		return fmt.Errorf("close page %s: %w", p.id, err)
	}
	return nil
}

// Console returns the page's console messages so far.
func (p *Page) Console() []ConsoleMessage {
	p.b.mu.Lock()
	defer p.b.mu.Unlock()
	return append([]ConsoleMessage(nil), p.b.page(p.id).console...)
}

// Errors returns the page's uncaught errors so far.
func (p *Page) Errors() []string {
	p.b.mu.Lock()
	defer p.b.mu.Unlock()
	return append([]string(nil), p.b.page(p.id).errors...)
}

// WaitConsole waits until the page logged a message match accepts and
// returns it; messages logged before the call count too.
func (p *Page) WaitConsole(ctx context.Context, match func(ConsoleMessage) bool) (ConsoleMessage, error) {
	seen := 0
	for {
		p.b.mu.Lock()
		pl := p.b.page(p.id)
		msgs := pl.console[seen:]
		seen = len(pl.console)
		closed, crashed := pl.closed, pl.crashed
		changed := p.b.changed
		p.b.mu.Unlock()
		for _, m := range msgs {
			if match(m) {
				return m, nil
			}
		}
		if closed || crashed {
			return ConsoleMessage{}, fmt.Errorf("page %s waiting for console message: page closed or crashed", p.id)
		}
		select {
		case <-changed:
		case <-p.b.proc.done:
			return ConsoleMessage{}, fmt.Errorf("page %s waiting for console message: %w", p.id, p.b.proc.exitError())
		case <-ctx.Done():
			return ConsoleMessage{}, fmt.Errorf("page %s waiting for console message: %w", p.id, ctx.Err())
		}
	}
}

// killByArg SIGKILLs every process whose command line has arg, as a last
// resort for strays that escaped their parent's process group.
func killByArg(arg string) {
	for _, pid := range pidsWithArg(arg) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// pidsWithArg lists the live processes (other than us) with arg on their
// command line. Zombies have an empty command line and are not listed.
func pidsWithArg(arg string) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	self := os.Getpid()
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		if slices.Contains(strings.Split(string(cmdline), "\x00"), arg) {
			pids = append(pids, pid)
		}
	}
	return pids
}
