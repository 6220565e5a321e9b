package demo_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rtcio-gateway/rtcio-gateway/gateway/demo"
	"github.com/rtcio-gateway/rtcio-gateway/internal/testenv"
)

// waitFor evaluates cond (a JS expression) in the page until it is true,
// within the page itself, so the test waits on the page's own progress.
func waitFor(ctx context.Context, t *testing.T, page *testenv.Page, cond string) {
	t.Helper()
	js := fmt.Sprintf(`() => new Promise((resolve, reject) => {
		const t0 = Date.now();
		(function check() {
			let ok = false;
			try { ok = !!(%s); } catch (e) {}
			if (ok) return resolve(true);
			if (Date.now() - t0 > 10000) return reject(new Error("timed out waiting for: " + %q));
			setTimeout(check, 20);
		})();
	})`, cond, cond)
	if err := page.Eval(ctx, js, nil); err != nil {
		t.Fatalf("%v (page errors: %v)", err, page.Errors())
	}
}

func eval[T any](ctx context.Context, t *testing.T, page *testenv.Page, js string) T {
	t.Helper()
	var v T
	if err := page.Eval(ctx, js, &v); err != nil {
		t.Fatalf("eval %s: %v", js, err)
	}
	return v
}

// The page, run in real Chromium with fake camera and microphone, against a
// stand-in client module: it joins the room from ?room=, publishes its
// camera with its socket id, shows remote streams, toggles the microphone,
// shares and stops its screen (untracking the stream), and chats without
// interpreting HTML.
func TestPageInChromium(t *testing.T) {
	b := testenv.StartBrowser(t)
	h, err := demo.Handler(demo.Options{ClientURL: "/stub-rtcio.mjs", SignalingPath: "/rtc/"})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/", h)
	mux.HandleFunc("GET /stub-rtcio.mjs", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript")
		http.ServeFile(w, r, "testdata/stub-rtcio.mjs")
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	page, err := b.OpenPage(ctx, srv.URL+"/?room=standup&name=Ada")
	if err != nil {
		t.Fatal(err)
	}
	defer page.Close(context.Background())

	const calls = "(window.stubCalls || [])"
	waitFor(ctx, t, page, calls+`.some(c => c.via === "server" && c.ev === "join-room" && c.args[0].roomId === "standup" && c.args[0].name === "Ada")`)
	waitFor(ctx, t, page, calls+`.some(c => c.via === "emit" && c.ev === "camera" && c.args[0].id === "sock-me" && c.args[0].camera.startsWith("[RTCIOStream] "))`)
	if got := eval[string](ctx, t, page, `(window.stubCalls.find(c => c.via === "io") || {}).path`); got != "/rtc/" {
		t.Errorf("io() got path %q, want the configured /rtc/", got)
	}
	if n := eval[int](ctx, t, page, `document.querySelectorAll("#tiles .tile").length`); n != 1 {
		t.Errorf("%d tiles before anyone else joined, want 1 (local)", n)
	}

	// Someone else's camera arrives.
	if err := page.Eval(ctx, `() => {
		const c = document.createElement("canvas");
		c.width = 64; c.height = 36;
		c.getContext("2d").fillRect(0, 0, 64, 36);
		window.remoteMS = c.captureStream(5);
		window.stubFireServer("user-connected", { id: "sock-bob", name: "Bob" });
		window.stubFire("camera", { id: "sock-bob", name: "Bob", camera: new window.RTCIOStreamStub(window.remoteMS) });
	}`, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(ctx, t, page, `document.querySelectorAll("#tiles .tile").length === 2`)
	if got := eval[string](ctx, t, page, `[...document.querySelectorAll("#tiles figcaption")].map(f => f.textContent).join("|")`); !strings.Contains(got, "Bob") {
		t.Errorf("tile captions %q lack Bob", got)
	}

	// Mic toggle: the track is disabled and others are told.
	if err := page.Eval(ctx, `() => document.getElementById("mic").click()`, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(ctx, t, page, calls+`.some(c => c.via === "server" && c.ev === "media-state" && c.args[0].mic === false && c.args[0].roomId === "standup")`)
	if on := eval[bool](ctx, t, page, `document.querySelector("#tiles .tile.local video").srcObject.getAudioTracks()[0].enabled`); on {
		t.Error("microphone track still enabled after Mic off")
	}

	// Screen share, then stop: the stream is untracked and its tile goes.
	if err := page.Eval(ctx, `() => {
		navigator.mediaDevices.getDisplayMedia = async () => {
			const c = document.createElement("canvas");
			c.width = 64; c.height = 36;
			c.getContext("2d").fillRect(0, 0, 64, 36);
			return c.captureStream(5);
		};
		document.getElementById("screen").click();
	}`, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(ctx, t, page, calls+`.some(c => c.via === "emit" && c.ev === "screen" && c.args[0].id === "sock-me")`)
	waitFor(ctx, t, page, `document.querySelectorAll("#tiles .tile").length === 3`)
	if err := page.Eval(ctx, `() => document.getElementById("screen").click()`, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(ctx, t, page, calls+`.some(c => c.via === "untrackStream" && c.id === window.stubCalls.find(x => x.ev === "screen").args[0].screen.slice(14))`)
	waitFor(ctx, t, page, calls+`.some(c => c.via === "server" && c.ev === "stopScreenShare")`)
	waitFor(ctx, t, page, `document.querySelectorAll("#tiles .tile").length === 2`)

	// Chat both ways; markup in a message stays text.
	if err := page.Eval(ctx, `() => {
		window.stubFire("chat", { name: "Bob", text: "<img src=x onerror=window.pwned=1>hello" });
		document.getElementById("chat-input").value = "hi Bob";
		document.getElementById("chat-form").requestSubmit();
	}`, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(ctx, t, page, calls+`.some(c => c.via === "emit" && c.ev === "chat" && c.args[0].text === "hi Bob" && c.args[0].name === "Ada")`)
	log := eval[string](ctx, t, page, `document.getElementById("chat-log").textContent`)
	if !strings.Contains(log, "<img src=x onerror=window.pwned=1>hello") || !strings.Contains(log, "hi Bob") {
		t.Errorf("chat log %q", log)
	}
	if eval[bool](ctx, t, page, `document.querySelector("#chat-log img") !== null || window.pwned === 1`) {
		t.Error("chat message markup was interpreted")
	}

	// Bob leaves: his tile goes.
	if err := page.Eval(ctx, `() => window.stubFireServer("user-disconnected", { id: "sock-bob" })`, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(ctx, t, page, `document.querySelectorAll("#tiles .tile").length === 1`)

	if errs := page.Errors(); len(errs) > 0 {
		t.Errorf("page errors: %v", errs)
	}
	for _, m := range page.Console() {
		if m.Level == "error" {
			t.Errorf("console error: %s", m.Text)
		}
	}
}
