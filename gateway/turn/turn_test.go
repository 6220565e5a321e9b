package turn_test

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	pionturn "github.com/pion/turn/v5"
	"github.com/rtcio-gateway/rtcio-gateway/gateway/turn"
)

const secret = "north-sea-shared-secret"

var uris = []string{"turn:127.0.0.1:3478?transport=udp", "turns:turn.example.com:5349?transport=tcp"}

func newIssuer(t *testing.T, ttl time.Duration) *turn.Issuer {
	t.Helper()
	i, err := turn.New(turn.Config{Secret: secret, TTL: ttl, URIs: uris})
	if err != nil {
		t.Fatal(err)
	}
	return i
}

// independent computes the credential the way the TURN REST API draft and
// coturn's use-auth-secret define it, without our code.
func independent(key, username string) string {
	m := hmac.New(sha1.New, []byte(key))
	m.Write([]byte(username))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

func TestIssuedCredentialMatchesSharedSecret(t *testing.T) {
	i := newIssuer(t, 20*time.Minute)
	now := time.Now()
	c := i.Issue("sock-42", now)

	ts, user, ok := strings.Cut(c.Username, ":")
	if !ok || user != "sock-42" {
		t.Fatalf("username %q, want <expiry>:sock-42", c.Username)
	}
	exp, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		t.Fatalf("expiry %q: %v", ts, err)
	}
	if exp <= now.Unix() || exp > now.Add(20*time.Minute).Unix() || exp < now.Add(20*time.Minute-time.Second).Unix() {
		t.Errorf("expiry %d, want now+20m (now %d)", exp, now.Unix())
	}
	if c.TTL != 1200 || !c.ExpiresAt.Equal(time.Unix(exp, 0)) {
		t.Errorf("ttl %d expires_at %v, want 1200 and %v", c.TTL, c.ExpiresAt, time.Unix(exp, 0))
	}
	if want := independent(secret, c.Username); c.Credential != want {
		t.Errorf("credential %q, want HMAC-SHA1 %q", c.Credential, want)
	}
	if c.Credential == independent("another-secret", c.Username) {
		t.Error("credential does not depend on the secret")
	}

	// pion/turn's own TURN REST auth handler (a second, independent
	// implementation) derives the same long-term key from the secret.
	auth := pionturn.LongTermTURNRESTAuthHandler(secret, nil)
	userID, key, ok := auth(&pionturn.RequestAttributes{Username: c.Username, Realm: "rtcio"})
	if !ok || userID != "sock-42" {
		t.Fatalf("pion auth handler refused %q (user %q)", c.Username, userID)
	}
	if want := pionturn.GenerateAuthKey(c.Username, "rtcio", c.Credential); string(key) != string(want) {
		t.Error("pion's key from the secret differs from the key of our credential")
	}
}

func TestCheck(t *testing.T) {
	i := newIssuer(t, time.Hour)
	now := time.Unix(1_700_000_000, 0)
	c := i.Issue("u", now)
	for _, tc := range []struct {
		name, user, cred string
		at               time.Time
		want             error
	}{
		{"fresh", c.Username, c.Credential, now, nil},
		{"expired", c.Username, c.Credential, now.Add(time.Hour), turn.ErrExpired},
		{"other user", strings.Replace(c.Username, ":u", ":v", 1), c.Credential, now, turn.ErrMismatch},
		{"extended expiry", strconv.FormatInt(now.Add(48*time.Hour).Unix(), 10) + ":u", c.Credential, now, turn.ErrMismatch},
		{"no separator", "1700003600", c.Credential, now, turn.ErrMalformed},
		{"no user", "1700003600:", c.Credential, now, turn.ErrMalformed},
		{"signed expiry", "-1:u", c.Credential, now, turn.ErrMalformed},
		{"huge expiry", "99999999999999999999:u", c.Credential, now, turn.ErrMalformed},
	} {
		if err := i.Check(tc.user, tc.cred, tc.at); (tc.want == nil) != (err == nil) || (tc.want != nil && !errors.Is(err, tc.want)) {
			t.Errorf("%s: Check = %v, want %v", tc.name, err, tc.want)
		}
	}
}

func TestUserLabelIsSanitised(t *testing.T) {
	i := newIssuer(t, time.Hour)
	now := time.Now()
	for in, want := range map[string]string{
		"alice":                  "alice",
		"a:b c\n":                "a_b_c_",
		"é":                      "_",
		strings.Repeat("x", 500): strings.Repeat("x", 128),
	} {
		c := i.Issue(in, now)
		if _, user, _ := strings.Cut(c.Username, ":"); user != want {
			t.Errorf("Issue(%q) user part %q, want %q", in, user, want)
		}
		if err := i.Check(c.Username, c.Credential, now); err != nil {
			t.Errorf("Issue(%q) does not check: %v", in, err)
		}
	}
	a, b := i.Issue("", now), i.Issue("", now)
	if a.Username == b.Username || !strings.Contains(a.Username, ":anon-") {
		t.Errorf("anonymous users %q and %q, want distinct anon- labels", a.Username, b.Username)
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	for name, cfg := range map[string]turn.Config{
		"no secret": {URIs: uris},
		"no uris":   {Secret: "s"},
		"http uri":  {Secret: "s", URIs: []string{"http://turn.example.com"}},
		"tiny ttl":  {Secret: "s", URIs: uris, TTL: time.Millisecond},
		"negative":  {Secret: "s", URIs: uris, TTL: -time.Hour},
	} {
		if _, err := turn.New(cfg); err == nil {
			t.Errorf("%s: New accepted %+v", name, cfg)
		}
	}
	i, err := turn.New(turn.Config{Secret: "s", URIs: uris})
	if err != nil {
		t.Fatal(err)
	}
	if c := i.Issue("u", time.Now()); c.TTL != int64(turn.DefaultTTL/time.Second) {
		t.Errorf("default TTL %d", c.TTL)
	}
}

func TestHandlerServesICEServers(t *testing.T) {
	i := newIssuer(t, 10*time.Minute)
	h := i.Handler(func(r *http.Request) (string, error) {
		if r.Header.Get("Authorization") != "Bearer ok" {
			return "", errors.New("no token")
		}
		return "alice", nil
	}, nil)
	srv := httptest.NewServer(h)
	defer srv.Close()

	get := func(method, auth string) *http.Response {
		t.Helper()
		req, _ := http.NewRequestWithContext(t.Context(), method, srv.URL+"/turn", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}

	resp := get(http.MethodGet, "Bearer ok")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("status %d, type %q, cache %q", resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("Cache-Control"))
	}
	// Decode loosely, as a browser would, to pin the JSON names.
	var body struct {
		Username   string   `json:"username"`
		Credential string   `json:"credential"`
		TTL        int64    `json:"ttl"`
		URIs       []string `json:"uris"`
		ICEServers []struct {
			URLs       []string `json:"urls"`
			Username   string   `json:"username"`
			Credential string   `json:"credential"`
		} `json:"iceServers"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(body.Username, ":alice") || body.TTL != 600 || len(body.URIs) != 2 {
		t.Errorf("body %+v", body)
	}
	if body.Credential != independent(secret, body.Username) {
		t.Error("served credential does not match the shared secret")
	}
	exp, _ := turn.ParseUsername(body.Username)
	if !exp.After(time.Now()) {
		t.Errorf("served expiry %v is not in the future", exp)
	}
	if len(body.ICEServers) != 1 || body.ICEServers[0].Username != body.Username ||
		body.ICEServers[0].Credential != body.Credential || strings.Join(body.ICEServers[0].URLs, ",") != strings.Join(uris, ",") {
		t.Errorf("iceServers %+v", body.ICEServers)
	}

	if r := get(http.MethodGet, ""); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("unauthenticated GET: %d", r.StatusCode)
	}
	if r := get(http.MethodPost, "Bearer ok"); r.StatusCode != http.StatusMethodNotAllowed || r.Header.Get("Allow") != "GET" {
		t.Errorf("POST: %d allow %q", r.StatusCode, r.Header.Get("Allow"))
	}
}

// FuzzCheck: any username and credential text is refused or accepted without
// a panic, and whatever Issue makes for any user label checks.
func FuzzCheck(f *testing.F) {
	f.Add("1700003600:alice", "c2VjcmV0", "alice")
	f.Add(":", "", "")
	f.Add("99999999999:a:b", "====", "a:b")
	f.Add("-5:x", "\x00", "\xff\xfe")
	i, err := turn.New(turn.Config{Secret: secret, URIs: uris})
	if err != nil {
		f.Fatal(err)
	}
	now := time.Unix(1_700_000_000, 0)
	f.Fuzz(func(t *testing.T, username, cred, user string) {
		if err := i.Check(username, cred, now); err == nil && cred != independent(secret, username) {
			t.Fatalf("accepted %q/%q that does not match", username, cred)
		}
		c := i.Issue(user, now)
		if err := i.Check(c.Username, c.Credential, now); err != nil {
			t.Fatalf("Issue(%q) = %q does not check: %v", user, c.Username, err)
		}
		if strings.Count(c.Username, ":") != 1 {
			t.Fatalf("Issue(%q) = %q has more than one separator", user, c.Username)
		}
	})
}
