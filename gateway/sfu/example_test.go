package sfu_test

import (
	"fmt"
	"log/slog"

	"github.com/pion/webrtc/v4"

	"github.com/rtcio-gateway/rtcio-gateway/gateway/sfu"
	"github.com/rtcio-gateway/rtcio-gateway/gateway/signaling"
)

// The media side of SFU rooms wired to a signaling server: when a client
// joins an SFU room, the room gets its gateway peer, which offers to the
// client (the client's rtc.io then answers and publishes into it). The
// client here is attached in process; browsers come through socket.io.
func Example() {
	router := sfu.NewBinder()
	api, err := sfu.NewAPI(router, func(se *webrtc.SettingEngine) {
		se.SetIncludeLoopbackCandidate(true)
	})
	if err != nil {
		panic(err)
	}
	quiet := slog.New(slog.DiscardHandler)
	rooms := sfu.NewManager(sfu.Config{API: api, Binder: router, Logger: quiet})
	sig, err := signaling.New(signaling.Options{
		Topology: func(string) signaling.Topology { return signaling.SFU{} },
		OnJoin:   rooms.OnJoin,
		OnLeave:  rooms.OnLeave,
		Logger:   quiet,
	})
	if err != nil {
		panic(err)
	}
	rooms.Attach(sig)
	defer sig.Close()
	defer rooms.Close()

	client := sig.AttachLocal(signaling.RoleClient)
	defer client.Close()
	offered := make(chan string, 1)
	client.Subscribe(func(event string, args []any) {
		if event != "#rtcio:message" || len(args) == 0 {
			return
		}
		msg, _ := args[0].(map[string]any)
		data, _ := msg["data"].(map[string]any)
		if desc, ok := data["description"].(map[string]any); ok {
			select {
			case offered <- fmt.Sprint(desc["type"]):
			default:
			}
		}
	})
	_ = client.Emit("join-room", map[string]any{"roomId": "standup", "name": "alice"})
	fmt.Println("the room's gateway peer sent an", <-offered)
	fmt.Println("SFU rooms:", len(rooms.Stats()))
	// Output:
	// the room's gateway peer sent an offer
	// SFU rooms: 1
}
