package sfu_test

import (
	"context"
	"testing"
	"time"

	"github.com/rtcio-gateway/rtcio-gateway/gateway"
	"github.com/rtcio-gateway/rtcio-gateway/internal/gatewaytest"
	"github.com/rtcio-gateway/rtcio-gateway/internal/testenv"
)

// startShapedGateway serves an SFU gateway and the conformance page on
// the test's end of link (metrics readable with metricsToken); ctx bounds
// the test's page calls.
func startShapedGateway(t *testing.T, link *testenv.Shaped, budget time.Duration) (*gatewaytest.Gateway, *notices, context.Context) {
	t.Helper()
	web, err := testenv.NewWebHandler()
	if err != nil {
		t.Fatal(err)
	}
	n := newNotices()
	cfg := gatewaytest.SFUConfig()
	cfg.Media.AllowedIPs = []string{"127.0.0.0/8", "198.18.0.0/15"}
	cfg.Admin.Token = metricsToken
	// Twice in many runs the in-process Go subscriber's socket.io
	// connection was dropped for "ping timeout" (no pong for 20 s) a few
	// seconds after the weak link was capped; it reconnected under a new
	// socket id and, as any client whose media connection outlives its
	// socket, got no media back. Not diagnosed (a stall of the test
	// process's socket.io client, or of the server's heartbeat for it);
	// these tests measure the adaptation, so the heartbeat gets a minute.
	cfg.Signaling.PingTimeout = time.Minute
	gw := gatewaytest.StartGatewayAt(t, link.HostIP, cfg, gateway.WithStreamNotices(n.add))
	gw.Server.Handle("/", web)
	ctx, cancel := context.WithTimeout(context.Background(), budget)
	t.Cleanup(cancel)
	return gw, n, ctx
}

// TestBrowserBehindShapedLink: a Chromium page in a child network
// namespace, behind a 1 Mbit/s downlink, joins an SFU room served across
// the link and decodes a Go publisher's video; what it received came
// through the cap. This is the set-up the bandwidth tests build on.
func TestBrowserBehindShapedLink(t *testing.T) {
	testenv.SkipIfNoBrowser(t)
	link := testenv.NewShaped(t, 1)
	if err := link.SetDownlink(1000); err != nil {
		t.Fatal(err)
	}
	gw, n, ctx := startShapedGateway(t, link, 90*time.Second)
	br := testenv.StartBrowserWith(t, testenv.BrowserOptions{Netns: link.Name,
		Args: []string{"--unsafely-treat-insecure-origin-as-secure=" + gw.URL}})

	const room = "shaped"
	pub := dial(t, gw.URL, room)
	cam := goPub("pub", "camera", publishFixture(t, pub.Socket, "camera", "shaped-cam", map[string]any{"name": "pub"}))
	p, err := testenv.OpenConformancePage(ctx, t, br, gw.URL, testenv.ConformanceOptions{WebURL: gw.URL, Name: "weak", AllowNonLoopback: true})
	if err != nil {
		t.Fatal(err)
	}
	env := &browserEnv{gw: gw, notes: n, browser: br, ctx: ctx}
	env.joinPage(t, p, room)
	gwPeer := gatewayPeerOf(t, ctx, p)
	video := pageVideoTrack(t, ctx, p, cam.msid)
	waitDecoded(t, ctx, p, gwPeer, 30, video)
	stats, err := p.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got uint64
	for _, in := range stats[gwPeer].Inbound {
		got += in.BytesReceived
	}
	through, err := link.DownlinkBytes()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("page received %d media bytes; %d bytes went through the shaped downlink", got, through)
	if uint64(through) < got {
		t.Errorf("the page's media (%d bytes) did not cross the shaped link (%d bytes)", got, through)
	}
}
