package sfu_test

import (
	"testing"
	"time"
)

// TestAdaptQuietRoom: a publisher and two subscribers on an uncongested
// loopback: the admin streams view lists both subscribers, neither paused,
// the publisher is uncapped, and no REMB is sent at all.
func TestAdaptQuietRoom(t *testing.T) {
	gw, _ := startSFU(t)
	const room = "quiet"
	pubC := dial(t, gw.URL, room)
	a, b := dial(t, gw.URL, room), dial(t, gw.URL, room)
	st := publishFixture(t, pubC.Socket, "camera", "quiet-cam", map[string]any{"name": "pub"})
	for _, c := range []*client{a, b} {
		ids := c.waitKinds(t, "audio", "video")
		c.waitRTP(t, 50, ids...)
	}
	r := gw.Server.SFU().Room(room)
	deadline := time.Now().Add(waitFor)
	for {
		var states int
		for _, s := range r.Streams() {
			if s.Stream != st.ID() {
				continue
			}
			states = len(s.SubscriberStates)
			for _, ss := range s.SubscriberStates {
				if ss.Paused || ss.Congested {
					t.Errorf("subscriber %+v on loopback", ss)
				}
			}
			if s.CapBps != 0 {
				t.Errorf("publisher capped at %d on loopback", s.CapBps)
			}
		}
		if states == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("admin view lists %d subscribers of the stream, want 2: %+v", states, r.Streams())
		}
		time.Sleep(100 * time.Millisecond) // polling the admin view, which has no event to wait on
	}
	if n := value(t, scrape(t, gw.URL), "rtcio_remb_sent_total"); n != 0 {
		t.Errorf("%v REMB sent on an uncongested loopback", n)
	}
}
