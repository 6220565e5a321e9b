package signaling_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// summary renders an event as "event:key" where key identifies what the
// event is about, so whole sequences compare as string slices.
func summary(ev received) string {
	o := ev.obj()
	switch ev.Event {
	case "user-connected":
		return fmt.Sprintf("user-connected:%v/%v", o["id"], o["name"])
	case "user-disconnected", "#rtcio:peer-left":
		return fmt.Sprintf("%s:%v", ev.Event, o["id"])
	case "#rtcio:init-offer":
		return fmt.Sprintf("init-offer:%v", o["source"])
	case "#rtcio:message":
		return fmt.Sprintf("message:%v->%v", o["source"], o["target"])
	case "media-state":
		return fmt.Sprintf("media-state:%v/mic=%v/cam=%v", o["id"], o["mic"], o["cam"])
	case "join-ok":
		return fmt.Sprintf("join-ok:%v", o["roomId"])
	default:
		return fmt.Sprintf("%s:%v", ev.Event, ev.Args)
	}
}

// summaries renders a whole sequence. docs/PROTOCOL.md fixes no order between
// the two leave notices of one socket (rtc.io-server emits them from two
// independent disconnecting hooks), so a user-disconnected directly followed
// by the same socket's peer-left is put in one canonical order.
func summaries(evs []received) []string {
	out := make([]string, 0, len(evs))
	for _, ev := range evs {
		out = append(out, summary(ev))
	}
	for i := 0; i+1 < len(out); i++ {
		id, ok := strings.CutPrefix(out[i], "user-disconnected:")
		if ok && out[i+1] == "#rtcio:peer-left:"+id {
			out[i], out[i+1] = out[i+1], out[i]
		}
	}
	return out
}

func byID(id string) func(map[string]any) bool {
	return func(o map[string]any) bool { return o["id"] == id }
}

func bySource(id string) func(map[string]any) bool {
	return func(o map[string]any) bool { return o["source"] == id }
}

// runRoomScenario drives three clients through docs/PROTOCOL.md section 2 and
// checks every event each of them received, in order: backfill, presence,
// init-offer to existing members only, relay to the target only, media-state
// backfill to a late joiner, and peer-left plus user-disconnected on a clean
// disconnect and on abrupt transport loss.
func runRoomScenario(t *testing.T, dial func(name string) sigClient) {
	const room = "scenario-room"
	a := dial("alice")
	a.Emit("join-room", map[string]any{"roomId": room, "name": "alice"})
	a.Wait("join-ok", nil)

	b := dial("bob")
	b.Emit("join-room", map[string]any{"roomId": room, "name": "bob"})
	b.Wait("join-ok", nil)
	a.Wait("#rtcio:init-offer", bySource(b.ID()))

	a.Emit("media-state", map[string]any{"roomId": room, "mic": true, "cam": false, "id": a.ID()})
	b.Wait("media-state", byID(a.ID()))

	c := dial("carol")
	c.Emit("join-room", map[string]any{"roomId": room, "name": "carol"})
	c.Wait("join-ok", nil)
	a.Wait("#rtcio:init-offer", bySource(c.ID()))
	b.Wait("#rtcio:init-offer", bySource(c.ID()))

	offer := map[string]any{"description": map[string]any{"type": "offer", "sdp": "v=0\r\n"}}
	b.Emit("#rtcio:message", map[string]any{"source": b.ID(), "target": a.ID(), "data": offer})
	a.Wait("#rtcio:message", bySource(b.ID()))
	// A marker from b to c after the message to a: when it arrives, c would
	// already have seen the message to a had it leaked (one socket's
	// events are relayed in order).
	b.Emit("#rtcio:message", map[string]any{"source": b.ID(), "target": c.ID(), "data": map[string]any{"mid": "marker"}})
	c.Wait("#rtcio:message", bySource(b.ID()))
	emptyCandidate := map[string]any{"candidate": map[string]any{"candidate": "", "sdpMid": "0", "sdpMLineIndex": 0, "usernameFragment": nil}}
	a.Emit("#rtcio:message", map[string]any{"source": a.ID(), "target": c.ID(), "data": emptyCandidate})
	got := c.Wait("#rtcio:message", bySource(a.ID()))
	if cand, _ := got.obj()["data"].(map[string]any)["candidate"].(map[string]any); cand == nil || cand["candidate"] != "" {
		t.Errorf("relayed candidate changed: %v", got.obj())
	}

	c.Disconnect()
	for _, x := range []sigClient{a, b} {
		x.Wait("#rtcio:peer-left", byID(c.ID()))
		x.Wait("user-disconnected", byID(c.ID()))
	}

	b.Drop()
	a.Wait("#rtcio:peer-left", byID(b.ID()))
	a.Wait("user-disconnected", byID(b.ID()))

	A, B, C := a.ID(), b.ID(), c.ID()
	want := map[string][]string{
		"alice": {
			"join-ok:" + room,
			"user-connected:" + B + "/bob", "init-offer:" + B,
			"user-connected:" + C + "/carol", "init-offer:" + C,
			"message:" + B + "->" + A,
			"#rtcio:peer-left:" + C, "user-disconnected:" + C,
			"#rtcio:peer-left:" + B, "user-disconnected:" + B,
		},
		"bob": {
			"user-connected:" + A + "/alice", "join-ok:" + room,
			"media-state:" + A + "/mic=true/cam=false",
			"user-connected:" + C + "/carol", "init-offer:" + C,
			"#rtcio:peer-left:" + C, "user-disconnected:" + C,
		},
		"carol": {
			"user-connected:" + A + "/alice", "media-state:" + A + "/mic=true/cam=false",
			"user-connected:" + B + "/bob", "join-ok:" + room,
			"message:" + B + "->" + C, "message:" + A + "->" + C,
		},
	}
	for name, client := range map[string]sigClient{"alice": a, "bob": b, "carol": c} {
		if got := summaries(client.Events()); !slices.Equal(got, want[name]) {
			t.Errorf("%s received\n  %q\nwant\n  %q", name, got, want[name])
		}
	}
}
