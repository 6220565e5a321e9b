package testenv

import (
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf16"
)

// TestConformancePage proves the browser conformance peer: two tabs in one
// room of the reference rtc.io server exchange cameras with metadata,
// decode each other's video over loopback, pass ctrl events and a custom
// channel both ways, and the receiver drops and counts hostile ctrl frames.
func TestConformancePage(t *testing.T) {
	sig := StartRefServer(t)
	b := StartBrowser(t)
	web := ServeWeb(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	alice, err := OpenConformancePage(ctx, t, b, sig, ConformanceOptions{WebURL: web, Name: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	bob, err := OpenConformancePage(ctx, t, b, sig, ConformanceOptions{WebURL: web, Name: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []*ConformancePeer{alice, bob} {
		if _, err := p.CreateChannel(ctx, "files", ChannelOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	// Alice publishes before anyone else is there: her stream must reach
	// Bob through replay when the connection comes up.
	if err := alice.JoinRoom(ctx, "room-1", ""); err != nil {
		t.Fatal(err)
	}
	camA, err := alice.PublishCamera(ctx, "camera", []any{map[string]any{"who": "alice", "n": 1}, "$stream"}, MediaOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := bob.JoinRoom(ctx, "room-1", ""); err != nil {
		t.Fatal(err)
	}
	camB, err := bob.PublishCamera(ctx, "camera", []any{map[string]any{"who": "bob", "nested": map[string]any{"s": "$stream"}}, "tail"}, MediaOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []StreamInfo{camA, camB} {
		if c.RTCIOStreamID == "" || c.RTCIOStreamID == c.MediaStreamID || !reflect.DeepEqual(c.TrackKinds, []string{"audio", "video"}) {
			t.Fatalf("published stream %+v: want distinct ids and audio+video", c)
		}
	}

	t.Run("stream events", func(t *testing.T) {
		checkCamera(ctx, t, bob, alice.ID, camA, func(ev PageEvent) error {
			var meta struct {
				Who string `json:"who"`
				N   int    `json:"n"`
			}
			if err := ev.Arg(0, &meta); err != nil || meta.Who != "alice" || meta.N != 1 || len(ev.Args) != 2 {
				return fmt.Errorf("args %s: want [{who:alice,n:1}, stream] (%v)", ev.Raw, err)
			}
			return nil
		})
		checkCamera(ctx, t, alice, bob.ID, camB, func(ev PageEvent) error {
			var tail string
			if err := ev.Arg(1, &tail); err != nil || tail != "tail" || !strings.Contains(string(ev.Args[0]), `"s":{"$stream"`) {
				return fmt.Errorf("args %s: want [{who:bob,nested:{s:stream}}, tail] (%v)", ev.Raw, err)
			}
			return nil
		})
	})

	t.Run("roles and loopback", func(t *testing.T) {
		// Bob joined second, so Alice got #rtcio:init-offer: polite.
		for _, tc := range []struct {
			p      *ConformancePeer
			remote string
			polite bool
		}{{alice, bob.ID, true}, {bob, alice.ID, false}} {
			pcs, err := tc.p.PeerConnections(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if pcs.Count != 1 || pcs.Peers[0].ID != tc.remote || pcs.Peers[0].Polite != tc.polite {
				t.Errorf("peer %s connections %+v: want one to %s, polite=%v", tc.p.ID, pcs, tc.remote, tc.polite)
			}
			stats, err := tc.p.Stats(ctx)
			if err != nil {
				t.Fatal(err)
			}
			// The page offers loopback candidates only, but Chromium may still
			// check from another local interface and pair peer-reflexively
			// (on a machine with only lo, as in CI, that cannot happen).
			// Either way no packet may leave this host. Chromium hides the
			// address of a peer-reflexive remote; the other side's local
			// address, checked in its own round, is that one.
			pair := stats[tc.remote].SelectedPair
			if pair == nil || pair.Local == nil || pair.Remote == nil || !hostAddress(t, pair.Local.Address) ||
				!(hostAddress(t, pair.Remote.Address) || pair.Remote.CandidateType == "prflx" && pair.Remote.Address == "") {
				t.Errorf("peer %s selected pair %s: want addresses of this host only", tc.p.ID, describePair(pair))
			}
		}
	})

	t.Run("ctrl events", func(t *testing.T) {
		if err := alice.Emit(ctx, "chat", "hello", map[string]any{"n": 2}); err != nil {
			t.Fatal(err)
		}
		ev, err := bob.WaitFor(ctx, `e.type === 'event' && e.name === 'chat'`, 0)
		if err != nil {
			t.Fatal(err)
		}
		var s string
		if ev.PeerID != alice.ID || ev.Via != "ctrl" || ev.Arg(0, &s) != nil || s != "hello" || len(ev.Args) != 2 {
			t.Errorf("bob got %s: want chat from %s with [hello, {n:2}]", ev.Raw, alice.ID)
		}
		if ok, err := bob.PeerEmit(ctx, alice.ID, "direct", 42); err != nil || !ok {
			t.Fatalf("bob peerEmit: %v %v", ok, err)
		}
		ev, err = alice.WaitFor(ctx, `e.type === 'event' && e.name === 'direct'`, 0)
		var n int
		if err != nil || ev.PeerID != bob.ID || ev.Arg(0, &n) != nil || n != 42 {
			t.Errorf("alice got %s (%v): want direct 42 from %s", ev.Raw, err, bob.ID)
		}
	})

	t.Run("custom channel", func(t *testing.T) {
		for _, p := range []*ConformancePeer{alice, bob} {
			if _, err := p.WaitFor(ctx, `e.type === 'channel-open' && e.channel === 'files'`, 0); err != nil {
				t.Fatal(err)
			}
		}
		if n, err := alice.ChannelEmit(ctx, "files", "meta", "a.txt", 3); err != nil || n != 1 {
			t.Fatalf("alice channelEmit: %d %v", n, err)
		}
		ev, err := bob.WaitFor(ctx, `e.type === 'channel-event' && e.channel === 'files'`, 0)
		var name string
		if err != nil || ev.Name != "meta" || ev.PeerID != alice.ID || ev.Arg(0, &name) != nil || name != "a.txt" {
			t.Errorf("bob got %s (%v): want meta(a.txt, 3) on files", ev.Raw, err)
		}
		payload := []byte{0, 1, 2, 0xfe, 0xff}
		if n, err := bob.ChannelSendBinary(ctx, "files", payload, alice.ID); err != nil || n != 1 {
			t.Fatalf("bob channelSend: %d %v", n, err)
		}
		ev, err = alice.WaitFor(ctx, `e.type === 'channel-data' && e.channel === 'files'`, 0)
		if err != nil {
			t.Fatal(err)
		}
		got, derr := base64.StdEncoding.DecodeString(ev.Base64)
		if derr != nil || string(got) != string(payload) || ev.PeerID != bob.ID {
			t.Errorf("alice got %s: want binary %x from %s", ev.Raw, payload, bob.ID)
		}
	})

	t.Run("hostile ctrl frames", func(t *testing.T) {
		frames := []RawFrame{
			RawText(`{"e":"peer-connect","d":[{"id":"forged"}]}`),
			RawText(`not json`),
			RawText(`{"e":"#rtcio:message","d":[]}`),
			RawText(`{"e":7}`),
			RawBinary([]byte{1, 2, 3}),
		}
		for _, f := range frames {
			if r, err := alice.SendRaw(ctx, bob.ID, "rtcio:ctrl", f); err != nil || !r.OK {
				t.Fatalf("send raw: %+v %v", r, err)
			}
		}
		// 2 MiB: Chromium refuses to send above the peer's max-message-size;
		// were it sent, the receiver would have to drop it as too large.
		big, err := alice.SendRaw(ctx, bob.ID, "rtcio:ctrl", RawLongText("x", 2<<20))
		if err != nil {
			t.Fatal(err)
		}
		// The ctrl channel is ordered: once this arrives, all of the above did.
		if err := alice.Emit(ctx, "sentinel"); err != nil {
			t.Fatal(err)
		}
		if _, err := bob.WaitFor(ctx, `e.type === 'event' && e.name === 'sentinel'`, 0); err != nil {
			t.Fatal(err)
		}
		sum, err := bob.Summary(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := Drops{Total: 5, NonText: 1, InvalidJSON: 1, BadName: 1, Internal: 1, Reserved: 1}
		if !big.OK {
			if big.Size != 2<<20 || big.Error == "" {
				t.Errorf("oversized send result %+v: want a refusal with its reason", big)
			}
		} else {
			want.Total++
			want.TooLarge++
		}
		if sum.Drops != want {
			t.Errorf("bob drops %+v, want %+v", sum.Drops, want)
		}
		evs, err := bob.Events(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		connects := 0
		for _, e := range evs {
			if e.Type == "peer-connect" {
				connects++
			}
			if e.Type == "event" && (e.Name == "peer-connect" || strings.HasPrefix(e.Name, "#rtcio:")) {
				t.Errorf("hostile frame reached listeners: %s", e.Raw)
			}
		}
		if connects != 1 {
			t.Errorf("bob logged %d peer-connect events, want exactly the real one", connects)
		}
	})

	t.Run("channel ids", func(t *testing.T) {
		for _, name := range []string{"files", "", "chat", "ğüş", "emoji😀", strings.Repeat("z", 300)} {
			var got int
			if err := bob.Page().EvalArg(ctx, `(n) => RTCIOConformance.channelId(n)`, name, &got); err != nil {
				t.Fatal(err)
			}
			if want := wantChannelID(name); got != want {
				t.Errorf("channelId(%q) = %d in the page, want %d", name, got, want)
			}
		}
	})

	t.Run("peer-disconnect after close", func(t *testing.T) {
		if err := alice.Close(ctx); err != nil {
			t.Fatal(err)
		}
		ev, err := bob.WaitFor(ctx, `e.type === 'peer-disconnect'`, 0)
		if err != nil || ev.PeerID != alice.ID {
			t.Fatalf("bob peer-disconnect %s (%v): want %s", ev.Raw, err, alice.ID)
		}
		pcs, err := bob.PeerConnections(ctx)
		if err != nil || pcs.Count != 0 {
			t.Errorf("bob still has connections %+v (%v)", pcs, err)
		}
	})
}

// checkCamera waits for the "camera" stream event from owner on p and checks
// ids, event args, and that video from it decodes.
func checkCamera(ctx context.Context, t *testing.T, p *ConformancePeer, owner string, pub StreamInfo, checkArgs func(PageEvent) error) {
	t.Helper()
	ev, err := p.WaitFor(ctx, `e.type === 'stream-event' && e.name === 'camera'`, 0)
	if err != nil {
		t.Fatal(err)
	}
	if ev.PeerID != owner {
		t.Errorf("camera event from %s, want %s", ev.PeerID, owner)
	}
	got, ok := ev.StreamArg()
	if !ok || got.RTCIOStreamID != pub.RTCIOStreamID || got.MediaStreamID != pub.MediaStreamID {
		t.Errorf("camera event %s: stream arg %+v, want ids of %+v", ev.Raw, got, pub)
	}
	if err := checkArgs(ev); err != nil {
		t.Error(err)
	}
	pred := fmt.Sprintf(`(s[%q] || {inbound: []}).inbound.some((i) => i.kind === 'video' && i.framesDecoded > 0)`, owner)
	if _, err := p.WaitForStats(ctx, pred); err != nil {
		t.Errorf("no decoded video from %s: %v", owner, err)
	}
}

// wantChannelID is the protocol's channel id, computed independently in Go.
func wantChannelID(name string) int {
	h := uint32(0x811c9dc5)
	for _, c := range utf16.Encode([]rune(name)) {
		h ^= uint32(c)
		h *= 0x01000193
	}
	return int(h%1023) + 1
}

func describePair(p *CandidatePair) string {
	if p == nil {
		return "none"
	}
	side := func(c *Candidate) string {
		if c == nil {
			return "?"
		}
		return fmt.Sprintf("%s %s:%d/%s", c.CandidateType, c.Address, c.Port, c.Protocol)
	}
	return side(p.Local) + " <-> " + side(p.Remote)
}

// hostAddress reports whether ip is loopback or assigned to one of this
// machine's interfaces, i.e. traffic to it never leaves the host.
func hostAddress(t *testing.T, ip string) bool {
	t.Helper()
	parsed := net.ParseIP(ip)
	if parsed == nil {
		return false
	}
	if parsed.IsLoopback() {
		return true
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatalf("interface addresses: %v", err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.Equal(parsed) {
			t.Logf("selected candidate %s is a local interface address, not loopback", ip)
			return true
		}
	}
	return false
}
