package rtcio

import (
	"context"
	"testing"
)

// TestSignalingReconnects cuts the client's transport: DialSignaling must
// report the disconnect, connect again (a new socket.io id) and carry
// events on the new connection.
func TestSignalingReconnects(t *testing.T) {
	leakCheck(t)
	url := startGateway(t)
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	sig, closeSig, err := DialSignaling(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer closeSig()
	events := make(chan string, 16)
	joined := make(chan struct{}, 1)
	defer sig.Subscribe(func(ev string, _ []any) {
		switch ev {
		case "connect", "disconnect":
			events <- ev
		case "join-ok":
			joined <- struct{}{}
		}
	})()
	first := sig.ID()
	sig.(*sioSignaling).c.Io().Engine().Close()
	for _, want := range []string{"disconnect", "connect"} {
		select {
		case ev := <-events:
			if ev != want {
				t.Fatalf("got %q, want %q", ev, want)
			}
		case <-timeout():
			t.Fatalf("no %q after the transport closed", want)
		}
	}
	if sig.ID() == "" || sig.ID() == first {
		t.Fatalf("id after reconnect %q (was %q)", sig.ID(), first)
	}
	if err := sig.Emit("join-room", map[string]any{"roomId": "again", "name": "x"}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-joined:
	case <-timeout():
		t.Fatal("no join-ok on the new connection")
	}
}
