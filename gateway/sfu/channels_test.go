package sfu_test

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/rtcio-gateway/rtcio-gateway/gateway/sfu"
	"github.com/rtcio-gateway/rtcio-gateway/internal/testenv"
	"github.com/rtcio-gateway/rtcio-gateway/rtcio"
)

// TestUnrelayedChannelIsLoud: a client that sends on a custom channel the
// gateway does not relay (not in media.relay_channels, so the gateway never
// opened it) is told so with a gateway-error event, and the refusal is
// counted; its ctrl channel and the relayed channels keep working for it
// and for the others.
func TestUnrelayedChannelIsLoud(t *testing.T) {
	gw, _ := startSFU(t)
	const room = "channels"
	a, b := dialNoJoin(t, gw.URL), dialNoJoin(t, gw.URL)
	aUp, bUp := collect(a.Socket, rtcio.EventPeerConnect), collect(b.Socket, rtcio.EventPeerConnect)
	join(t, a.Socket, room)
	join(t, b.Socket, room)
	aUp.next(t, "a connected")
	bUp.next(t, "b connected")
	refusedServer := make(chan map[string]any, 4)
	a.Server().On("gateway-error", func(ev *rtcio.Event) {
		var m map[string]any
		if json.Unmarshal(ev.Raw[0], &m) == nil {
			refusedServer <- m
		}
	})

	unknown, err := a.CreateChannel("room:main", rtcio.ChannelOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := unknown.Emit("hello", 1); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-refusedServer:
		if m["code"] != sfu.EventChannelNotRelayed || m["event"] != "datachannel" {
			t.Fatalf("gateway-error %v, want code %s", m, sfu.EventChannelNotRelayed)
		}
	case <-time.After(waitFor):
		t.Fatal("no gateway-error for a channel the gateway does not relay")
	}
	if got := value(t, scrape(t, gw.URL), "rtcio_channels_not_relayed_total"); got != 1 {
		t.Errorf("rtcio_channels_not_relayed_total = %v, want 1", got)
	}

	// The rest of a's connection is unharmed: ctrl events and the relayed
	// chat channel still reach b.
	ctrl := collect(b.Socket, "after")
	if err := a.Emit("after", 1); err != nil {
		t.Fatal(err)
	}
	ctrl.next(t, "ctrl event after the refusal")
	chatB, err := b.CreateChannel("chat", rtcio.ChannelOptions{})
	if err != nil {
		t.Fatal(err)
	}
	said := make(chan struct{}, 1)
	chatB.On("say", func(*rtcio.Event) {
		select {
		case said <- struct{}{}:
		default:
		}
	})
	chatA, err := a.CreateChannel("chat", rtcio.ChannelOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := chatA.Emit("say", "hi"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-said:
	case <-time.After(waitFor):
		t.Fatal("chat message not relayed after the refusal")
	}
}

// TestBrowserUnrelayedChannelIsLoud: the same with a real browser's
// negotiated channel (the conformance page opens custom channels as rtc.io
// does: negotiated, id from the name's hash, no DCEP OPEN). The page gets
// the gateway-error naming the refusal; its relayed chat channel still
// reaches a Go participant afterwards.
func TestBrowserUnrelayedChannelIsLoud(t *testing.T) {
	env := startBrowserSFU(t, 2*time.Minute)
	ctx := env.ctx
	const room = "browser-channels"
	b := newGoPeer(t, env.gw.URL, "bob")
	b.join(t, room)
	p := env.openPage(t, "alice")
	env.joinPage(t, p, room)
	gatewayPeerOf(t, ctx, p)
	since := lastSeq(t, ctx, p)
	if _, err := p.CreateChannel(ctx, "room:main", testenv.ChannelOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.WaitFor(ctx, `e.type === 'channel-open' && e.channel === 'room:main'`, since); err != nil {
		t.Fatal(err)
	}
	if _, err := p.ChannelEmit(ctx, "room:main", "hello", 1); err != nil {
		t.Fatal(err)
	}
	if _, err := p.WaitFor(ctx, `e.type === 'server' && e.name === 'gateway-error' && e.args[0].code === 'channel-not-relayed'`, since); err != nil {
		t.Fatalf("no channel-not-relayed gateway-error on the page: %v", err)
	}
	if n, err := p.ChannelEmit(ctx, "chat", "say", "after"); err != nil || n != 1 {
		t.Fatalf("chat emit: %d, %v", n, err)
	}
	b.until(t, waitFor, "alice's chat message after the refusal", func() bool {
		return slices.Contains(b.chatLog, `say["after"]`)
	})
}
