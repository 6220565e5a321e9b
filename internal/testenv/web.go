package testenv

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The conformance page (test/web/conformance.html) is our own browser rtc.io
// peer, written from docs/PROTOCOL.md, because the real rtc.io npm client
// is not available here. It runs on the browser's RTCPeerConnection and the
// socket.io-client 4.x browser build; Go drives it through Page.EvalArg.

// defaultPageWait bounds a page-side wait when ctx has no deadline.
const defaultPageWait = 10 * time.Second

// NewWebHandler serves test/web at / and socket.io-client's browser build
// at /vendor/socket.io.min.js (from test/node/node_modules).
func NewWebHandler() (http.Handler, error) {
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	webDir := filepath.Join(root, "test", "web")
	vendor := filepath.Join(root, "test", "node", "node_modules", "socket.io-client", "dist", "socket.io.min.js")
	for _, p := range []string{filepath.Join(webDir, "conformance.html"), vendor} {
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("web handler: %w (is test/node installed with npm ci?)", err)
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/vendor/socket.io.min.js", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, vendor)
	})
	// A 204 keeps the browser's automatic favicon request out of the
	// console log tests read.
	mux.HandleFunc("/favicon.ico", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})
	mux.Handle("/", http.FileServer(http.Dir(webDir)))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Pages reload between tests on a shared profile; never serve a
		// stale copy of the page's scripts.
		w.Header().Set("Cache-Control", "no-store")
		mux.ServeHTTP(w, r)
	}), nil
}

// ServeWeb serves test/web and the socket.io browser build on 127.0.0.1 for
// t and returns the base URL (no trailing slash). The server stops at
// cleanup. A missing test/node install skips the test (fails under CI).
func ServeWeb(t testing.TB) string {
	t.Helper()
	SkipIfNoNode(t)
	h, err := NewWebHandler()
	if err != nil {
		t.Fatalf("serve web: %v", err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// ConformancePeer is one rtc.io peer running in a conformance page. Its
// methods call the page's JavaScript API (test/web/rtcio-conformance.js).
type ConformancePeer struct {
	page   *Page
	handle int
	// ID is the peer's socket.io id (the id other peers know it by).
	ID string
}

// OpenConformancePage opens a tab on b with the conformance page and
// connects a peer to the rtc.io signaling server at signalingURL. The peer
// is closed at cleanup; if the test failed, its last events are logged.
func OpenConformancePage(ctx context.Context, t testing.TB, b *Browser, signalingURL string, opts ConformanceOptions) (*ConformancePeer, error) {
	t.Helper()
	if opts.WebURL == "" {
		opts.WebURL = ServeWeb(t)
	}
	page, err := b.OpenPage(ctx, strings.TrimSuffix(opts.WebURL, "/")+"/conformance.html")
	if err != nil {
		return nil, err
	}
	c, err := ConnectConformancePeer(ctx, page, signalingURL, opts)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if t.Failed() {
			c.logTail(cctx, t, 60)
		}
		if err := c.Close(cctx); err != nil {
			t.Logf("conformance peer %s: close: %v", c.ID, err)
		}
		if err := page.Close(cctx); err != nil {
			t.Logf("conformance page %s: close: %v", page.ID(), err)
		}
	})
	return c, nil
}

// ConnectConformancePeer connects one more peer in an already loaded
// conformance page (a page can hold several). The caller closes it.
func ConnectConformancePeer(ctx context.Context, page *Page, signalingURL string, opts ConformanceOptions) (*ConformancePeer, error) {
	var out struct {
		Handle int    `json:"handle"`
		ID     string `json:"id"`
	}
	js := `async (a) => { const p = await RTCIOConformance.connect(a.url, a.opts); return {handle: p.handle, id: p.id}; }`
	if err := page.EvalArg(ctx, js, map[string]any{"url": signalingURL, "opts": opts.jsOptions()}, &out); err != nil {
		return nil, fmt.Errorf("conformance peer connect to %s: %w", signalingURL, err)
	}
	return &ConformancePeer{page: page, handle: out.Handle, ID: out.ID}, nil
}

// Page is the tab the peer runs in.
func (c *ConformancePeer) Page() *Page { return c.page }

// call runs peer.method(...args) in the page and decodes the result.
// Arguments must be concrete: JS defaults do not apply to null.
func (c *ConformancePeer) call(ctx context.Context, method string, result any, args ...any) error {
	if args == nil {
		args = []any{}
	}
	js := `async (a) => { const r = await RTCIOConformance.get(a.h)[a.m](...a.args); return r === undefined ? null : r; }`
	if err := c.page.EvalArg(ctx, js, map[string]any{"h": c.handle, "m": method, "args": args}, result); err != nil {
		return fmt.Errorf("conformance peer %s: %s: %w", c.ID, method, err)
	}
	return nil
}

// pageWait turns ctx's deadline into a page-side timeout in milliseconds,
// leaving a margin so the page's own error (with its last events) arrives
// before ctx ends.
func pageWait(ctx context.Context) int64 {
	d := defaultPageWait
	if dl, ok := ctx.Deadline(); ok {
		d = time.Until(dl) - 500*time.Millisecond
	}
	if d < 100*time.Millisecond {
		d = 100 * time.Millisecond
	}
	return d.Milliseconds()
}

// JoinRoom emits join-room {roomId, name}; an empty name uses the
// options' Name.
func (c *ConformancePeer) JoinRoom(ctx context.Context, roomID, name string) error {
	var n any
	if name != "" {
		n = name
	}
	return c.call(ctx, "joinRoom", nil, roomID, n)
}

// LeaveRoom emits leave-room {roomId}.
func (c *ConformancePeer) LeaveRoom(ctx context.Context, roomID string) error {
	return c.call(ctx, "leaveRoom", nil, roomID)
}

// ServerEmit emits a plain socket.io event to the signaling server.
func (c *ConformancePeer) ServerEmit(ctx context.Context, ev string, args ...any) error {
	return c.call(ctx, "serverEmit", nil, append([]any{ev}, args...)...)
}

// HoldSignals holds this peer's outgoing #rtcio:message traffic until
// ReleaseSignals; two peers holding while both renegotiate collide for sure.
func (c *ConformancePeer) HoldSignals(ctx context.Context) error {
	return c.call(ctx, "holdSignals", nil)
}

// ReleaseSignals sends the held messages in order and returns how many.
func (c *ConformancePeer) ReleaseSignals(ctx context.Context) (int, error) {
	var n int
	err := c.call(ctx, "releaseSignals", &n)
	return n, err
}

// RequestStreamEvents sends {mid: mediaStreamID} to peerID again; the owner
// answers with its current events or, once untracked, stays silent.
func (c *ConformancePeer) RequestStreamEvents(ctx context.Context, peerID, mediaStreamID string) error {
	return c.call(ctx, "requestStreamEvents", nil, peerID, mediaStreamID)
}

// DropSignaling closes the socket.io transport so the client reconnects.
func (c *ConformancePeer) DropSignaling(ctx context.Context) error {
	return c.call(ctx, "dropSignaling", nil)
}

// Emit is rtc.io's socket.emit without a stream: a ctrl-channel broadcast
// to every connected peer (names starting with #rtcio: go to the server).
func (c *ConformancePeer) Emit(ctx context.Context, ev string, args ...any) error {
	return c.call(ctx, "emit", nil, append([]any{ev}, args...)...)
}

// PeerEmit is socket.peer(id).emit: one peer's ctrl channel. It reports
// whether a connection to that peer exists.
func (c *ConformancePeer) PeerEmit(ctx context.Context, peerID, ev string, args ...any) (bool, error) {
	var ok bool
	err := c.call(ctx, "peerEmit", &ok, append([]any{peerID, ev}, args...)...)
	return ok, err
}

// PublishCamera captures media and emits it as socket.emit(event, ...args).
// The string "$stream" anywhere in args marks where the stream goes; without
// it the stream is appended as the last argument.
func (c *ConformancePeer) PublishCamera(ctx context.Context, event string, args []any, media MediaOptions) (StreamInfo, error) {
	if args == nil {
		args = []any{}
	}
	src := media.Source
	if src == "" {
		src = "auto"
	}
	var s StreamInfo
	opts := map[string]any{"audio": !media.NoAudio, "video": !media.NoVideo, "source": src, "timeoutMs": 5000}
	err := c.call(ctx, "publishCamera", &s, event, args, opts)
	return s, err
}

// EmitStream emits an already published stream again under event.
func (c *ConformancePeer) EmitStream(ctx context.Context, event string, args []any, rtcioStreamID string) (StreamInfo, error) {
	if args == nil {
		args = []any{}
	}
	var s StreamInfo
	err := c.call(ctx, "emitStream", &s, event, args, rtcioStreamID)
	return s, err
}

// UntrackStream removes the stream from the replay registry; it reports
// whether it was there.
func (c *ConformancePeer) UntrackStream(ctx context.Context, rtcioStreamID string) (bool, error) {
	var had bool
	err := c.call(ctx, "untrackStream", &had, rtcioStreamID)
	return had, err
}

// RemoveTrack removes the stream's track of kind ("audio"/"video"):
// replaceTrack(null) and direction inactive on every peer.
func (c *ConformancePeer) RemoveTrack(ctx context.Context, rtcioStreamID, kind string) (StreamInfo, error) {
	var s StreamInfo
	err := c.call(ctx, "removeTrack", &s, rtcioStreamID, kind)
	return s, err
}

// RestoreTrack puts back a track RemoveTrack took away.
func (c *ConformancePeer) RestoreTrack(ctx context.Context, rtcioStreamID, kind string) (StreamInfo, error) {
	var s StreamInfo
	err := c.call(ctx, "restoreTrack", &s, rtcioStreamID, kind)
	return s, err
}

// SwapTrack replaces the track of kind with a clone through replaceTrack
// (no renegotiation) and returns the old and new track ids.
func (c *ConformancePeer) SwapTrack(ctx context.Context, rtcioStreamID, kind string) (oldID, newID string, err error) {
	var out struct {
		Old string `json:"oldTrackId"`
		New string `json:"newTrackId"`
	}
	err = c.call(ctx, "swapTrack", &out, rtcioStreamID, kind)
	return out.Old, out.New, err
}

// CreateChannel is socket.createChannel(name): the channel on every current
// and future peer.
func (c *ConformancePeer) CreateChannel(ctx context.Context, name string, opts ChannelOptions) (ChannelInfo, error) {
	var ch ChannelInfo
	err := c.call(ctx, "createChannel", &ch, name, opts)
	return ch, err
}

// CreatePeerChannel is socket.peer(id).createChannel(name).
func (c *ConformancePeer) CreatePeerChannel(ctx context.Context, peerID, name string, opts ChannelOptions) (ChannelInfo, error) {
	var ch ChannelInfo
	err := c.call(ctx, "createPeerChannel", &ch, peerID, name, opts)
	return ch, err
}

// ChannelEmit sends an {e, d} envelope on channel name to every peer that
// has it and returns how many did.
func (c *ConformancePeer) ChannelEmit(ctx context.Context, name, ev string, args ...any) (int, error) {
	var n int
	err := c.call(ctx, "channelEmit", &n, append([]any{name, ev}, args...)...)
	return n, err
}

// ChannelSendBinary sends raw bytes on channel name, to peerID or (empty)
// to every peer that has it; it returns how many peers it went to.
func (c *ConformancePeer) ChannelSendBinary(ctx context.Context, name string, data []byte, peerID string) (int, error) {
	var n int
	opts := map[string]any{"base64": true}
	if peerID != "" {
		opts["peerId"] = peerID
	}
	err := c.call(ctx, "channelSend", &n, name, data, opts)
	return n, err
}

// SendRaw puts frame straight onto the data channel labelled label
// ("rtcio:ctrl", "rtcio:ch:<name>") to peerID, bypassing envelopes, to test
// the receiver's filters. It waits for the channel to open.
func (c *ConformancePeer) SendRaw(ctx context.Context, peerID, label string, frame RawFrame) (RawResult, error) {
	var r RawResult
	err := c.call(ctx, "sendRaw", &r, peerID, label, frame.v, pageWait(ctx))
	return r, err
}

// WaitFor waits in the page for the first event after seq since (0: any)
// matching predicate, a JavaScript expression over e (a PageEvent record),
// e.g. `e.type === 'stream-event' && e.name === 'camera'`. The wait ends
// with ctx's deadline (10 s without one); the error lists recent events.
func (c *ConformancePeer) WaitFor(ctx context.Context, predicate string, since int) (PageEvent, error) {
	var e PageEvent
	err := c.call(ctx, "waitFor", &e, predicate, pageWait(ctx), since)
	return e, err
}

// WaitForStats polls the page's Stats until predicate, a JavaScript
// expression over s (peer id -> PeerStats as JSON), holds.
func (c *ConformancePeer) WaitForStats(ctx context.Context, predicate string) (map[string]PeerStats, error) {
	var s map[string]PeerStats
	err := c.call(ctx, "waitForStats", &s, predicate, pageWait(ctx))
	return s, err
}

// Events returns the logged events after seq since.
func (c *ConformancePeer) Events(ctx context.Context, since int) ([]PageEvent, error) {
	var evs []PageEvent
	err := c.call(ctx, "eventsSince", &evs, since)
	return evs, err
}

// Summary returns drop counts, negotiation counters and connection facts.
func (c *ConformancePeer) Summary(ctx context.Context) (PeerSummary, error) {
	var s PeerSummary
	err := c.call(ctx, "summary", &s)
	return s, err
}

// PeerConnections describes the page's peer connections.
func (c *ConformancePeer) PeerConnections(ctx context.Context) (PeerConnections, error) {
	var pcs PeerConnections
	err := c.call(ctx, "peerConnections", &pcs)
	return pcs, err
}

// Stats returns inbound/outbound RTP stats and the selected candidate pair
// per peer connection.
func (c *ConformancePeer) Stats(ctx context.Context) (map[string]PeerStats, error) {
	var s map[string]PeerStats
	err := c.call(ctx, "stats", &s)
	return s, err
}

// ClosePeer closes the connection to one peer from this side.
func (c *ConformancePeer) ClosePeer(ctx context.Context, peerID string) (bool, error) {
	var ok bool
	err := c.call(ctx, "closePeer", &ok, peerID)
	return ok, err
}

// Close closes every peer connection, the socket and the local media.
func (c *ConformancePeer) Close(ctx context.Context) error {
	js := `(a) => { const p = RTCIOConformance.handles().includes(a.h) ? RTCIOConformance.get(a.h) : null; if (p) p.close(); return null; }`
	if err := c.page.EvalArg(ctx, js, map[string]any{"h": c.handle}, nil); err != nil {
		return fmt.Errorf("conformance peer %s: close: %w", c.ID, err)
	}
	return nil
}

// logTail logs the peer's last n events, for a failed test.
func (c *ConformancePeer) logTail(ctx context.Context, t testing.TB, n int) {
	evs, err := c.Events(ctx, 0)
	if err != nil {
		t.Logf("conformance peer %s: events: %v", c.ID, err)
		return
	}
	if len(evs) > n {
		evs = evs[len(evs)-n:]
	}
	for _, e := range evs {
		t.Logf("conformance peer %s event: %s", c.ID, compactJSON(e.Raw))
	}
}

func compactJSON(b json.RawMessage) string {
	if len(b) > 400 {
		return string(b[:400]) + "..."
	}
	return string(b)
}
