// Package turn hands browsers short-lived TURN credentials, so that no
// long-lived TURN password ever ships to a page.
//
// It speaks the TURN REST API scheme ("time-limited credentials", which
// coturn enables with use-auth-secret and static-auth-secret=<secret>): the
// gateway and the TURN server share a secret; a credential is
//
//	username   = "<expiry as Unix seconds>:<user>"
//	credential = base64(HMAC-SHA1(secret, username))
//
// and the TURN server recomputes the HMAC and checks the expiry itself, with
// no call back to the gateway. Anyone holding a credential can relay through
// the TURN server until it expires, so keep the TTL short and put the
// endpoint behind the same authentication as signaling.
//
// An Issuer makes credentials; its Handler serves them as JSON for a page to
// pass to new RTCPeerConnection({iceServers}).
package turn

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// DefaultTTL is how long credentials last unless configured. TURN servers
// check the expiry again on every allocation refresh, so a call outlives its
// relay once the credential expires: the default is a working day, not
// minutes.
const DefaultTTL = 6 * time.Hour

// maxUserLength bounds the user part; coturn keeps usernames in fixed-size
// buffers (STUN allows 513 bytes in total).
const maxUserLength = 128

// Errors Check returns (wrapped with detail); test with errors.Is.
var (
	ErrMalformed = errors.New("turn: malformed time-limited username")
	ErrExpired   = errors.New("turn: credential expired")
	ErrMismatch  = errors.New("turn: credential does not match the shared secret")
)

// Config configures an Issuer.
type Config struct {
	// Secret is coturn's static-auth-secret. Required.
	Secret string
	// TTL is how long a credential lasts (default DefaultTTL). Browsers get
	// a new one on every page load or reconnect.
	TTL time.Duration
	// URIs are the TURN (and STUN) server URIs a browser should use, such as
	// "turn:turn.example.com:3478?transport=udp" and
	// "turns:turn.example.com:5349?transport=tcp". Required.
	URIs []string
}

// Issuer makes credentials. It is safe for concurrent use and holds no
// mutable state.
type Issuer struct {
	secret []byte
	ttl    time.Duration
	uris   []string
}

// New checks cfg and returns an Issuer.
func New(cfg Config) (*Issuer, error) {
	if cfg.Secret == "" {
		return nil, errors.New("turn: empty shared secret")
	}
	if cfg.TTL == 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.TTL < time.Second {
		return nil, fmt.Errorf("turn: TTL %v is under one second", cfg.TTL)
	}
	if len(cfg.URIs) == 0 {
		return nil, errors.New("turn: no TURN URIs")
	}
	for _, u := range cfg.URIs {
		if !strings.HasPrefix(u, "turn:") && !strings.HasPrefix(u, "turns:") && !strings.HasPrefix(u, "stun:") && !strings.HasPrefix(u, "stuns:") {
			return nil, fmt.Errorf("turn: URI %q: want a turn:, turns:, stun: or stuns: URI", u)
		}
	}
	return &Issuer{secret: []byte(cfg.Secret), ttl: cfg.TTL, uris: append([]string(nil), cfg.URIs...)}, nil
}

// Credentials are one time-limited TURN login.
type Credentials struct {
	Username   string `json:"username"`
	Credential string `json:"credential"`
	// TTL is the lifetime in seconds, as the TURN REST API draft names it.
	TTL       int64     `json:"ttl"`
	ExpiresAt time.Time `json:"expires_at"`
	URIs      []string  `json:"uris"`
}

// ICEServer is one entry of RTCConfiguration.iceServers, spelled the way a
// browser (and pion's webrtc.ICEServer JSON) reads it.
type ICEServer struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username,omitempty"`
	Credential string   `json:"credential,omitempty"`
}

// ICEServer returns c as an iceServers entry.
func (c Credentials) ICEServer() ICEServer {
	return ICEServer{URLs: c.URIs, Username: c.Username, Credential: c.Credential}
}

// Issue returns credentials for user valid from now for the TTL. The user
// part only labels the allocation in TURN server logs; characters that would
// confuse the "expiry:user" format are replaced, and an empty user gets a
// random label.
func (i *Issuer) Issue(user string, now time.Time) Credentials {
	expires := now.Add(i.ttl).Truncate(time.Second)
	username := strconv.FormatInt(expires.Unix(), 10) + ":" + cleanUser(user)
	return Credentials{
		Username:   username,
		Credential: credential(i.secret, username),
		TTL:        int64(i.ttl / time.Second),
		ExpiresAt:  expires.UTC(),
		URIs:       append([]string(nil), i.uris...),
	}
}

// Check does what the TURN server does with a credential: the username must
// be "<expiry>:<user>" with an expiry after now, and credential must be the
// HMAC of the username under the secret.
func (i *Issuer) Check(username, cred string, now time.Time) error {
	expiry, err := ParseUsername(username)
	if err != nil {
		return err
	}
	want := credential(i.secret, username)
	if !hmac.Equal([]byte(want), []byte(cred)) {
		return ErrMismatch
	}
	if !now.Before(expiry) {
		return fmt.Errorf("%w at %s", ErrExpired, expiry.UTC().Format(time.RFC3339))
	}
	return nil
}

// ParseUsername returns the expiry of a time-limited username.
func ParseUsername(username string) (time.Time, error) {
	ts, user, ok := strings.Cut(username, ":")
	if !ok || user == "" {
		return time.Time{}, fmt.Errorf("%w: want <expiry>:<user>", ErrMalformed)
	}
	if len(ts) == 0 || len(ts) > 12 || strings.TrimLeft(ts, "0123456789") != "" {
		return time.Time{}, fmt.Errorf("%w: expiry %q is not Unix seconds", ErrMalformed, truncate(ts))
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: expiry %q: %w", ErrMalformed, truncate(ts), err)
	}
	return time.Unix(sec, 0), nil
}

func credential(secret []byte, username string) string {
	m := hmac.New(sha1.New, secret)
	m.Write([]byte(username))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// cleanUser keeps the user label printable ASCII without ":" (the TURN REST
// separator; coturn and pion split on it), within maxUserLength.
func cleanUser(user string) string {
	var b strings.Builder
	for _, r := range user {
		if b.Len() >= maxUserLength {
			break
		}
		if r <= ' ' || r > '~' || r == ':' {
			r = '_'
		}
		b.WriteRune(r)
	}
	if b.Len() == 0 {
		return "anon-" + rand.Text()[:10]
	}
	return b.String()
}

func truncate(s string) string {
	if len(s) > 24 {
		return s[:24] + "..."
	}
	return s
}
