package demo_test

import (
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/rtcio-gateway/rtcio-gateway/gateway/demo"
)

func get(t *testing.T, srv *httptest.Server, path string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func serve(t *testing.T, opts demo.Options) *httptest.Server {
	t.Helper()
	h, err := demo.Handler(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func TestPageIsServedWithTheConfiguredClientURL(t *testing.T) {
	for _, tc := range []struct {
		name, clientURL, want, origin string
	}{
		{"default CDN", "", demo.DefaultClientURL, "https://esm.sh"},
		{"other CDN", "https://cdn.example.org/npm/rtc.io@1.5.1/+esm", "https://cdn.example.org/npm/rtc.io@1.5.1/+esm", "https://cdn.example.org"},
		{"self-hosted", "/static/rtc.io.mjs", "/static/rtc.io.mjs", ""},
		{"query string", "https://esm.sh/rtc.io@1.5.1?bundle&target=es2022", "https://esm.sh/rtc.io@1.5.1?bundle&target=es2022", "https://esm.sh"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := serve(t, demo.Options{ClientURL: tc.clientURL, SignalingPath: "/rtc/", ICEServersURL: "/turn/credentials"})
			resp, body := get(t, srv, "/?room=standup")
			if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
				t.Fatalf("GET / = %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			// The URL is in the page exactly as configured (HTML-escaped in
			// its attribute, which the browser undoes).
			m := regexp.MustCompile(`<meta name="rtcio-client-url" content="([^"]*)">`).FindStringSubmatch(body)
			if m == nil || html.UnescapeString(m[1]) != tc.want {
				t.Errorf("client URL meta %q, want %q", m, tc.want)
			}
			for _, want := range []string{`content="/rtc/"`, `content="/turn/credentials"`, `src="demo.js"`, `href="demo.css"`} {
				if !strings.Contains(body, want) {
					t.Errorf("page lacks %s", want)
				}
			}
			csp := resp.Header.Get("Content-Security-Policy")
			if !strings.Contains(csp, "script-src 'self'") || (tc.origin != "" && !strings.Contains(csp, "script-src 'self' "+tc.origin+";")) {
				t.Errorf("CSP %q does not allow scripts from %q", csp, tc.origin)
			}
		})
	}
}

func TestAssetsAndRouting(t *testing.T) {
	srv := serve(t, demo.Options{})
	for path, want := range map[string]string{
		"/demo.js":  "javascript",
		"/demo.css": "text/css",
	} {
		resp, body := get(t, srv, path)
		if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Header.Get("Content-Type"), want) || len(body) == 0 {
			t.Errorf("GET %s = %d %q (%d bytes)", path, resp.StatusCode, resp.Header.Get("Content-Type"), len(body))
		}
	}
	for _, path := range []string{"/web/demo.js", "/index.html/x", "/../demo.go", "/demo.go"} {
		if resp, _ := get(t, srv, path); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s = %d, want 404", path, resp.StatusCode)
		}
	}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+"/", nil)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST / = %d", resp.StatusCode)
	}
}

// The page must be a plain rtc.io application: no signaling or WebRTC code
// of ours, only the public client API.
func TestPageContainsNoProtocolCode(t *testing.T) {
	srv := serve(t, demo.Options{})
	var all strings.Builder
	for _, path := range []string{"/", "/demo.js", "/demo.css"} {
		_, body := get(t, srv, path)
		all.WriteString(body)
	}
	page := all.String()
	for _, banned := range []string{
		"#rtcio:", "RTCPeerConnection", "socket.io-client", "socket.io.min.js", "/socket.io/socket.io",
		"createOffer", "createAnswer", "setLocalDescription", "setRemoteDescription", "addIceCandidate",
		"addTransceiver", "createDataChannel", "ondatachannel", "rtcio:ctrl", "rtcio:ch:",
	} {
		if strings.Contains(page, banned) {
			t.Errorf("page contains %q", banned)
		}
	}
	// What it does use: the public rtc.io API.
	for _, used := range []string{
		`import(meta("rtcio-client-url"))`, "RTCIOStream", `socket.server.emit("join-room"`,
		`socket.emit("camera"`, `socket.on("camera"`, `socket.emit("screen"`, "socket.untrackStream(",
		`socket.on("track-removed"`, `socket.emit("chat"`, `socket.on("chat"`, "getDisplayMedia",
		`params.get("room")`,
	} {
		if !strings.Contains(page, used) {
			t.Errorf("page does not use %s", used)
		}
	}
	// Exactly one import, from the configured client URL.
	if n := strings.Count(page, "import("); n != 1 || strings.Contains(page, "import ") && regexp.MustCompile(`(?m)^\s*import\s`).MatchString(page) {
		t.Errorf("page has %d dynamic imports or a static import", n)
	}
}

func TestBadOptionsAreRefused(t *testing.T) {
	for _, u := range []string{
		"javascript:alert(1)", "http://cdn.example.org/rtc.io.mjs", "//cdn.example.org/rtc.io.mjs",
		"rtc.io.mjs", "data:text/javascript,1", "https://", "https://[::1",
	} {
		if _, err := demo.Handler(demo.Options{ClientURL: u}); err == nil {
			t.Errorf("client URL %q accepted", u)
		}
	}
	if _, err := demo.Handler(demo.Options{ClientURL: "http://127.0.0.1:8080/rtc.io.mjs"}); err != nil {
		t.Errorf("loopback http client URL refused: %v", err)
	}
	if _, err := demo.Handler(demo.Options{ICEServersURL: "https://elsewhere.example/turn"}); err == nil {
		t.Error("cross-origin ICE servers URL accepted")
	}
}

// The script must at least parse as an ES module; node (used by the
// project's other browser tests) checks it without running it.
func TestScriptParsesAsModule(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not installed: cannot syntax-check demo.js")
	}
	srv := serve(t, demo.Options{})
	_, js := get(t, srv, "/demo.js")
	path := filepath.Join(t.TempDir(), "demo.mjs")
	if err := os.WriteFile(path, []byte(js), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(t.Context(), node, "--check", path).CombinedOutput()
	if err != nil {
		t.Fatalf("node --check demo.js: %v\n%s", err, out)
	}
}
