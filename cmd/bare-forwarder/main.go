// Command bare-forwarder is the load test's baseline: the smallest pion
// program that relays every published track to every subscriber, so that
// the gateway's cost can be compared with pion's own in the same run.
//
// It is deliberately plain: pion's default API (default codecs and
// interceptors: NACK responder and generator, RTCP reports, TWCC), one peer
// connection per publisher and per subscriber, one goroutine per published
// track doing TrackRemote.ReadRTP into TrackLocalStaticRTP.WriteRTP (which
// writes to every subscriber's binding in turn), no rtc.io layer, no
// keyframe cache. Signaling is a loopback HTTP exchange of complete SDP
// (ICE gathering finished before answering):
//
//	POST /publish?participant=P           body: offer  -> answer
//	POST /subscribe?participant=P&want=K  waits until K tracks of other
//	                                      participants exist -> {session, offer}
//	POST /answer?session=S                body: answer -> 204
//	GET  /readyz                          -> 200
//
// Usage:
//
//	bare-forwarder --listen 127.0.0.1:7000 [--udp-port 0] [--batch-write 0]
//
// --batch-write is an experiment, not the baseline: it measures what
// batched UDP writes (sendmmsg through pion/transport's BatchConn under the
// ICE UDP mux) would save a pion forwarder.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:]))
}

func run(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("bare-forwarder", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:7000", "HTTP signaling address (loopback)")
	udpPort := fs.Int("udp-port", 0, "serve every peer connection on this one UDP port (ICE UDP mux); 0 means pion's default of a port per connection")
	batch := fs.Int("batch-write", 0, "experiment, not the baseline: with --udp-port, queue writes and send them with sendmmsg in batches of this size (pion/transport's BatchConn)")
	batchInterval := fs.Duration("batch-interval", 200*time.Microsecond, "with --batch-write, the longest a queued packet waits")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *batch > 0 && *udpPort == 0 {
		fmt.Fprintln(os.Stderr, "--batch-write needs --udp-port")
		return 2
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	fwd, err := newForwarder(*udpPort, *batch, *batchInterval, log)
	if err != nil {
		log.Error("cannot start", "error", err)
		return 1
	}
	defer fwd.close()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Error("cannot listen", "addr", *listen, "error", err)
		return 1
	}
	srv := &http.Server{Handler: fwd.routes(), ReadHeaderTimeout: 5 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdownCtx)
		<-done
		return 0
	case err := <-done:
		if !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return 0
	}
}
