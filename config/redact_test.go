package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

const (
	testJWT   = "jwt-secret-0123456789abcdef"
	testAdmin = "admin-token-0123456789"
)

func secretConfig() Config {
	c := Default()
	c.Auth.JWTSecret = testJWT
	c.Admin.Token = testAdmin
	return c
}

func TestRedacted(t *testing.T) {
	c := secretConfig()
	r := c.Redacted()
	if r.Auth.JWTSecret != RedactedValue || r.Admin.Token != RedactedValue {
		t.Errorf("secrets not redacted: %q %q", r.Auth.JWTSecret, r.Admin.Token)
	}
	if c.Auth.JWTSecret != testJWT || c.Admin.Token != testAdmin {
		t.Error("Redacted modified its receiver")
	}
	// A deep copy: editing the copy's lists leaves the original alone.
	r.CORS.AllowedOrigins[0] = "changed"
	if c.CORS.AllowedOrigins[0] == "changed" {
		t.Error("Redacted shares the origins list with the original")
	}
	r.Auth.JWTSecret, r.Admin.Token = c.Auth.JWTSecret, c.Admin.Token
	r.CORS.AllowedOrigins[0] = c.CORS.AllowedOrigins[0]
	if !equalConfigs(r, c) {
		t.Error("Redacted changed a non-secret key")
	}
	// Unset secrets stay visibly unset.
	if d := Default().Redacted(); d.Auth.JWTSecret != "" || d.Admin.Token != "" {
		t.Errorf("empty secrets became %q %q", d.Auth.JWTSecret, d.Admin.Token)
	}
}

// Every way of printing a Config must hide the secrets but show the rest.
func TestNoSecretInOutput(t *testing.T) {
	c := secretConfig()
	var text, js bytes.Buffer
	slog.New(slog.NewTextHandler(&text, nil)).Info("start", "config", c)
	slog.New(slog.NewJSONHandler(&js, nil)).Info("start", "config", c)
	outputs := map[string]string{
		"String":    c.String(),
		"%v":        fmt.Sprintf("%v", c),
		"%+v":       fmt.Sprintf("%+v", c),
		"%s":        fmt.Sprintf("%s", c),
		"slog text": text.String(),
		"slog json": js.String(),
	}
	for name, out := range outputs {
		if strings.Contains(out, testJWT) || strings.Contains(out, testAdmin) {
			t.Errorf("%s leaks a secret:\n%s", name, out)
		}
		if !strings.Contains(out, RedactedValue) || !strings.Contains(out, "65536") {
			t.Errorf("%s lacks the redaction marker or the payload limit:\n%s", name, out)
		}
	}
	if !strings.Contains(text.String(), "config.signaling.max_payload_bytes=65536") {
		t.Errorf("text log lacks a flattened key path:\n%s", text.String())
	}
	var rec map[string]any
	if err := json.Unmarshal(js.Bytes(), &rec); err != nil {
		t.Fatal(err)
	}
	group, _ := rec["config"].(map[string]any)
	if group["shutdown.timeout"] != float64(10e9) || group["admin.token"] != RedactedValue {
		t.Errorf("json config group = %v", group)
	}
}

// String is valid YAML for the same configuration, secrets aside.
func TestStringRoundTrip(t *testing.T) {
	c := loadTestdata(t)
	back, err := ParseYAML([]byte(c.String()), Config{})
	if err != nil {
		t.Fatalf("String output does not parse: %v\n%s", err, c)
	}
	want := c.Redacted()
	if !equalConfigs(back, want) {
		t.Errorf("got\n%#v\nwant\n%#v", back, want)
	}
}
