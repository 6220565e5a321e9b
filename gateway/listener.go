package gateway

import (
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// limitListener bounds the connections open at once. Past the bound a new
// connection is answered 503 and closed at once, instead of waiting in the
// accept queue (which would hold a client in silence) or taking one of the
// descriptors the process needs for peer connections, recordings and its
// own probes.
type limitListener struct {
	net.Listener
	slots   chan struct{}
	refused atomic.Uint64
}

func newLimitListener(ln net.Listener, n int) *limitListener {
	return &limitListener{Listener: ln, slots: make(chan struct{}, n)}
}

// busyResponse is what a connection past the bound reads.
const busyResponse = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nRetry-After: 1\r\nConnection: close\r\nContent-Length: 29\r\n\r\ntoo many connections, retry\r\n"

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case l.slots <- struct{}{}:
			return &limitConn{Conn: c, release: func() { <-l.slots }}, nil
		default:
			l.refused.Add(1)
			go refuseBusy(c)
		}
	}
}

func refuseBusy(c net.Conn) {
	_ = c.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = c.Write([]byte(busyResponse))
	_ = c.Close()
}

// limitConn gives its slot back once, when closed (also after a WebSocket
// hijacked it: the hijacker closes this same conn).
type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// effectiveMaxConnections caps the configured bound at half the process's
// open-file limit, so that connections to the listener can never take the
// descriptors everything else needs.
func effectiveMaxConnections(configured int) int {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && lim.Cur > 0 {
		if half := lim.Cur / 2; half < uint64(configured) {
			return max(int(half), 1)
		}
	}
	return configured
}
