package signaling

import (
	"encoding/json"
	"errors"
	"testing"
)

func TestDecodeMessage(t *testing.T) {
	for _, tc := range []struct {
		name string
		json string
		want Reason
	}{
		{"valid", `[{"source":"a","target":"b","data":{"mid":"s"}}]`, ""},
		{"source may be absent", `[{"target":"b","data":{"candidate":{"candidate":""}}}]`, ""},
		{"null", `[null]`, ReasonInvalidPayload},
		{"nothing", `[]`, ReasonMissingField},
		{"array", `[[1,2]]`, ReasonInvalidPayload},
		{"number target", `[{"target":1,"data":{}}]`, ReasonInvalidPayload},
		{"empty target", `[{"target":"","data":{}}]`, ReasonMissingField},
		{"string data", `[{"target":"b","data":"x"}]`, ReasonInvalidPayload},
		{"null data", `[{"target":"b","data":null}]`, ReasonMissingField},
		{"object source", `[{"source":{},"target":"b","data":{}}]`, ReasonInvalidPayload},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var args []any
			if err := json.Unmarshal([]byte(tc.json), &args); err != nil {
				t.Fatal(err)
			}
			_, err := decodeMessage(args)
			if got := reasonOf(err); got != tc.want {
				t.Fatalf("reason = %q (%v), want %q", got, err, tc.want)
			}
		})
	}
}

func TestOriginPolicy(t *testing.T) {
	p := newOriginPolicy([]string{"http://localhost:*", "https://*.example.com", "https://app.test"})
	for _, tc := range []struct {
		origin, host string
		want         bool
	}{
		{"http://localhost:5173", "gw:3001", true},
		{"http://localhost:", "gw:3001", false},
		{"http://localhost:80x", "gw:3001", false},
		{"http://localhost.evil.com:80", "gw:3001", false},
		{"https://a.example.com", "gw:3001", true},
		{"https://a.b.example.com", "gw:3001", true},
		{"https://example.com", "gw:3001", false},
		{"https://evil.com/.example.com", "gw:3001", false},
		{"https://app.test", "gw:3001", true},
		{"https://app.test.evil", "gw:3001", false},
		{"http://gw:3001", "gw:3001", true}, // same origin
		{"", "gw:3001", true},               // not a browser
		{"null", "gw:3001", false},
	} {
		if got := p.allowed(tc.origin, tc.host); got != tc.want {
			t.Errorf("allowed(%q, %q) = %v, want %v", tc.origin, tc.host, got, tc.want)
		}
	}
	if !newOriginPolicy([]string{"*"}).allowed("https://anything.example", "gw") {
		t.Error(`"*" does not allow every origin`)
	}
}

// FuzzDecodePayloads feeds arbitrary JSON to every payload decoder: each
// must return a value or a Refusal, never panic or another error.
func FuzzDecodePayloads(f *testing.F) {
	for _, seed := range []string{
		`[{"source":"a","target":"b","data":{"description":{"type":"offer","sdp":"v=0"}}}]`,
		`[{"roomId":"r","name":"n"}]`,
		`[{"roomId":"r","mic":true,"cam":false,"id":"x"}]`,
		`[null]`, `[]`, `["x"]`, `[1e400]`, `[{"roomId":null}]`, `[{"target":{"a":1},"data":[]}]`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var args []any
		if json.Unmarshal(raw, &args) != nil {
			return
		}
		check := func(err error) {
			var r *Refusal
			if err != nil && !errors.As(err, &r) {
				t.Fatalf("decoder returned a non-refusal error: %v", err)
			}
		}
		_, err := decodeMessage(args)
		check(err)
		_, err = decodeJoin(args)
		check(err)
		_, err = decodeRoom(args)
		check(err)
		_, err = decodeMediaState(args)
		check(err)
		if _, err := payloadSize(args); err != nil {
			t.Fatalf("payloadSize of decoded JSON failed: %v", err)
		}
	})
}
