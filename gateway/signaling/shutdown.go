package signaling

import "time"

// Stopping: the shutdown notice, and the clock that drops stalled sockets.

// Close tells every client the server is going away and closes every
// connection. Clients see a transport close, so socket.io clients reconnect
// by themselves (to this address, or to whatever now serves it).
func (s *Server) Close() {
	s.Drain()
	s.notifyShutdown(shutdownNoticeWait)
	done := make(chan struct{})
	s.io.Close(func(error) { close(done) })
	<-done
	s.stopWatch()
	<-s.watchDone
}

// watchQueues applies the stall rule to every socket on a clock: a socket
// whose writes block can also block its own event handling (the library's
// write queue is bounded), so its events cannot be relied on to notice.
func (s *Server) watchQueues() {
	defer close(s.watchDone)
	if s.opts.MaxQueuedPackets <= 0 || s.opts.WriteStallTimeout <= 0 {
		return
	}
	tick := time.NewTicker(max(s.opts.WriteStallTimeout/4, 50*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-s.watchCtx.Done():
			return
		case <-tick.C:
		}
		s.mu.Lock()
		conns := make([]*Conn, 0, len(s.conns))
		for _, c := range s.conns {
			if c.out != nil {
				conns = append(conns, c)
			}
		}
		s.mu.Unlock()
		for _, c := range conns {
			c.out.check(c.dropSlow)
		}
	}
}

// shutdownNoticeWait is how long Close leaves the shutdown notice to reach
// the clients before closing their transports. The server library writes
// asynchronously and discards what is still queued when it closes, and it
// offers no per-packet completion, so a short fixed grace is what makes the
// notice arrive.
const shutdownNoticeWait = 200 * time.Millisecond

// notifyShutdown sends every network client a server-shutdown event and
// gives the writes wait to go out.
func (s *Server) notifyShutdown(wait time.Duration) {
	s.mu.Lock()
	var conns []*Conn
	for _, c := range s.conns {
		if c.sock != nil {
			conns = append(conns, c)
		}
	}
	s.mu.Unlock()
	for _, c := range conns {
		_ = c.sock.Emit("server-shutdown", map[string]any{"reconnect": true})
	}
	if len(conns) > 0 {
		time.Sleep(wait)
	}
}
