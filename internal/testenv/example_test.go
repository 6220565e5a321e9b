package testenv_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/rtcio-gateway/rtcio-gateway/internal/testenv"
)

// Two real socket.io clients join a room of the reference rtc.io server;
// the member already there is told about the newcomer. In a test, use
// StartRefServer(t) and StartNodeClients(t), which also clean up.
//
// No Output comment: it needs Node, so it is compiled here and its steps
// run for real in TestRefServerRoomConvention.
func ExampleNodeClients() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv, err := testenv.NewRefServer(ctx, nil, testenv.RefServerConfig{})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	clients, err := testenv.NewNodeClients(ctx, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer clients.Close()

	for _, name := range []string{"alice", "bob"} {
		if _, err := clients.Connect(name, srv.URL(), nil); err != nil {
			log.Fatal(err)
		}
		if err := clients.Emit(name, "join-room", map[string]any{"roomId": "demo", "name": name}); err != nil {
			log.Fatal(err)
		}
		if _, err := clients.WaitEvent(ctx, name, "join-ok", nil); err != nil {
			log.Fatal(err)
		}
	}
	args, err := clients.WaitEvent(ctx, "alice", "#rtcio:init-offer", nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("alice offers to", args[0].(map[string]any)["source"] == clients.ID("bob"))
}
