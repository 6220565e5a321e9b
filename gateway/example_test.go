package gateway_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"

	"github.com/rtcio-gateway/rtcio-gateway/config"
	"github.com/rtcio-gateway/rtcio-gateway/gateway"
)

// A gateway with the default configuration (SFU rooms) serving on a
// loopback port: rtc.io clients connect to its URL; probes ask /healthz
// and /readyz. Cancelling the context stops it gracefully.
func Example() {
	srv, err := gateway.New(config.Default(), slog.New(slog.DiscardHandler))
	if err != nil {
		panic(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()

	resp, err := http.Get("http://" + ln.Addr().String() + "/healthz")
	if err != nil {
		panic(err)
	}
	resp.Body.Close()
	fmt.Println("healthz:", resp.Status)
	stop()
	fmt.Println("stopped:", <-served)
	// Output:
	// healthz: 200 OK
	// stopped: <nil>
}
