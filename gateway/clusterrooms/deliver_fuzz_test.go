package clusterrooms

import (
	"io"
	"log/slog"
	"testing"

	"github.com/rtcio-gateway/rtcio-gateway/gateway/cluster"
	"github.com/rtcio-gateway/rtcio-gateway/gateway/signaling"
)

// FuzzDeliver feeds arbitrary envelope payloads to the inbox's decoder:
// whatever another node (or anyone who can write to Redis) puts there, it
// is delivered as one event to the sockets it names, or dropped, and never
// panics.
func FuzzDeliver(f *testing.F) {
	f.Add([]byte(`{"to":["a","b"],"e":"user-connected","a":[{"id":"x","name":"X"}]}`))
	f.Add([]byte(`{"to":[],"e":"","a":null}`))
	f.Add([]byte(`{"to":"a","e":1}`))
	f.Add([]byte(`[`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		calls := 0
		r := &Rooms{log: slog.New(slog.NewTextHandler(io.Discard, nil)), env: signaling.DirectoryEnv{
			Emit: func(ids []string, event string, args []any) {
				calls++
				if event == "" {
					t.Fatal("delivered an event without a name")
				}
			},
		}}
		r.deliver(cluster.Envelope{From: "n", Kind: kindEmit, Payload: payload})
		if calls > 1 {
			t.Fatalf("one envelope delivered %d times", calls)
		}
	})
}
