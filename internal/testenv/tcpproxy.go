package testenv

import (
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// StickyProxy is a TCP load balancer on a loopback port in front of
// several gateways, sticky per connection: every byte of one client
// connection goes to the one backend chosen when it opened. New
// connections go round-robin over the backends, skipping one that does not
// accept (a dead node), the way a load balancer's health check would.
//
// Per-connection stickiness is what socket.io needs over WebSocket (one
// connection per session). Long-polling needs stickiness per session
// (several HTTP requests): a real deployment pins by cookie or source
// address; tests through this proxy use the WebSocket transport.
type StickyProxy struct {
	ln       net.Listener
	backends []string

	mu    sync.Mutex
	next  int
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// StartStickyProxy serves on a free loopback port until the test ends.
func StartStickyProxy(t testing.TB, backends ...string) *StickyProxy {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("proxy listen: %v", err)
	}
	p := &StickyProxy{ln: ln, backends: backends, conns: make(map[net.Conn]struct{})}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(p.Close)
	return p
}

// Addr is the proxy's "127.0.0.1:PORT".
func (p *StickyProxy) Addr() string { return p.ln.Addr().String() }

// Close stops accepting, cuts every proxied connection and waits for the
// proxy's goroutines.
func (p *StickyProxy) Close() {
	_ = p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil // a connection still being set up is closed by track
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *StickyProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go p.proxy(c)
	}
}

// dial connects to the next backend that accepts.
func (p *StickyProxy) dial() (net.Conn, error) {
	p.mu.Lock()
	start := p.next
	p.next = (p.next + 1) % len(p.backends)
	p.mu.Unlock()
	var errs []error
	for i := range p.backends {
		addr := p.backends[(start+i)%len(p.backends)]
		b, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			return b, nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

// track records live connections; false once the proxy is closed.
func (p *StickyProxy) track(cs ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conns == nil {
		return false
	}
	for _, c := range cs {
		p.conns[c] = struct{}{}
	}
	return true
}

func (p *StickyProxy) untrack(cs ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cs {
		delete(p.conns, c)
		_ = c.Close()
	}
}

func (p *StickyProxy) proxy(client net.Conn) {
	defer p.wg.Done()
	backend, err := p.dial()
	if err != nil {
		_ = client.Close()
		return
	}
	if !p.track(client, backend) {
		_ = client.Close()
		_ = backend.Close()
		return
	}
	defer p.untrack(client, backend)
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		// One side ended: end the other, as a dead node's connections end.
		_ = dst.Close()
		_ = src.Close()
		done <- struct{}{}
	}
	go pipe(backend, client)
	go pipe(client, backend)
	<-done
	<-done
}
