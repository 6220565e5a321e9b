package sfu_test

import (
	"context"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/rtcio-gateway/rtcio-gateway/gateway/signaling"
	"github.com/rtcio-gateway/rtcio-gateway/internal/gatewaytest"
)

// dialNonReader opens a socket.io connection over a raw WebSocket whose
// receive buffer is tiny and which never reads: the server's writes to it
// block as soon as the kernel buffers are full.
func dialNonReader(t *testing.T, baseURL string) *websocket.Conn {
	t.Helper()
	d := websocket.Dialer{
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			nd := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
				var serr error
				err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 2048) })
				if err != nil {
					return err
				}
				return serr
			}}
			return nd.DialContext(ctx, network, addr)
		},
		HandshakeTimeout: waitFor,
	}
	u := "ws" + strings.TrimPrefix(baseURL, "http") + "/socket.io/?EIO=4&transport=websocket"
	ws, resp, err := d.Dial(u, http.Header{})
	if err != nil {
		t.Fatalf("websocket dial: %v", err)
	}
	if resp != nil && resp.Body != nil {
		_ = resp.Body.Close()
	}
	t.Cleanup(func() { _ = ws.Close() })
	// The OPEN packet is read so the session exists; nothing more is.
	if _, _, err := ws.ReadMessage(); err != nil {
		t.Fatalf("engine.io open: %v", err)
	}
	if err := ws.WriteMessage(websocket.TextMessage, []byte("40")); err != nil {
		t.Fatal(err)
	}
	return ws
}

// smallBufferListener is a loopback listener whose accepted sockets have a
// small send buffer (Linux: accepted sockets inherit it), so that what the
// server cannot write to a client that does not read piles up in the
// server's own queue after a few packets instead of a few megabytes.
func smallBufferListener(t *testing.T) net.Listener {
	t.Helper()
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF, 4096) })
		if err != nil {
			return err
		}
		return serr
	}}
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// TestAbuseNonReadingFlooderIsBounded (finding 3): a client floods events
// the server refuses and never reads the gateway-error replies. Replies
// past half the queue bound are dropped and counted, the socket is
// disconnected once its queue overflows or stalls, and a bystander room's
// media does not pause.
func TestAbuseNonReadingFlooderIsBounded(t *testing.T) {
	cfg := gatewaytest.SFUConfig()
	cfg.Signaling.MaxQueuedPackets = 256
	cfg.Signaling.WriteStallTimeout = time.Second
	gw := gatewaytest.StartGatewayOn(t, smallBufferListener(t), cfg)
	by := startBystander(t, gw.URL)
	mark := by.mark()

	ws := dialNonReader(t, gw.URL)
	frame := []byte(`42["#rtcio:init-offer",{"source":"x"}]`)
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	// A thousand events a second, ten times the rate limit: a flood, paced
	// so that the test's own client does not starve the machine.
	pace := time.NewTicker(time.Millisecond)
	defer pace.Stop()
	sent := 0
	for {
		<-pace.C
		refusals := gw.Server.Signaling().Refusals()
		if refusals[signaling.ReasonSlowConsumer] > 0 {
			t.Logf("sent %d refused events; refusals %v", sent, refusals)
			if refusals[signaling.ReasonReplyDropped] == 0 {
				t.Errorf("no gateway-error reply was dropped: %v", refusals)
			}
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the non-reading flooder was never disconnected after %d events: %v", sent, refusals)
		}
		_ = ws.SetWriteDeadline(time.Now().Add(time.Second))
		if err := ws.WriteMessage(websocket.TextMessage, frame); err != nil {
			// The server closed the connection: the refusal counter
			// says why, on the next turn.
			continue
		}
		sent++
	}
	by.checkGap(t, mark)
}
