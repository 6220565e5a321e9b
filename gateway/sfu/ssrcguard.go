package sfu

import (
	"strings"
	"sync"
	"sync/atomic"

	"github.com/pion/webrtc/v4"
)

// SSRCGuard bounds the RTP streams with unannounced SSRCs that one peer
// connection may open. pion opens a stream for every SSRC a publisher
// sends and keeps those it cannot match to a track until the connection
// closes (a few kilobytes each), so a publisher that changes SSRC on every
// packet would grow the process without bound. pion offers no setting for
// this; what it does is log one error per such SSRC on the connection's own
// "pc" logger. The guard watches those loggers (see Watch) and closes a
// connection past the bound.
type SSRCGuard struct {
	max int

	// create serializes NewPeerConnection so that the "pc" logger pion
	// creates inside it can be paired with its connection.
	create  sync.Mutex
	pending *guardedConn
}

// guardedConn is one connection's count of unhandled SSRCs.
type guardedConn struct {
	g       *SSRCGuard
	n       atomic.Int64
	mu      sync.Mutex
	exceed  func()
	tripped bool
}

// NewSSRCGuard makes a guard allowing max unhandled SSRCs per connection
// (0: no bound).
func NewSSRCGuard(max int) *SSRCGuard { return &SSRCGuard{max: max} }

// unhandledSSRC starts pion's message for an SSRC it opened a stream for
// but could not give a track.
const unhandledSSRC = "Incoming unhandled RTP ssrc"

// Watch is the pion log watch (pionlog.Factory.Watch) of the API the guard
// serves.
func (g *SSRCGuard) Watch(scope string) func(string) {
	if scope != "pc" || g == nil || g.max <= 0 {
		return nil
	}
	c := &guardedConn{g: g}
	g.pending = c // g.create is held: NewPeerConnection is running
	return func(msg string) {
		if strings.HasPrefix(msg, unhandledSSRC) && c.n.Add(1) > int64(g.max) {
			c.trip()
		}
	}
}

func (c *guardedConn) trip() {
	c.mu.Lock()
	f := c.exceed
	first := !c.tripped
	c.tripped = true
	c.mu.Unlock()
	if first && f != nil {
		// Not on pion's goroutine: closing waits for it.
		go f()
	}
}

// NewPeerConnection creates a connection on api whose unhandled SSRCs are
// counted; exceed runs once when they pass the bound.
func (g *SSRCGuard) NewPeerConnection(api *webrtc.API, cfg webrtc.Configuration, exceed func()) (*webrtc.PeerConnection, error) {
	g.create.Lock()
	g.pending = nil
	pc, err := api.NewPeerConnection(cfg)
	c := g.pending
	g.pending = nil
	g.create.Unlock()
	if err != nil || c == nil {
		return pc, err
	}
	c.mu.Lock()
	c.exceed = exceed
	tripped := c.tripped
	c.mu.Unlock()
	if tripped {
		go exceed()
	}
	return pc, nil
}
