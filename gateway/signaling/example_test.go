package signaling_test

import (
	"fmt"
	"log/slog"

	"github.com/rtcio-gateway/rtcio-gateway/gateway/signaling"
)

// Two participants meet in a mesh room under the reference room
// convention. They are attached in process here; browsers reach the same
// server through Handler (socket.io at /socket.io/).
func Example() {
	srv, err := signaling.New(signaling.Options{
		Topology: func(string) signaling.Topology { return signaling.Mesh{} },
		Logger:   slog.New(slog.DiscardHandler),
	})
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	alice := srv.AttachLocal(signaling.RoleClient)
	defer alice.Close()
	bob := srv.AttachLocal(signaling.RoleClient)
	defer bob.Close()

	seen := make(chan string, 8)
	alice.Subscribe(func(event string, args []any) { seen <- event })
	_ = alice.Emit("join-room", map[string]any{"roomId": "standup", "name": "alice"})
	fmt.Println(<-seen)
	// bob joins: alice learns of him and is told to offer to him.
	_ = bob.Emit("join-room", map[string]any{"roomId": "standup", "name": "bob"})
	fmt.Println(<-seen)
	fmt.Println(<-seen)
	// Output:
	// join-ok
	// user-connected
	// #rtcio:init-offer
}
