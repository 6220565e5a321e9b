package sfu_test

import (
	"encoding/base64"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/rtcio-gateway/rtcio-gateway/gateway/sfu"
	"github.com/rtcio-gateway/rtcio-gateway/internal/testenv"
)

// removalBound is how soon the others must see a departed publisher's
// tracks removed (a plain rtc.io mesh takes 8 to 10 s).
const removalBound = 2 * time.Second

// TestBrowserSFUFourParticipants: two Chromium conformance pages and two Go
// rtc.io sockets share an SFU room, each publishing a stream. Each has one
// peer connection, to the gateway peer, and gets the three other streams
// with their event name, args and ids intact; the browsers decode every
// remote video and the Go sockets receive RTP on every remote track. Each
// browser sends one copy of its video, not one per receiver. Ctrl events
// and "chat" channel frames of one browser reach the three others in order,
// and reserved ctrl names are not relayed.
func TestBrowserSFUFourParticipants(t *testing.T) {
	env := startBrowserSFU(t, 80*time.Second)
	ctx := env.ctx
	const room = "four"
	alice := env.openPage(t, "alice")
	bob := env.openPage(t, "bob")
	carol := newGoPeer(t, env.gw.URL, "carol", "camera")
	dave := newGoPeer(t, env.gw.URL, "dave", "camera")
	env.joinPage(t, alice, room)
	carol.join(t, room)
	env.joinPage(t, bob, room)
	dave.join(t, room)

	pubs := map[string]pub{
		"alice": pagePub("alice", "camera", env.publishPage(t, alice, "camera", "alice")),
		"carol": goPub("carol", "camera", publishFixture(t, carol.Socket, "camera", "carol-cam", map[string]any{"name": "carol"})),
		"bob":   pagePub("bob", "camera", env.publishPage(t, bob, "camera", "bob")),
		"dave":  goPub("dave", "camera", publishFixture(t, dave.Socket, "camera", "dave-cam", map[string]any{"name": "dave"})),
	}
	others := func(self string) []pub {
		var out []pub
		for _, name := range []string{"alice", "bob", "carol", "dave"} {
			if name != self {
				out = append(out, pubs[name])
			}
		}
		return out
	}
	pages := map[string]*testenv.ConformancePeer{"alice": alice, "bob": bob}
	gos := map[string]*goPeer{"carol": carol, "dave": dave}

	gwPeer := gatewayPeerOf(t, ctx, alice)
	for _, id := range []string{alice.ID, bob.ID, carol.ID(), dave.ID()} {
		if gwPeer == id {
			t.Fatalf("alice's peer %s is a participant: not an SFU room", gwPeer)
		}
	}
	// videoOf[page][msid] is the page's received video track of msid.
	videoOf := map[string]map[string]string{}

	t.Run("streams", func(t *testing.T) {
		for name, p := range pages {
			videoOf[name] = map[string]string{}
			var ids []string
			for _, s := range others(name) {
				waitPageStream(t, ctx, p, gwPeer, s)
				id := pageVideoTrack(t, ctx, p, s.msid)
				videoOf[name][s.msid] = id
				ids = append(ids, id)
			}
			waitDecoded(t, ctx, p, gwPeer, 0, ids...)
		}
		for name, g := range gos {
			for _, s := range others(name) {
				checkGoStream(t, name, g.streamEvent(t, "camera", s.msid), gwPeer, s)
				g.waitRTP(t, 20, nil, s.msid, "audio", "video")
			}
		}
		// Checked once everything flows: a mesh would have opened more
		// connections by now.
		for name, p := range pages {
			pcs, err := p.PeerConnections(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if pcs.Count != 1 || pcs.Peers[0].ID != gwPeer {
				t.Errorf("%s has peer connections %+v, want one, to the gateway %s", name, pcs, gwPeer)
				continue
			}
			var remote []string
			for _, s := range pcs.Peers[0].Streams {
				if s.Remote {
					remote = append(remote, s.MediaStreamID)
				}
			}
			var want []string
			for _, s := range others(name) {
				want = append(want, s.msid)
			}
			slices.Sort(remote)
			slices.Sort(want)
			if !slices.Equal(remote, want) {
				t.Errorf("%s receives streams %v, want the three others' %v", name, remote, want)
			}
		}
		for name, g := range gos {
			if peers := g.Peers(); !slices.Equal(peers, []string{gwPeer}) {
				t.Errorf("%s has peers %v, want only the gateway %s", name, peers, gwPeer)
			}
			for k := range g.packets() {
				if k.msid == pubs[name].msid {
					t.Errorf("%s received its own stream back", name)
				}
			}
		}
	})
	if t.Failed() {
		return
	}

	t.Run("uplink", func(t *testing.T) {
		// One stream's worth is what a subscriber receives of it: bob's
		// inbound bytes of alice's video and the other way round. A mesh
		// would make each browser send three copies.
		before := map[string]map[string]testenv.PeerStats{}
		for name, p := range pages {
			s, err := p.Stats(ctx)
			if err != nil {
				t.Fatal(err)
			}
			before[name] = s
		}
		// The measurement window itself, not a wait for an event.
		select {
		case <-time.After(5 * time.Second):
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		}
		after := map[string]map[string]testenv.PeerStats{}
		for name, p := range pages {
			s, err := p.Stats(ctx)
			if err != nil {
				t.Fatal(err)
			}
			after[name] = s
		}
		for sender, receiver := range map[string]string{"alice": "bob", "bob": "alice"} {
			sent, copies := outboundVideo(before[sender], after[sender])
			one := inboundVideo(before[receiver][gwPeer], after[receiver][gwPeer], videoOf[receiver][pubs[sender].msid])
			if sent == 0 || one == 0 {
				t.Fatalf("%s sent %d video bytes, %s received %d of them in 5 s: no video flowing", sender, sent, receiver, one)
			}
			ratio := float64(sent) / float64(one)
			t.Logf("uplink %s: %d video bytes in 5 s over %d outbound video stream(s); one stream as %s receives it: %d bytes; ratio %.2f", sender, sent, copies, receiver, one, ratio)
			if copies != 1 || ratio > 1.3 {
				t.Errorf("%s uplink: %d outbound video streams, %.2f times one stream; want one, at most 1.3", sender, copies, ratio)
			}
		}
	})

	t.Run("relay", func(t *testing.T) {
		for name, p := range pages {
			if _, err := p.WaitFor(ctx, `e.type === 'channel-open' && e.channel === 'chat'`, 0); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		}
		for _, g := range gos {
			g.until(t, waitFor, "chat open", func() bool { return g.chatOpen })
		}
		since := lastSeq(t, ctx, bob)
		emit := func(ev string, args ...any) {
			t.Helper()
			if err := alice.Emit(ctx, ev, args...); err != nil {
				t.Fatal(err)
			}
		}
		say := func(args ...any) {
			t.Helper()
			if n, err := alice.ChannelEmit(ctx, "chat", "say", args...); err != nil || n != 1 {
				t.Fatalf("alice chat emit: %d %v", n, err)
			}
		}
		send := func(b []byte) {
			t.Helper()
			if n, err := alice.ChannelSendBinary(ctx, "chat", b, ""); err != nil || n != 1 {
				t.Fatalf("alice chat send: %d %v", n, err)
			}
		}
		emit("note", 1, "one")
		say("hello", 1)
		send([]byte{1, 2, 3})
		emit("note", 2, "two")
		say("bye", 2)
		send([]byte{4, 5})
		// Reserved and library-internal names, straight onto the ctrl
		// channel as a hostile client would: the gateway must not relay
		// them (bob's filters would count them as drops, and a
		// track-removed would even pass bob's filters).
		for _, frame := range []string{
			`{"e":"peer-connect","d":[{"id":"forged"}]}`,
			`{"e":"peer-disconnect","d":[{"id":"forged"}]}`,
			`{"e":"track-added","d":[{}]}`,
			`{"e":"track-removed","d":[{}]}`,
			`{"e":"#rtcio:init-offer","d":[{"source":"forged"}]}`,
		} {
			if r, err := alice.SendRaw(ctx, gwPeer, "rtcio:ctrl", testenv.RawText(frame)); err != nil || !r.OK {
				t.Fatalf("alice raw %s: %+v %v", frame, r, err)
			}
		}
		emit("note", 3, "three")

		wantCtrl := []string{`note[1,"one"]`, `note[2,"two"]`, `note[3,"three"]`}
		wantChat := []string{`say["hello",1]`, "bin:010203", `say["bye",2]`, "bin:0405"}
		for name, g := range gos {
			g.until(t, waitFor, "relayed ctrl and chat", func() bool {
				return len(g.ctrl) >= len(wantCtrl) && len(g.chatLog) >= len(wantChat)
			})
			g.mu.Lock()
			ctrl, chat := slices.Clone(g.ctrl), slices.Clone(g.chatLog)
			g.mu.Unlock()
			if !slices.Equal(ctrl, wantCtrl) || !slices.Equal(chat, wantChat) {
				t.Errorf("%s got ctrl %v and chat %v, want %v and %v in order", name, ctrl, chat, wantCtrl, wantChat)
			}
		}
		// Ctrl and chat are separate ordered channels: wait for the last
		// frame of each, then read bob's log.
		if _, err := bob.WaitFor(ctx, `e.type === 'event' && e.name === 'note' && e.args[0] === 3`, since); err != nil {
			t.Fatal(err)
		}
		if _, err := bob.WaitFor(ctx, `e.type === 'channel-data' && e.channel === 'chat' && e.byteLength === 2`, since); err != nil {
			t.Fatal(err)
		}
		evs, err := bob.Events(ctx, since)
		if err != nil {
			t.Fatal(err)
		}
		var ctrl, chat []string
		for _, e := range evs {
			if (e.Type == "event" || e.Type == "channel-event" || e.Type == "channel-data") && e.PeerID != gwPeer {
				t.Errorf("bob got %s from %s, want the gateway peer", e.Raw, e.PeerID)
			}
			switch {
			case e.Type == "event":
				ctrl = append(ctrl, e.Name+rawJSON(e.Args))
			case e.Type == "channel-event" && e.Channel == "chat":
				chat = append(chat, e.Name+rawJSON(e.Args))
			case e.Type == "channel-data" && e.Channel == "chat":
				b, err := base64.StdEncoding.DecodeString(e.Base64)
				if err != nil {
					t.Fatal(err)
				}
				chat = append(chat, fmt.Sprintf("bin:%x", b))
			}
		}
		if !slices.Equal(ctrl, wantCtrl) || !slices.Equal(chat, wantChat) {
			t.Errorf("bob got ctrl %v and chat %v, want %v and %v in order", ctrl, chat, wantCtrl, wantChat)
		}
		sum, err := bob.Summary(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if sum.Drops.Total != 0 {
			t.Errorf("bob dropped %+v: the gateway relayed reserved names", sum.Drops)
		}
	})
}

// outboundVideo sums the video bytes every outbound stream of a page sent
// between two snapshots, and counts the streams that sent any.
func outboundVideo(before, after map[string]testenv.PeerStats) (bytes uint64, streams int) {
	for peer, st := range after {
		for _, out := range st.Outbound {
			if out.Kind != "video" {
				continue
			}
			var was uint64
			for _, b := range before[peer].Outbound {
				if b.SSRC == out.SSRC {
					was = b.BytesSent
				}
			}
			if out.BytesSent > was {
				bytes += out.BytesSent - was
				streams++
			}
		}
	}
	return bytes, streams
}

// inboundVideo is the bytes received on video track id between snapshots.
func inboundVideo(before, after testenv.PeerStats, id string) uint64 {
	find := func(st testenv.PeerStats) uint64 {
		for _, in := range st.Inbound {
			if in.Kind == "video" && in.TrackIdentifier == id {
				return in.BytesReceived
			}
		}
		return 0
	}
	a, b := find(after), find(before)
	if a < b {
		return 0
	}
	return a - b
}

// TestBrowserSFUDepartures: a late joiner gets every live stream; a track
// a browser sets inactive is removed from the others; a closed page's
// tracks are removed from the others within 2 s and a later joiner does not
// get its stream; a browser whose signaling drops while its media flows
// keeps being forwarded until its media stops, then is removed as fast.
func TestBrowserSFUDepartures(t *testing.T) {
	env := startBrowserSFU(t, 80*time.Second)
	ctx := env.ctx
	const room = "departures"
	pat := env.openPage(t, "pat")     // closes its page
	quinn := env.openPage(t, "quinn") // removes a track, then loses signaling
	gus := newGoPeer(t, env.gw.URL, "gus", "camera")
	env.joinPage(t, pat, room)
	env.joinPage(t, quinn, room)
	gus.join(t, room)
	patCam := pagePub("pat", "camera", env.publishPage(t, pat, "camera", "pat"))
	quinnCam := pagePub("quinn", "camera", env.publishPage(t, quinn, "camera", "quinn"))
	gusCam := goPub("gus", "camera", publishFixture(t, gus.Socket, "camera", "gus-cam", map[string]any{"name": "gus"}))
	gwPeer := gatewayPeerOf(t, ctx, pat)

	for _, s := range []pub{patCam, quinnCam} {
		checkGoStream(t, "gus", gus.streamEvent(t, "camera", s.msid), gwPeer, s)
		gus.waitRTP(t, 20, nil, s.msid, "audio", "video")
	}
	waitPageStream(t, ctx, pat, gwPeer, quinnCam)
	waitPageStream(t, ctx, quinn, gwPeer, patCam)

	// A late joiner gets every live stream, with media.
	lena := newGoPeer(t, env.gw.URL, "lena", "camera")
	lena.join(t, room)
	for _, s := range []pub{patCam, quinnCam, gusCam} {
		checkGoStream(t, "lena", lena.streamEvent(t, "camera", s.msid), gwPeer, s)
		lena.waitRTP(t, 20, nil, s.msid, "audio", "video")
	}
	if t.Failed() {
		return
	}

	// A track the publisher sets inactive is removed from the others; the
	// stream's other track keeps flowing.
	patSince := lastSeq(t, ctx, pat)
	inactive := time.Now()
	if _, err := quinn.RemoveTrack(ctx, quinnCam.id, "audio"); err != nil {
		t.Fatal(err)
	}
	for who, at := range map[string]time.Time{
		"gus":  gus.waitRemoved(t, waitFor, quinnCam.msid, "audio"),
		"lena": lena.waitRemoved(t, waitFor, quinnCam.msid, "audio"),
		"pat":  waitPageRemoved(t, ctx, pat, patSince, quinnCam.msid, "audio"),
	} {
		t.Logf("inactive track: %s saw quinn's audio removed after %v", who, at.Sub(inactive).Round(time.Millisecond))
	}
	gus.waitRTP(t, 20, gus.packets(), quinnCam.msid, "video")
	if r := gus.removedOf(quinnCam.msid); len(r) != 1 {
		t.Errorf("gus saw removals %v of quinn's stream, want its audio only", r)
	}

	// The page closes: socket gone and media stopped.
	quinnSince := lastSeq(t, ctx, quinn)
	closed := time.Now()
	if err := pat.Page().Close(ctx); err != nil {
		t.Fatal(err)
	}
	latency := map[string]time.Duration{
		"gus":   gus.waitRemoved(t, waitFor, patCam.msid, "audio", "video").Sub(closed),
		"lena":  lena.waitRemoved(t, waitFor, patCam.msid, "audio", "video").Sub(closed),
		"quinn": latest(waitPageRemoved(t, ctx, quinn, quinnSince, patCam.msid, "audio"), waitPageRemoved(t, ctx, quinn, quinnSince, patCam.msid, "video")).Sub(closed),
	}
	for who, d := range latency {
		t.Logf("closed page: %s saw pat's tracks removed after %v", who, d.Round(time.Millisecond))
		if d > removalBound {
			t.Errorf("%s saw pat's tracks removed after %v, want within %v", who, d.Round(time.Millisecond), removalBound)
		}
	}
	env.notes.wait(t, "pat's stream unpublished", func(n sfu.Notice) bool {
		return n.Kind == sfu.StreamUnpublished && n.Stream == patCam.id
	})

	// A later joiner gets the live streams but not the closed page's.
	mia := newGoPeer(t, env.gw.URL, "mia", "camera")
	mia.join(t, room)
	for _, s := range []pub{quinnCam, gusCam} {
		env.notes.wait(t, "replayed to mia", func(n sfu.Notice) bool {
			return n.Kind == sfu.StreamReplayed && n.Client == mia.ID() && n.Stream == s.id
		})
		checkGoStream(t, "mia", mia.streamEvent(t, "camera", s.msid), gwPeer, s)
	}
	mia.waitRTP(t, 20, nil, quinnCam.msid, "video")
	if mia.hasStream(patCam.msid) {
		t.Errorf("mia got the closed page's stream")
	}
	if t.Failed() {
		return
	}

	// Quinn's signaling drops but its media keeps flowing: as in a mesh,
	// it keeps being forwarded.
	if err := quinn.DropSignaling(ctx); err != nil {
		t.Fatal(err)
	}
	var left time.Time
	gus.until(t, waitFor, "quinn's departure", func() bool {
		left = gus.left[quinn.ID]
		return !left.IsZero()
	})
	// Media arriving well after the departure grace (500 ms) proves the
	// gateway did not take the silent socket for a closed page.
	for _, g := range []*goPeer{gus, lena, mia} {
		var cut bool
		g.until(t, waitFor, "quinn's video after the departure", func() bool {
			cut = slices.ContainsFunc(g.removed, func(r removal) bool { return r.msid == quinnCam.msid && r.kind == "video" })
			c := g.rtp[mediaKey{quinnCam.msid, "video"}]
			return cut || c != nil && c.last.Sub(left) > 3*time.Second/2
		})
		if cut {
			t.Fatalf("%s saw quinn's video removed %v after its socket.io connection dropped, while its media still flowed: the gateway must keep forwarding it, as a mesh does, until its media stops",
				g.name, time.Since(left).Round(time.Millisecond))
		}
	}

	// Now its media stops too (the page stops its tracks; its peer
	// connection stays up): the others see its track removed.
	stopped := time.Now()
	if err := quinn.Page().Eval(ctx, `() => { for (const h of RTCIOConformance.handles()) for (const s of RTCIOConformance.get(h).localStreams.values()) s.mediaStream.getTracks().forEach((tr) => tr.stop()); return null; }`, nil); err != nil {
		t.Fatal(err)
	}
	for _, g := range []*goPeer{gus, lena, mia} {
		d := g.waitRemoved(t, waitFor, quinnCam.msid, "video").Sub(stopped)
		t.Logf("signaling gone, media stopped: %s saw quinn's video removed after %v", g.name, d.Round(time.Millisecond))
		if d > removalBound {
			t.Errorf("%s saw quinn's video removed after %v, want within %v", g.name, d.Round(time.Millisecond), removalBound)
		}
	}
}

// TestBrowserSFUPublisherUntrack: a browser publishes a camera and a second
// client gets it; after the publisher's untrackStream a third client gets
// neither an event nor tracks for it while the second keeps receiving it;
// emitted again under a new event name, a fourth client gets it under that
// name.
func TestBrowserSFUPublisherUntrack(t *testing.T) {
	env := startBrowserSFU(t, 60*time.Second)
	ctx := env.ctx
	const room = "untrack"
	alice := env.openPage(t, "alice")
	bob := env.openPage(t, "bob")
	env.joinPage(t, alice, room)
	cam := pagePub("alice", "camera", env.publishPage(t, alice, "camera", "alice"))
	env.joinPage(t, bob, room)
	gwPeer := gatewayPeerOf(t, ctx, alice)
	waitPageStream(t, ctx, bob, gwPeer, cam)
	video := pageVideoTrack(t, ctx, bob, cam.msid)
	waitDecoded(t, ctx, bob, gwPeer, 0, video)

	had, err := alice.UntrackStream(ctx, cam.id)
	if err != nil || !had {
		t.Fatalf("untrack: %v %v", had, err)
	}
	carol := newGoPeer(t, env.gw.URL, "carol", "camera", "screen")
	carol.join(t, room)
	env.notes.wait(t, "not replayed to carol", func(n sfu.Notice) bool {
		return n.Kind == sfu.StreamNotReplayed && n.Client == carol.ID() && n.Stream == cam.id
	})
	if carol.hasStream(cam.msid) {
		t.Fatalf("carol got the untracked stream: %s", carol.describe())
	}
	// Bob, connected before the untrack, keeps receiving it.
	frames := framesDecoded(t, ctx, bob, gwPeer, video)
	waitDecoded(t, ctx, bob, gwPeer, frames+30, video)

	// Emitted again under a new name, the stream replays under that name
	// with the new args.
	if _, err := alice.EmitStream(ctx, "screen", pageArgs("alice-again"), cam.id); err != nil {
		t.Fatal(err)
	}
	again := cam
	again.event, again.owner = "screen", "alice-again"
	dave := newGoPeer(t, env.gw.URL, "dave", "camera", "screen")
	dave.join(t, room)
	replay := env.notes.wait(t, "replayed to dave", func(n sfu.Notice) bool {
		return n.Kind == sfu.StreamReplayed && n.Client == dave.ID() && n.Stream == cam.id
	})
	if !slices.Equal(replay.Events, []string{"screen"}) {
		t.Errorf("dave's replay carried events %v, want [screen] only", replay.Events)
	}
	checkGoStream(t, "dave", dave.streamEvent(t, "screen", cam.msid), gwPeer, again)
	dave.waitRTP(t, 20, nil, cam.msid, "audio", "video")
	dave.mu.Lock()
	old := dave.findStream("camera", cam.msid)
	dave.mu.Unlock()
	if old != nil {
		t.Errorf("dave got the untracked camera event too")
	}
	if carol.hasStream(cam.msid) {
		t.Logf("carol, connected before the re-emit, got the stream too (as in a mesh)")
	} else {
		t.Logf("carol, connected before the re-emit, did not get the stream (a mesh would send it)")
	}
}

func latest(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
