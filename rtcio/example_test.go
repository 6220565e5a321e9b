package rtcio_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"net"
	"time"

	"github.com/rtcio-gateway/rtcio-gateway/config"
	"github.com/rtcio-gateway/rtcio-gateway/gateway"
	"github.com/rtcio-gateway/rtcio-gateway/rtcio"
)

// Two Go peers join a room through a signaling server and exchange a ctrl
// event over their data channel.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// Any rtc.io signaling server will do; here, ours on a loopback port,
	// with mesh rooms as rtc.io-server has them.
	cfg := config.Default()
	cfg.Rooms.DefaultTopology = "mesh"
	srv, err := gateway.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		log.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srvCtx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(srvCtx, ln) }()
	defer func() { stop(); <-served }()
	url := "http://" + ln.Addr().String()
	api, _ := rtcio.LoopbackAPI()

	alice, err := rtcio.Dial(ctx, url, rtcio.Options{API: api})
	if err != nil {
		log.Fatal(err)
	}
	defer alice.Close()
	bob, err := rtcio.Dial(ctx, url, rtcio.Options{API: api})
	if err != nil {
		log.Fatal(err)
	}
	defer bob.Close()

	got := make(chan string, 1)
	bob.On("greet", func(e *rtcio.Event) {
		var who string
		_ = e.Decode(0, &who)
		got <- who
	})
	// Send when the peer connection's ctrl channel is open.
	alice.On(rtcio.EventPeerConnect, func(e *rtcio.Event) { _ = alice.Emit("greet", "alice") })

	for _, s := range []*rtcio.Socket{alice, bob} {
		_ = s.Server().Emit("join-room", map[string]any{"roomId": "demo", "name": s.ID()})
	}
	select {
	case who := <-got:
		fmt.Println("bob was greeted by", who)
	case <-ctx.Done():
		fmt.Println("timeout")
	}
	// Output: bob was greeted by alice
}
