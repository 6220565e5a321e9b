package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Header names of a delivery.
const (
	HeaderEventID   = "X-Rtcio-Event-Id"
	HeaderEventType = "X-Rtcio-Event-Type"
	HeaderAttempt   = "X-Rtcio-Attempt"
	HeaderTimestamp = "X-Rtcio-Timestamp"
	HeaderSignature = "X-Rtcio-Signature"
	signaturePrefix = "sha256="
	// maxSignatureHeader bounds the work Verify does on a hostile header.
	maxSignatureHeader = 1024
)

// Errors Verify returns (wrapped with detail); test with errors.Is.
var (
	ErrMissingHeader = errors.New("webhook: missing signature or timestamp header")
	ErrBadTimestamp  = errors.New("webhook: malformed timestamp")
	ErrStale         = errors.New("webhook: timestamp outside the tolerance")
	ErrBadSignature  = errors.New("webhook: signature does not match")
)

// Sign returns the X-Rtcio-Signature value for body sent at timestamp (Unix
// seconds): "sha256=" and the hex HMAC-SHA256 of "<timestamp>.<body>".
func Sign(secret []byte, timestamp int64, body []byte) string {
	return signaturePrefix + hex.EncodeToString(mac(secret, timestamp, body))
}

func mac(secret []byte, timestamp int64, body []byte) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write(strconv.AppendInt(nil, timestamp, 10))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// Verify checks a delivery as a receiver: h holds its headers and body its
// exact bytes. With tolerance > 0 it also refuses a timestamp further than
// tolerance from now, which stops replays of captured deliveries. The
// signature header may list several comma-separated "sha256=" values (as
// during a secret rotation); one match is enough.
func Verify(secret []byte, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	tsText, sigText := h.Get(HeaderTimestamp), h.Get(HeaderSignature)
	if tsText == "" || sigText == "" {
		return ErrMissingHeader
	}
	ts, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %q", ErrBadTimestamp, truncate(tsText))
	}
	if tolerance > 0 {
		// Compared in seconds, so a hostile far-away timestamp cannot
		// overflow a time.Duration into looking fresh.
		skew := now.Unix() - ts
		if skew < 0 {
			skew = -skew
		}
		if skew < 0 || skew > int64(tolerance/time.Second) {
			return fmt.Errorf("%w: %d is %ds from now", ErrStale, ts, now.Unix()-ts)
		}
	}
	if len(sigText) > maxSignatureHeader {
		return fmt.Errorf("%w: header of %d bytes", ErrBadSignature, len(sigText))
	}
	want := mac(secret, ts, body)
	for part := range strings.SplitSeq(sigText, ",") {
		hexSig, ok := strings.CutPrefix(strings.TrimSpace(part), signaturePrefix)
		if !ok {
			continue
		}
		got, err := hex.DecodeString(hexSig)
		if err != nil {
			continue
		}
		if hmac.Equal(got, want) {
			return nil
		}
	}
	return ErrBadSignature
}

func truncate(s string) string {
	const n = 32
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
