package testenv

import (
	"encoding/json"
	"testing"
)

// FuzzPageEvent feeds arbitrary records to the page-event decoder. Records
// echo what remote peers sent (mids, event args), so decoding must fail
// cleanly, never panic, and a decoded record must keep its raw form.
func FuzzPageEvent(f *testing.F) {
	for _, seed := range []string{
		`{"seq":1,"t":2.5,"type":"stream-event","peerId":"p","name":"camera","args":[{"who":"a"},{"$stream":{"rtcioStreamId":"r","mediaStreamId":"m","trackKinds":["audio","video"],"trackIds":["x"]}}]}`,
		`{"seq":2,"type":"signal-in","kind":"mid-request","peerId":"p","mid":{"not":"a string"}}`,
		`{"seq":3,"type":"stream-event","args":[{"a":{"b":[{"$stream":{"rtcioStreamId":7}}]}}]}`,
		`{"seq":4,"type":"stream-event","args":[{"$stream":{"rtcioStreamId":"r"},"extra":1}]}`,
		`{"seq":5,"type":"drop","reason":"reserved","args":"not an array"}`,
		`{"type":"channel-data","byteLength":-1,"base64":"AAEC"}`,
		`[]`, `null`, `{`, `{"seq":"x"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var e PageEvent
		if err := json.Unmarshal(b, &e); err != nil {
			return
		}
		if !json.Valid(e.Raw) {
			t.Fatalf("decoded record keeps invalid raw form %q", e.Raw)
		}
		if s, ok := e.StreamArg(); ok {
			if _, err := json.Marshal(s); err != nil {
				t.Fatalf("stream arg %+v does not round-trip: %v", s, err)
			}
		}
		for i := range e.Args {
			var v any
			_ = e.Arg(i, &v)
		}
		if err := e.Arg(len(e.Args), new(any)); err == nil {
			t.Fatalf("Arg past the end succeeded")
		}
	})
}
