// Package demo serves the gateway's demo room page: open /?room=NAME in a
// few browsers to get a video room with mic and camera toggles, screen
// sharing and chat.
//
// The page is a plain rtc.io application. It loads the unmodified rtc.io
// client from ClientURL (a CDN by default, or a self-hosted copy) and uses
// only its public API: it contains no signaling or WebRTC code of ours, so
// it shows that a stock client works against the gateway. The files are
// embedded in the binary.
package demo

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// DefaultClientURL loads rtc.io 1.5.1 as an ES module from esm.sh, which
// also resolves the client's own import of socket.io-client for the
// browser (the package's dist/esm files use bare specifiers, so a plain
// file CDN URL would not load). Pinned to an exact version: the page runs
// whatever this URL serves.
const DefaultClientURL = "https://esm.sh/rtc.io@1.5.1"

//go:embed web
var files embed.FS

// Options configures the page.
type Options struct {
	// ClientURL is where the browser imports the rtc.io client from: an
	// absolute https URL, or an absolute path on the gateway's own origin
	// ("/static/rtc.io.mjs") for a self-hosted ES module bundle. Default
	// DefaultClientURL.
	ClientURL string
	// SignalingPath is the socket.io path of the gateway (default
	// "/socket.io/").
	SignalingPath string
	// ICEServersURL, when set, is fetched by the page for its iceServers
	// (the gateway's TURN credential endpoint, same origin).
	ICEServersURL string
	// Title names the page (default "rtcio-gateway demo").
	Title string
}

// Handler returns the page's handler: "/" (index.html), "/demo.js" and
// "/demo.css"; anything else is 404. Mount it at "/" or under a prefix
// with http.StripPrefix: the page refers to its files relatively.
func Handler(opts Options) (http.Handler, error) {
	if opts.ClientURL == "" {
		opts.ClientURL = DefaultClientURL
	}
	if opts.SignalingPath == "" {
		opts.SignalingPath = "/socket.io/"
	}
	if opts.Title == "" {
		opts.Title = "rtcio-gateway demo"
	}
	clientOrigin, err := checkClientURL(opts.ClientURL)
	if err != nil {
		return nil, err
	}
	if opts.ICEServersURL != "" && !strings.HasPrefix(opts.ICEServersURL, "/") {
		return nil, fmt.Errorf("demo: ICE servers URL %q: want a path on the gateway's origin", opts.ICEServersURL)
	}
	tmpl, err := template.ParseFS(files, "web/index.html")
	if err != nil {
		return nil, fmt.Errorf("demo: parse page: %w", err)
	}
	var index bytes.Buffer
	if err := tmpl.Execute(&index, opts); err != nil {
		return nil, fmt.Errorf("demo: render page: %w", err)
	}
	web, err := fs.Sub(files, "web")
	if err != nil {
		return nil, fmt.Errorf("demo: embedded files: %w", err)
	}
	// The files are part of the binary, so for a browser's cache they last
	// changed when this handler was made.
	h := &handler{index: index.Bytes(), assets: web, csp: contentSecurityPolicy(clientOrigin), modTime: time.Now()}
	return h, nil
}

type handler struct {
	index   []byte
	assets  fs.FS
	csp     string
	modTime time.Time
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("Content-Security-Policy", h.csp)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Referrer-Policy", "no-referrer")
	switch r.URL.Path {
	case "/", "/index.html":
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		http.ServeContent(w, r, "index.html", h.modTime, bytes.NewReader(h.index))
	case "/demo.js", "/demo.css":
		b, err := fs.ReadFile(h.assets, strings.TrimPrefix(r.URL.Path, "/"))
		if err != nil {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		w.Header().Set("Cache-Control", "no-cache")
		http.ServeContent(w, r, r.URL.Path, h.modTime, bytes.NewReader(b))
	default:
		http.NotFound(w, r)
	}
}

// checkClientURL accepts an https URL or an absolute path, and returns the
// origin scripts may be loaded from ("" for the page's own).
func checkClientURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("demo: client URL %q: %w", raw, err)
	}
	switch {
	case u.Scheme == "" && u.Host == "" && strings.HasPrefix(u.Path, "/") && !strings.HasPrefix(raw, "//"):
		return "", nil
	case u.Scheme == "https" && u.Host != "":
		return u.Scheme + "://" + u.Host, nil
	case u.Scheme == "http" && isLoopbackHost(u.Hostname()):
		return u.Scheme + "://" + u.Host, nil
	}
	return "", fmt.Errorf("demo: client URL %q: want an https URL or an absolute path", raw)
}

func isLoopbackHost(h string) bool {
	return h == "localhost" || h == "127.0.0.1" || h == "::1"
}

// contentSecurityPolicy limits the page to its own files plus the client's
// origin, so a compromised chat message or stream label cannot pull in
// other scripts. Media and socket.io connections stay on the gateway.
func contentSecurityPolicy(clientOrigin string) string {
	scripts := "'self'"
	if clientOrigin != "" {
		scripts += " " + clientOrigin
	}
	return strings.Join([]string{
		"default-src 'self'",
		"script-src " + scripts,
		"connect-src 'self'",
		"img-src 'self' data:",
		"media-src 'self' blob: mediastream:",
		"style-src 'self'",
		"object-src 'none'",
		"base-uri 'none'",
		"frame-ancestors 'none'",
	}, "; ")
}
