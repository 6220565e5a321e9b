package config

import (
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// writeFile writes a YAML file in a fresh temporary directory.
func writeFile(t *testing.T, yamlText string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "gateway.yaml")
	if err := os.WriteFile(path, []byte(yamlText), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// parseFlags registers a new Loader on a quiet FlagSet and parses args.
func parseFlags(t *testing.T, args ...string) (*Loader, error) {
	t.Helper()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	l := NewLoader()
	l.RegisterFlags(fs)
	return l, fs.Parse(args)
}

func TestLoadPrecedence(t *testing.T) {
	const key = "signaling.max_payload_bytes"
	const fileValue, envValue, flagValue = 2048, 4096, 8192
	def := Default().Signaling.MaxPayloadBytes
	for _, tc := range []struct {
		name              string
		file, env, flagOn bool
		want              int
	}{
		{"none", false, false, false, def},
		{"file", true, false, false, fileValue},
		{"env", false, true, false, envValue},
		{"flag", false, false, true, flagValue},
		{"file+env", true, true, false, envValue},
		{"file+flag", true, false, true, flagValue},
		{"env+flag", false, true, true, flagValue},
		{"file+env+flag", true, true, true, flagValue},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var args, environ []string
			if tc.file {
				args = append(args, "--config", writeFile(t, "signaling:\n  max_payload_bytes: 2048\n"))
			}
			if tc.env {
				environ = append(environ, "RTCIO_SIGNALING_MAX_PAYLOAD_BYTES=4096")
			}
			if tc.flagOn {
				args = append(args, "--set", key+"=8192")
			}
			l, err := parseFlags(t, args...)
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := l.Load(environ)
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.Signaling.MaxPayloadBytes; got != tc.want {
				t.Errorf("%s = %d, want %d", key, got, tc.want)
			}
		})
	}
}

// Each layer only touches the keys it sets; the others come from below.
func TestLoadLayersMerge(t *testing.T) {
	path := writeFile(t, `
listen: 127.0.0.1:5000
log: {level: warn}
rooms:
  default_topology: sfu
  topologies: [{pattern: a, topology: mesh}]
`)
	l, err := parseFlags(t, "--log-format", "json", "--topology", "mesh", "--listen", ":6000")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := l.Load([]string{
		"RTCIO_CONFIG=" + path,
		"RTCIO_LOG_LEVEL=debug",
		"RTCIO_SIGNALING_PING_INTERVAL=3s",
		"RTCIO_CORS_ALLOWED_ORIGINS=https://a.example.com, https://b.example.com",
		"RTCIO_ROOMS_TOPOLOGIES=lobby-*=sfu,standup=mesh",
		"RTCIO_SIGNALING_ENFORCE_SOURCE=false",
		"RTCIO_ADMIN_TOKEN=", // empty: ignored
		"HOME=/nowhere",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.Listen = ":6000"               // flag over file
	want.Log.Level = "debug"            // env over file
	want.Log.Format = "json"            // flag over default
	want.Rooms.DefaultTopology = "mesh" // flag over file
	want.Signaling.PingInterval = 3 * time.Second
	want.Signaling.EnforceSource = false
	want.CORS.AllowedOrigins = []string{"https://a.example.com", "https://b.example.com"}
	want.Rooms.Topologies = []TopologyRule{{"lobby-*", "sfu"}, {"standup", "mesh"}} // env list replaces file list
	if !equalConfigs(cfg, want) {
		t.Errorf("got\n%s\nwant\n%s", cfg, want)
	}
	if len(l.Warnings()) != 0 {
		t.Errorf("unexpected warnings %q", l.Warnings())
	}
}

// The last flag naming a key wins, whether shortcut or --set.
func TestLoadFlagOrder(t *testing.T) {
	l, err := parseFlags(t, "--listen", ":1", "--set", "listen=:2", "--log-level", "error", "--set", "log.level=warn", "--listen", ":3")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := l.Load(nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != ":3" || cfg.Log.Level != "warn" {
		t.Errorf("listen=%q log.level=%q, want :3 and warn", cfg.Listen, cfg.Log.Level)
	}
}

func TestLoadConfigFlagBeatsEnvFile(t *testing.T) {
	envFile := writeFile(t, "listen: :1111\n")
	flagFile := writeFile(t, "listen: :2222\n")
	l, err := parseFlags(t, "--config", flagFile)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := l.Load([]string{"RTCIO_CONFIG=" + envFile})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != ":2222" {
		t.Errorf("listen = %q, want the --config file's :2222", cfg.Listen)
	}
}

func TestLoadWarnsUnknownEnv(t *testing.T) {
	l := NewLoader()
	cfg, err := l.Load([]string{"RTCIO_SIGNALING_MAX_PAYLOD_BYTES=1", "RTCIO_NOPE=x", "PATH=/bin", "RTCIO_LISTEN=:7000"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != ":7000" {
		t.Errorf("listen = %q", cfg.Listen)
	}
	w := l.Warnings()
	if len(w) != 2 {
		t.Fatalf("warnings = %q, want 2", w)
	}
	if !strings.Contains(w[0], "RTCIO_NOPE") {
		t.Errorf("warning %q does not name RTCIO_NOPE", w[0])
	}
	if !strings.Contains(w[1], "RTCIO_SIGNALING_MAX_PAYLOD_BYTES") || !strings.Contains(w[1], "RTCIO_SIGNALING_MAX_PAYLOAD_BYTES") {
		t.Errorf("warning %q should name the typo and suggest the real variable", w[1])
	}
	// Warnings belong to one Load.
	if _, err := l.Load(nil); err != nil || len(l.Warnings()) != 0 {
		t.Errorf("second Load: err %v, warnings %q", err, l.Warnings())
	}
}

func TestFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"--set", "signaling.max_payload_byte=1"}, []string{`unknown key "signaling.max_payload_byte"`, `did you mean "signaling.max_payload_bytes"`}},
		{[]string{"--set", "listen"}, []string{"want key.path=value", `"listen"`}},
		{[]string{"--set", "signaling.max_payload_bytes=big"}, []string{"signaling.max_payload_bytes", "integer", `"big"`}},
		{[]string{"--set", "shutdown.timeout=10"}, []string{"shutdown.timeout", "duration", `"10"`}},
		{[]string{"--set", "rooms.topologies=lobby"}, []string{"rooms.topologies", "pattern=topology"}},
		{[]string{"--set", "signaling.messages_per_second=NaN"}, []string{"signaling.messages_per_second", `"NaN"`}},
		{[]string{"--config", ""}, []string{"empty file name"}},
	} {
		_, err := parseFlags(t, tc.args...)
		if err == nil {
			t.Errorf("%q: no error", tc.args)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%q: error %q does not contain %q", tc.args, err, w)
			}
		}
	}
}

func TestLoadEnvErrorsAllReported(t *testing.T) {
	path := writeFile(t, "listen: [1]\nbogus: 1\n")
	l := NewLoader()
	l.SetFile(path)
	_, err := l.Load([]string{
		"RTCIO_SIGNALING_MAX_ROOMS_PER_SOCKET=many",
		"RTCIO_SIGNALING_PING_TIMEOUT=20",
		"RTCIO_AUTH_JWT_SECRET=x", // fine syntactically; not reached by validation here
	})
	if err == nil {
		t.Fatal("no error")
	}
	for _, w := range []string{
		path + ":1: listen: want string, got a list",
		path + `:2: unknown key "bogus"`,
		`environment RTCIO_SIGNALING_MAX_ROOMS_PER_SOCKET (signaling.max_rooms_per_socket): want integer, got "many"`,
		`environment RTCIO_SIGNALING_PING_TIMEOUT (signaling.ping_timeout): want duration (e.g. 10s), got "20"`,
	} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error\n%s\ndoes not contain %q", err, w)
		}
	}
}

func TestLoadMissingFile(t *testing.T) {
	l := NewLoader()
	l.SetFile(filepath.Join(t.TempDir(), "absent.yaml"))
	_, err := l.Load(nil)
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err = %v, want a not-exist error", err)
	}
}

func TestLoadValidationNamesSource(t *testing.T) {
	path := writeFile(t, "log:\n  format: xml\nrooms:\n  topologies:\n    - {pattern: a, topology: star}\n")
	l, err := parseFlags(t, "--config", path, "--set", "signaling.max_payload_bytes=12")
	if err != nil {
		t.Fatal(err)
	}
	_, err = l.Load([]string{"RTCIO_SHUTDOWN_TIMEOUT=-1s", "RTCIO_AUTH_JWT_SECRET=short-secret"})
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	for _, w := range []string{
		`log.format: must be one of text, json, got "xml" (set by ` + path + ":2)",
		`rooms.topologies[0].topology: must be one of mesh, sfu, got "star" (set by ` + path + ":5)",
		"signaling.max_payload_bytes: must be between 1 KiB and 16 MiB, got 12 (set by flag --set signaling.max_payload_bytes)",
		`shutdown.timeout: must be a positive duration such as "10s", got "-1s" (set by environment RTCIO_SHUTDOWN_TIMEOUT)`,
		"auth.jwt_secret: must be at least 16 bytes when set, got 12 bytes (set by environment RTCIO_AUTH_JWT_SECRET)",
	} {
		if !strings.Contains(msg, w) {
			t.Errorf("error\n%s\ndoes not contain %q", msg, w)
		}
	}
	if strings.Contains(msg, "short-secret") {
		t.Errorf("error leaks the secret:\n%s", msg)
	}
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Key == "" {
		t.Errorf("errors.As(*FieldError) = %v", fe)
	}
}

// Set is the programmatic --set, and a secret it sets never reaches String.
func TestSetSecret(t *testing.T) {
	l := NewLoader()
	err := l.Set("admin.token", "s3cr3t-value-0123456789")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := l.Load(nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Admin.Token != "s3cr3t-value-0123456789" {
		t.Errorf("admin.token = %q", cfg.Admin.Token)
	}
	if s := cfg.String(); strings.Contains(s, "s3cr3t") {
		t.Errorf("String leaks the token:\n%s", s)
	}
}

func TestHelpShowsDefaults(t *testing.T) {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	var out strings.Builder
	fs.SetOutput(&out)
	NewLoader().RegisterFlags(fs)
	fs.PrintDefaults()
	for _, w := range []string{"-listen address", "(default :3001)", "-set key.path=value", "-config file", "-topology topology"} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("help output lacks %q:\n%s", w, out.String())
		}
	}
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	if want := []string{"admin-token", "config", "listen", "log-format", "log-level", "set", "topology"}; !slices.Equal(names, want) {
		t.Errorf("flags = %q, want %q", names, want)
	}
}
