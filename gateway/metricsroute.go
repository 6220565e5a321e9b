package gateway

import (
	"net"
	"net/http"
)

// mountMetrics decides where /metrics is served. It reveals what the
// server is doing (rooms, sockets, refusals), so on the client-facing
// listener it needs the admin token unless metrics.public says otherwise;
// metrics.listen serves it without credentials on an address of its own.
func (s *Server) mountMetrics() {
	switch {
	case s.cfg.Metrics.Public:
		s.mux.Handle("GET /metrics", s.metrics.Handler())
	case s.cfg.Admin.Token != "":
		h := s.metrics.Handler()
		s.mux.Handle("GET /metrics", s.adminOnly(h.ServeHTTP))
	}
}

// serveMetrics serves /metrics alone on its own listener.
func (s *Server) serveMetrics(addr string) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.metrics.Handler())
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: s.cfg.HTTP.ReadHeaderTimeout, IdleTimeout: s.cfg.HTTP.IdleTimeout}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = hs.Serve(ln)
	}()
	s.log.Info("serving metrics", "addr", ln.Addr().String())
	return func() { _ = hs.Close(); <-done }, nil
}
