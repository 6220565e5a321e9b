package testenv_test

import (
	"context"
	"fmt"
	"log"
	"net/http/httptest"
	"time"

	"github.com/rtcio-gateway/rtcio-gateway/internal/testenv"
)

// A browser rtc.io peer publishes its fake camera with metadata into a room
// of the reference server. In a test, use ServeWeb(t), StartBrowser(t) and
// OpenConformancePage, which also clean up; a second page in the room would
// then see a "camera" stream-event with these args.
//
// No Output comment: it needs Chromium, so it is compiled here and its
// steps run for real in TestConformancePage.
func ExampleConnectConformancePeer() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv, err := testenv.NewRefServer(ctx, nil, testenv.RefServerConfig{})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	h, err := testenv.NewWebHandler()
	if err != nil {
		log.Fatal(err)
	}
	web := httptest.NewServer(h)
	defer web.Close()
	b, err := testenv.NewBrowser(ctx, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()
	page, err := b.OpenPage(ctx, web.URL+"/conformance.html")
	if err != nil {
		log.Fatal(err)
	}

	peer, err := testenv.ConnectConformancePeer(ctx, page, srv.URL(), testenv.ConformanceOptions{Name: "alice"})
	if err != nil {
		log.Fatal(err)
	}
	defer peer.Close(ctx)
	if err := peer.JoinRoom(ctx, "demo", ""); err != nil {
		log.Fatal(err)
	}
	cam, err := peer.PublishCamera(ctx, "camera", []any{map[string]any{"who": "alice"}, "$stream"}, testenv.MediaOptions{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(cam.TrackKinds)
}
