package webhook_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/rtcio-gateway/rtcio-gateway/gateway/webhook"
)

func signedHeader(secret string, ts int64, body []byte) http.Header {
	h := http.Header{}
	h.Set(webhook.HeaderTimestamp, strconv.FormatInt(ts, 10))
	h.Set(webhook.HeaderSignature, webhook.Sign([]byte(secret), ts, body))
	return h
}

func TestSignMatchesAnIndependentHMAC(t *testing.T) {
	body := []byte(`{"type":"room_started"}`)
	m := hmac.New(sha256.New, []byte("k"))
	m.Write([]byte("1700000000." + string(body)))
	want := "sha256=" + hex.EncodeToString(m.Sum(nil))
	if got := webhook.Sign([]byte("k"), 1700000000, body); got != want {
		t.Errorf("Sign = %s, want %s", got, want)
	}
}

func TestVerify(t *testing.T) {
	body := []byte(`{"id":"evt_1","type":"room_started"}`)
	now := time.Unix(1_700_000_000, 0)
	ts := now.Unix()
	good := signedHeader("s3cret", ts, body)

	rotated := good.Clone()
	rotated.Set(webhook.HeaderSignature, webhook.Sign([]byte("old"), ts, body)+", bogus, "+good.Get(webhook.HeaderSignature))
	noSig := good.Clone()
	noSig.Del(webhook.HeaderSignature)
	badTS := good.Clone()
	badTS.Set(webhook.HeaderTimestamp, "yesterday")
	shiftedTS := good.Clone()
	shiftedTS.Set(webhook.HeaderTimestamp, strconv.FormatInt(ts+1, 10))
	hugeTS := signedHeader("s3cret", -1<<63, body)

	for _, tc := range []struct {
		name      string
		h         http.Header
		body      []byte
		secret    string
		now       time.Time
		tolerance time.Duration
		want      error
	}{
		{"good", good, body, "s3cret", now, time.Minute, nil},
		{"no tolerance check", good, body, "s3cret", now.Add(24 * time.Hour), 0, nil},
		{"rotation list", rotated, body, "s3cret", now, time.Minute, nil},
		{"tampered body", good, []byte(`{"id":"evt_1","type":"room_finished"}`), "s3cret", now, time.Minute, webhook.ErrBadSignature},
		{"wrong secret", good, body, "other", now, time.Minute, webhook.ErrBadSignature},
		{"timestamp not covered", shiftedTS, body, "s3cret", now, time.Minute, webhook.ErrBadSignature},
		{"missing signature", noSig, body, "s3cret", now, time.Minute, webhook.ErrMissingHeader},
		{"malformed timestamp", badTS, body, "s3cret", now, time.Minute, webhook.ErrBadTimestamp},
		{"replayed later", good, body, "s3cret", now.Add(10 * time.Minute), time.Minute, webhook.ErrStale},
		{"from the future", good, body, "s3cret", now.Add(-10 * time.Minute), time.Minute, webhook.ErrStale},
		{"extreme timestamp", hugeTS, body, "s3cret", now, time.Minute, webhook.ErrStale},
	} {
		err := webhook.Verify([]byte(tc.secret), tc.h, tc.body, tc.now, tc.tolerance)
		if (tc.want == nil) != (err == nil) || (tc.want != nil && !errors.Is(err, tc.want)) {
			t.Errorf("%s: Verify = %v, want %v", tc.name, err, tc.want)
		}
	}
}

// FuzzVerify feeds hostile headers and bodies to Verify: it must never panic,
// must accept exactly what Sign produced, and must reject any other body.
func FuzzVerify(f *testing.F) {
	f.Add("1700000000", "sha256=00", []byte(`{}`), []byte("k"))
	f.Add("-9223372036854775808", "sha256=zz,sha256=", []byte(""), []byte(""))
	f.Add("", "", []byte("x"), []byte("secret"))
	f.Add("17e8", "SHA256=ABCDEF, sha256=abcdef", []byte(`{"type":"room_started"}`), []byte("s"))
	now := time.Unix(1_700_000_000, 0)
	f.Fuzz(func(t *testing.T, ts, sig string, body, secret []byte) {
		h := http.Header{}
		h.Set(webhook.HeaderTimestamp, ts)
		h.Set(webhook.HeaderSignature, sig)
		_ = webhook.Verify(secret, h, body, now, time.Hour)

		n, err := strconv.ParseInt(ts, 10, 64)
		if err != nil {
			return
		}
		h.Set(webhook.HeaderSignature, webhook.Sign(secret, n, body))
		if err := webhook.Verify(secret, h, body, now, 0); err != nil {
			t.Fatalf("own signature refused: %v", err)
		}
		if err := webhook.Verify(secret, h, append(body, '!'), now, 0); !errors.Is(err, webhook.ErrBadSignature) {
			t.Fatalf("altered body accepted: %v", err)
		}
	})
}
