package clusterrooms

import (
	"strings"
	"testing"
)

// FuzzDecodeHost feeds arbitrary "host" envelope payloads to their decoder:
// a request it accepts names a room of bounded length and a lease value;
// anything else is an error, never a panic.
func FuzzDecodeHost(f *testing.F) {
	f.Add([]byte(`{"room":"r1","lease":"node2|7"}`))
	f.Add([]byte(`{"room":"","lease":"x"}`))
	f.Add([]byte(`{"room":1}`))
	f.Add([]byte(`[`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		h, err := decodeHost(payload)
		if err != nil {
			return
		}
		if h.Room == "" || len(h.Room) > maxHostRoom || !strings.Contains(h.Lease, "|") {
			t.Fatalf("accepted %+v", h)
		}
	})
}

// FuzzDecodeInvite does the same for "invite" envelopes: an accepted
// request names a room and a socket, both of bounded length.
func FuzzDecodeInvite(f *testing.F) {
	f.Add([]byte(`{"room":"r1","socket":"MLl6OBIAhufjQAAAAAAAAAAf"}`))
	f.Add([]byte(`{"room":"r1","socket":""}`))
	f.Add([]byte(`{"room":["x"]}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		req, err := decodeInvite(payload)
		if err != nil {
			return
		}
		if req.Room == "" || len(req.Room) > maxHostRoom || req.Socket == "" || len(req.Socket) > maxHostRoom {
			t.Fatalf("accepted %+v", req)
		}
	})
}
