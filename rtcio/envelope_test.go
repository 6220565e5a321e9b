package rtcio

import (
	"encoding/json"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

func TestChannelIDMatchesJavaScript(t *testing.T) {
	// Values computed with the JavaScript formula under Node (charCodeAt,
	// Math.imul), including a non-BMP name that hashes as two UTF-16 units.
	for name, want := range map[string]uint16{
		"chat": 721, "files": 592, "": 257, "ü-kanal": 491, "😀emoji": 752, "rtcio": 999,
	} {
		if got := ChannelID(name); got != want {
			t.Errorf("ChannelID(%q) = %d, want %d", name, got, want)
		}
	}
}

func TestDecodeEnvelope(t *testing.T) {
	for _, tc := range []struct {
		in       string
		name     string
		args     int
		err      bool
		reserved bool
	}{
		{in: `{"e":"chat","d":["hi",{"a":1}]}`, name: "chat", args: 2},
		{in: `{"e":"chat"}`, name: "chat"},
		{in: `{"e":"chat","d":"not-an-array"}`, name: "chat"},
		{in: `{"e":"chat","d":null}`, name: "chat"},
		{in: `{"e":1,"d":[]}`, err: true},
		{in: `{"d":[]}`, err: true},
		{in: `not json`, err: true},
		{in: `[1,2]`, err: true},
		{in: `{"e":"#rtcio:message","d":[]}`, err: true, reserved: true},
		{in: `{"e":"peer-connect","d":[]}`, err: true, reserved: true},
		{in: `{"e":"track-removed"}`, err: true, reserved: true},
	} {
		name, args, err := decodeEnvelope([]byte(tc.in))
		if (err != nil) != tc.err {
			t.Errorf("%s: err %v", tc.in, err)
			continue
		}
		if tc.reserved != errors.Is(err, errReserved) {
			t.Errorf("%s: reserved = %v", tc.in, errors.Is(err, errReserved))
		}
		if err == nil && (name != tc.name || len(args) != tc.args) {
			t.Errorf("%s: got %q with %d args", tc.in, name, len(args))
		}
	}
	big := `{"e":"x","d":["` + strings.Repeat("a", MaxEnvelopeBytes) + `"]}`
	if _, _, err := decodeEnvelope([]byte(big)); err == nil {
		t.Error("oversized envelope accepted")
	}
}

func TestEncodeEnvelopeRoundTrip(t *testing.T) {
	b, err := encodeEnvelope("ev", []any{"s", 1.5, nil, map[string]any{"k": []any{true}}})
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"e":"ev","d":["s",1.5,null,{"k":[true]}]}` {
		t.Fatalf("encoded %s", b)
	}
	if b, _ := encodeEnvelope("ev", nil); string(b) != `{"e":"ev","d":[]}` {
		t.Fatalf("no args encoded as %s", b)
	}
	if _, err := encodeEnvelope("ev", []any{func() {}}); err == nil {
		t.Fatal("unencodable arg accepted")
	}
}

func TestDecodeMessageVariants(t *testing.T) {
	for _, tc := range []struct {
		in   string
		kind messageKind
		err  bool
	}{
		{in: `{"source":"a","target":"b","data":{"description":{"type":"offer","sdp":"v=0"}}}`, kind: kindDescription},
		{in: `{"source":"a","data":{"description":{"type":"rollback","sdp":""}}}`, err: true},
		{in: `{"source":"a","data":{"candidate":{"candidate":"","sdpMid":"0","sdpMLineIndex":0,"usernameFragment":null}}}`, kind: kindCandidate},
		{in: `{"source":"a","data":{"mid":"stream-1"}}`, kind: kindMetaRequest},
		{in: `{"source":"a","data":{"mid":"stream-1","events":{"camera":[{"x":1},"[RTCIOStream] u"]}}}`, kind: kindMetaAnswer},
		{in: `{"source":"a","data":{}}`, err: true},
		{in: `{"data":{"mid":"x"}}`, err: true},
		{in: `{"source":"a","data":{"mid":7}}`, err: true},
		{in: `[]`, err: true},
	} {
		m, err := decodeMessageJSON([]byte(tc.in))
		if (err != nil) != tc.err {
			t.Errorf("%s: err %v", tc.in, err)
			continue
		}
		if err == nil && m.Data.kind() != tc.kind {
			t.Errorf("%s: kind %d, want %d", tc.in, m.Data.kind(), tc.kind)
		}
	}
}

func TestPlaceholderArgs(t *testing.T) {
	rs := &RemoteStream{msid: "ms", id: "ms"}
	raw := []json.RawMessage{json.RawMessage(`{"who":"a","s":"[RTCIOStream] 1234","n":12345678901234567}`), json.RawMessage(`"[RTCIOStream] 1234"`)}
	args := decodeArgs(raw, rs)
	if args[1] != rs || args[0].(map[string]any)["s"] != rs || rs.ID() != "1234" {
		t.Fatalf("args %v id %q", args, rs.ID())
	}
	e := &Event{Name: "camera", Raw: raw, Args: args, Stream: rs}
	st := NewEmptyStream("local")
	out, err := json.Marshal(e.ArgsWithStream(st))
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"n":12345678901234567,"s":"[RTCIOStream] ` + st.ID() + `","who":"a"},"[RTCIOStream] ` + st.ID() + `"]`
	if string(out) != want {
		t.Fatalf("re-emitted args %s, want %s", out, want)
	}
	if findStream(e.ArgsWithStream(st)) != st {
		t.Fatal("ArgsWithStream result does not publish the stream")
	}
	var v struct {
		Who string        `json:"who"`
		S   *RemoteStream `json:"s"`
	}
	if err := e.Decode(0, &v); err != nil || v.S != rs || v.Who != "a" {
		t.Fatalf("decode %+v %v", v, err)
	}
	if err := e.Decode(5, &v); err == nil {
		t.Fatal("out of range arg decoded")
	}
}

func FuzzDecodeEnvelope(f *testing.F) {
	for _, s := range []string{
		`{"e":"chat","d":["hi",{"a":1}]}`, `{"e":"chat"}`, `{"e":"#rtcio:x","d":[]}`, `{"e":1}`, `[]`, `{"e":"x","d":{"0":1}}`, "\xff",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(checkEnvelope)
}

// checkEnvelope is the envelope fuzz property: decoding never panics, never
// accepts a reserved name, and what it accepts round-trips.
func checkEnvelope(t *testing.T, b []byte) {
	{
		name, args, err := decodeEnvelope(b)
		if err != nil {
			return
		}
		if IsReservedEvent(name) {
			t.Fatalf("reserved name %q accepted", name)
		}
		// Whatever was accepted re-encodes and decodes to the same event.
		anyArgs := make([]any, len(args))
		for i, a := range args {
			anyArgs[i] = a
		}
		enc, err := encodeEnvelope(name, anyArgs)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		name2, args2, err := decodeEnvelope(enc)
		if err != nil || name2 != name || len(args2) != len(args) {
			t.Fatalf("round trip %q/%d -> %q/%d (%v)", name, len(args), name2, len(args2), err)
		}
	}
}

func FuzzDecodeMessage(f *testing.F) {
	for _, s := range []string{
		`{"source":"a","data":{"mid":"s"}}`,
		`{"source":"a","data":{"mid":"s","events":{"camera":["[RTCIOStream] x",{"k":[1,2]}]}}}`,
		`{"source":"a","data":{"candidate":{"candidate":""}}}`,
		`{"source":"a","data":{"description":{"type":"answer","sdp":"v=0\r\n"}}}`,
		`{"source":1}`, `null`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(checkMessage)
}

// checkMessage is the signaling-message fuzz property: decoding never
// panics, accepted messages have a source and a variant, and metadata args
// survive placeholder substitution and re-emission.
func checkMessage(t *testing.T, b []byte) {
	{
		m, err := decodeMessageJSON(b)
		if err != nil {
			return
		}
		if m.Source == "" || m.Data.kind() == kindUnknown {
			t.Fatalf("accepted message without source or variant: %s", b)
		}
		if m.Data.kind() == kindMetaAnswer {
			rs := &RemoteStream{msid: *m.Data.Mid, id: *m.Data.Mid}
			for name, raw := range m.Data.Events {
				ev := &Event{Name: name, Raw: raw, Args: decodeArgs(raw, rs), Stream: rs}
				_ = ev.ArgsWithStream(NewEmptyStream("x"))
			}
		}
	}
}

// TestDecodersMutationBounded runs both fuzz properties over a fixed,
// bounded set of mutated seeds on every `go test`, so the decoders are
// exercised beyond the seed corpus even without -fuzz.
func TestDecodersMutationBounded(t *testing.T) {
	seeds := [][]byte{
		[]byte(`{"e":"chat","d":["hi",{"a":[1,2,{"b":null}]}]}`),
		[]byte(`{"source":"a","target":"b","data":{"mid":"s","events":{"camera":["[RTCIOStream] x",{"k":[1.5e3,true]}]}}}`),
		[]byte(`{"source":"a","data":{"candidate":{"candidate":"candidate:1 1 udp 1 127.0.0.1 9 typ host","sdpMid":"0"}}}`),
	}
	rng := rand.New(rand.NewPCG(1, 2))
	deadline := time.Now().Add(2 * time.Second)
	n := 0
	for time.Now().Before(deadline) && n < 200000 {
		b := append([]byte(nil), seeds[rng.IntN(len(seeds))]...)
		for range 1 + rng.IntN(4) {
			switch i := rng.IntN(len(b) + 1); rng.IntN(3) {
			case 0:
				if i < len(b) {
					b[i] = byte(rng.IntN(256))
				}
			case 1:
				b = append(b[:i:i], append([]byte{`{}[]":,\\`[rng.IntN(7)]}, b[i:]...)...)
			case 2:
				b = b[:i]
			}
		}
		checkEnvelope(t, b)
		checkMessage(t, b)
		n++
	}
	t.Logf("%d mutated inputs", n)
}
