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
