package gatewaytest

import (
	"net"
	"net/http"
	"testing"

	"github.com/rtcio-gateway/rtcio-gateway/gateway/signaling"
)

// ServeSignaling serves a bare signaling server (no gateway around it) on a
// loopback port until the test ends, when it closes both, and returns its
// base URL.
func ServeSignaling(t testing.TB, srv *signaling.Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/socket.io/", srv.Handler())
	hs := &http.Server{Handler: mux}
	go func() { _ = hs.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		_ = hs.Close()
	})
	return "http://" + ln.Addr().String()
}
