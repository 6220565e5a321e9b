package testenv

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

const testPage = `<!doctype html>
<html><head><title>harness</title></head>
<body><script>console.log("page-loaded " + location.pathname);</script></body></html>`

func servePage(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(testPage))
	}))
	t.Cleanup(srv.Close)
	if !strings.HasPrefix(srv.URL, "http://127.0.0.1:") {
		t.Fatalf("test page served at %s, want loopback", srv.URL)
	}
	return srv.URL
}

// TestBrowser opens a page served on loopback and exercises evaluation,
// console forwarding, fake media devices and loopback WebRTC: the things
// the browser interop tests of other packages rely on.
func TestBrowser(t *testing.T) {
	b := StartBrowser(t)
	url := servePage(t)
	ctx := testCtx(t, 90*time.Second)

	page, err := b.OpenPage(ctx, url+"/room")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := page.WaitConsole(ctx, func(m ConsoleMessage) bool {
		return m.Level == "log" && m.Text == "page-loaded /room"
	}); err != nil {
		t.Fatal(err)
	}

	var sum int
	if err := page.Eval(ctx, "1+1", &sum); err != nil || sum != 2 {
		t.Fatalf("1+1 = %d, %v", sum, err)
	}
	var echoed struct{ N int }
	if err := page.EvalArg(ctx, "async (a) => ({N: a.n * 3})", map[string]int{"n": 7}, &echoed); err != nil || echoed.N != 21 {
		t.Fatalf("function with arg = %+v, %v", echoed, err)
	}

	err = page.Eval(ctx, "(() => { throw new Error('boom') })()", nil)
	var de *DriverError
	if !errors.As(err, &de) || !strings.Contains(de.Message, "boom") {
		t.Fatalf("throwing script: %v, want DriverError with the page's message", err)
	}

	var media struct {
		Kinds  []string
		Width  int
		Secure bool
	}
	if err := page.Eval(ctx, `async () => {
		const s = await navigator.mediaDevices.getUserMedia({audio: true, video: true});
		const v = s.getVideoTracks()[0].getSettings();
		const kinds = s.getTracks().map(t => t.kind).sort();
		s.getTracks().forEach(t => t.stop());
		return {Kinds: kinds, Width: v.width, Secure: window.isSecureContext};
	}`, &media); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(media.Kinds, []string{"audio", "video"}) || media.Width <= 0 || !media.Secure {
		t.Fatalf("getUserMedia with fake devices = %+v", media)
	}

	// Two peer connections in one page must connect over loopback only:
	// under scripts/test.sh the tests run in a namespace whose only
	// interface is lo.
	var echo string
	if err := page.Eval(ctx, `async () => {
		const a = new RTCPeerConnection(), b = new RTCPeerConnection();
		a.onicecandidate = e => e.candidate && b.addIceCandidate(e.candidate);
		b.onicecandidate = e => e.candidate && a.addIceCandidate(e.candidate);
		const ch = a.createDataChannel("t", {negotiated: true, id: 0});
		const got = new Promise(res => {
			const ch2 = b.createDataChannel("t", {negotiated: true, id: 0});
			ch2.onmessage = e => res(e.data);
		});
		ch.onopen = () => ch.send("over loopback");
		await a.setLocalDescription();
		await b.setRemoteDescription(a.localDescription);
		await b.setLocalDescription();
		await a.setRemoteDescription(b.localDescription);
		const out = await got;
		a.close(); b.close();
		return out;
	}`, &echo); err != nil {
		t.Fatal(err)
	}
	if echo != "over loopback" {
		t.Fatalf("data channel delivered %q", echo)
	}

	if err := page.Eval(ctx, "console.error('on purpose')", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := page.WaitConsole(ctx, func(m ConsoleMessage) bool {
		return m.Level == "error" && m.Text == "on purpose"
	}); err != nil {
		t.Fatal(err)
	}
	if err := page.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := page.Eval(ctx, "1", nil); err == nil {
		t.Fatal("eval in a closed page succeeded")
	}
}

// TestBrowserDataURL checks pages that need no server, and that two pages
// are independent handles.
func TestBrowserDataURL(t *testing.T) {
	b := StartBrowser(t)
	ctx := testCtx(t, 60*time.Second)
	p1, err := b.OpenPage(ctx, "data:text/html,<title>one</title>")
	if err != nil {
		t.Fatal(err)
	}
	p2, err := b.OpenPage(ctx, "data:text/html,<title>two</title>")
	if err != nil {
		t.Fatal(err)
	}
	for page, want := range map[*Page]string{p1: "one", p2: "two"} {
		var title string
		if err := page.Eval(ctx, "document.title", &title); err != nil || title != want {
			t.Fatalf("page %s title = %q, %v; want %q", page.ID(), title, err, want)
		}
	}
}

// TestBrowserCloseRemovesProfile checks that nothing of Chromium survives
// Close: no process using the profile, no profile directory.
func TestBrowserCloseRemovesProfile(t *testing.T) {
	SkipIfNoBrowser(t)
	b, err := NewBrowser(context.Background(), t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	profile := b.profile
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if pids := pidsWithArg("--user-data-dir=" + profile); len(pids) > 0 {
		t.Fatalf("chromium processes %v outlived Close", pids)
	}
	if _, err := os.Stat(profile); err == nil {
		t.Fatalf("profile %s still exists after Close", profile)
	}
}
