package config

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

func loadTestdata(t testing.TB) Config {
	t.Helper()
	data, err := os.ReadFile("testdata/gateway.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := ParseYAML(data, Default())
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestParseYAMLFull(t *testing.T) {
	cfg := loadTestdata(t)
	want := Config{
		Listen: "127.0.0.1:4001",
		Log:    Log{Level: "debug", Format: "json"},
		Signaling: Signaling{
			Path: "/rtc/", MaxPayloadBytes: 131072, MaxDescriptionBytes: 256 << 10, MaxRoomNameLength: 64, MaxRoomsPerSocket: 4,
			MessagesPerSecond: 50.5, MessageBurst: 200, EnforceSource: false, RequireSharedRoom: false,
			PingInterval: 10 * time.Second, PingTimeout: 5 * time.Second,
			MaxQueuedPackets: 1024, WriteStallTimeout: 10 * time.Second,
		},
		HTTP:      Default().HTTP,
		Cluster:   Default().Cluster,
		CORS:      CORS{AllowedOrigins: []string{"https://app.example.com", "https://*.example.org", "http://localhost:*"}},
		Auth:      Auth{JWTSecret: "0123456789abcdef0123456789abcdef"},
		Admin:     Admin{Token: "admin-token-0123456789"},
		Rooms:     Rooms{DefaultTopology: "sfu", Topologies: []TopologyRule{{"standup", "mesh"}, {"town-hall-*", "sfu"}}},
		Media:     Media{RelayChannels: []string{"chat"}, MetadataWait: 5 * time.Second, AdoptGrace: 800 * time.Millisecond},
		TURN:      TURN{TTL: 6 * time.Hour},
		Demo:      Demo{Enabled: true},
		Recording: Recording{Mode: "off", FlushInterval: time.Second},
		Shutdown:  Shutdown{Timeout: 30 * time.Second},
		Adapt:     DefaultAdapt(),
	}
	d := Default().Media
	want.Media.MaxPeerConnections, want.Media.MaxPeersPerRoom, want.Media.PeerConnectTimeout = d.MaxPeerConnections, d.MaxPeersPerRoom, d.PeerConnectTimeout
	want.Media.RelayMessagesPerSecond, want.Media.RelayMessageBurst, want.Media.MaxUnknownSSRCs = d.RelayMessagesPerSecond, d.RelayMessageBurst, d.MaxUnknownSSRCs
	want.Media.UDPBatchSize, want.Media.UDPBatchInterval, want.Media.UDPReadBufferBytes = d.UDPBatchSize, d.UDPBatchInterval, d.UDPReadBufferBytes
	if !equalConfigs(cfg, want) {
		t.Errorf("got\n%#v\nwant\n%#v", cfg, want)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("testdata/gateway.yaml does not validate: %v", err)
	}
}

func TestParseYAMLOverlay(t *testing.T) {
	cfg, err := ParseYAML([]byte("signaling:\n  ping_timeout: 1m\n"), Default())
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.Signaling.PingTimeout = time.Minute
	if !equalConfigs(cfg, want) {
		t.Errorf("only ping_timeout should change:\n%s", cfg)
	}
}

func TestParseYAMLEmptyAndNull(t *testing.T) {
	for _, doc := range []string{"", "# only a comment\n", "~\n", "---\n", "log:\n", "listen: ~\n"} {
		cfg, err := ParseYAML([]byte(doc), Default())
		if err != nil {
			t.Errorf("%q: %v", doc, err)
			continue
		}
		if !equalConfigs(cfg, Default()) {
			t.Errorf("%q changed the configuration:\n%s", doc, cfg)
		}
	}
	// A null list is an empty list: only same-origin pages.
	cfg, err := ParseYAML([]byte("cors:\n  allowed_origins:\n"), Default())
	if err != nil || len(cfg.CORS.AllowedOrigins) != 0 {
		t.Errorf("null list: %v, %q", err, cfg.CORS.AllowedOrigins)
	}
}

func TestParseYAMLAnchorsAndTextRules(t *testing.T) {
	cfg, err := ParseYAML([]byte(`
rooms:
  topologies:
    - &big {pattern: big-*, topology: sfu}
    - standup=mesh
    - *big
signaling:
  <<: {ping_interval: 7s, ping_timeout: 8s}
  ping_timeout: 9s
`), Default())
	if err != nil {
		t.Fatal(err)
	}
	wantRules := []TopologyRule{{"big-*", "sfu"}, {"standup", "mesh"}, {"big-*", "sfu"}}
	if len(cfg.Rooms.Topologies) != 3 || cfg.Rooms.Topologies[0] != wantRules[0] || cfg.Rooms.Topologies[1] != wantRules[1] || cfg.Rooms.Topologies[2] != wantRules[2] {
		t.Errorf("topologies = %v, want %v", cfg.Rooms.Topologies, wantRules)
	}
	if cfg.Signaling.PingInterval != 7*time.Second || cfg.Signaling.PingTimeout != 9*time.Second {
		t.Errorf("merge: interval %v timeout %v, want 7s and 9s", cfg.Signaling.PingInterval, cfg.Signaling.PingTimeout)
	}
	// The duplicate rule is caught by validation, not parsing.
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), `rooms.topologies[2].pattern: duplicates rooms.topologies[0], got "big-*"`) {
		t.Errorf("Validate = %v", err)
	}
}

func TestParseYAMLErrors(t *testing.T) {
	for _, tc := range []struct {
		doc  string
		want []string
	}{
		{"listen: :1\nsignaling:\n  max_payload_byte: 1\n", []string{`line 3: unknown key "signaling.max_payload_byte" (did you mean "signaling.max_payload_bytes"?)`}},
		{"lissen: :1\n", []string{`line 1: unknown key "lissen" (did you mean "listen"?)`}},
		{"rooms:\n  topologies:\n    - pattern: a\n      topolgy: sfu\n", []string{`line 4: unknown key "rooms.topologies[0].topolgy"`}},
		{"signaling:\n  max_payload_bytes: lots\n", []string{`line 2: signaling.max_payload_bytes: want integer, got "lots"`}},
		{"shutdown:\n  timeout: 10\n", []string{`line 2: shutdown.timeout: want duration (e.g. 10s), got "10"`}},
		{"signaling:\n  enforce_source: maybe\n", []string{`line 2: signaling.enforce_source: want boolean (true or false), got "maybe"`}},
		{"log: debug\n", []string{`line 1: "log" must be a mapping of keys, got "debug"`}},
		{"cors:\n  allowed_origins: https://a.example.com\n", []string{`line 2: cors.allowed_origins: want a list (e.g. [a, b]), got "https://a.example.com"`}},
		{"rooms:\n  topologies: [lobby]\n", []string{`line 2: rooms.topologies[0]: want pattern=topology: missing "=" in "lobby"`}},
		{"listen: :1\nlisten: :2\n", []string{`line 2: key "listen" is set twice (first at line 1)`}},
		{"- a\n- b\n", []string{`line 1: the top level must be a mapping of keys, got a list`}},
		{"listen: :1\n---\nlisten: :2\n", []string{"line 2: only one YAML document is allowed"}},
		{"listen: [\n", []string{"YAML: yaml: line"}},
		{"? [a]\n: 1\n", []string{"line 1: keys of the top level must be plain names, got a list"}},
		// Every problem at once, in document order.
		{"a: 1\nlog: {level: x, bad: 2}\nb: 3\n", []string{`line 1: unknown key "a"`, `line 2: unknown key "log.bad"`, `line 3: unknown key "b"`}},
	} {
		_, err := ParseYAML([]byte(tc.doc), Default())
		if err == nil {
			t.Errorf("%q: no error", tc.doc)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%q:\nerror %q\nlacks %q", tc.doc, err, w)
			}
		}
	}
}

func TestParseYAMLTooLarge(t *testing.T) {
	_, err := ParseYAML([]byte("#"+strings.Repeat("x", maxFileBytes)), Default())
	if err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("err = %v", err)
	}
}

// FuzzLoadYAML feeds arbitrary documents through the file path of loading.
// It must never panic, and whatever parses and validates must survive a trip
// through String's YAML unchanged (so a logged configuration can be reused).
func FuzzLoadYAML(f *testing.F) {
	seed, err := os.ReadFile("testdata/gateway.yaml")
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{
		string(seed),
		"",
		"listen: :3001\n",
		"signaling: {max_payload_bytes: 2048, ping_interval: 1s}\n",
		"rooms: {topologies: [a=sfu, {pattern: b*, topology: mesh}]}\n",
		"signaling:\n  <<: &x {ping_timeout: 3s}\n  <<: [*x]\n",
		"cors: {allowed_origins: ['https://*.example.com', 'http://[::1]:*']}\n",
		"a: &a [*a]\n",
		"listen: !!binary aGVsbG8=\n",
		"log: {level: 1, format: {a: b}}\n",
		"- [\n",
		"---\n---\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := ParseYAML(data, Default())
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		if cfg.Validate() != nil {
			_ = cfg.String()
			return
		}
		out, err := marshalYAML(cfg)
		if err != nil {
			t.Fatalf("marshal a valid configuration: %v", err)
		}
		back, err := ParseYAML(out, Default())
		if err != nil {
			t.Fatalf("re-parse %q: %v", out, err)
		}
		if !equalConfigs(back, cfg) {
			t.Fatalf("round trip changed the configuration:\n%#v\n%#v", cfg, back)
		}
	})
}

// mergeBomb nests "<<" merges: each level merges the previous one `fan`
// times, so a naive walk visits fan^depth mappings.
func mergeBomb(depth, fan int) string {
	level := "&a0 {ping_timeout: 1s}"
	for i := 1; i <= depth; i++ {
		refs := strings.Repeat(fmt.Sprintf(", *a%d", i-1), fan-1)
		level = fmt.Sprintf("&a%d {<<: [%s%s]}", i, level, refs)
	}
	return "signaling: {<<: [" + level + "]}\n"
}

func TestParseYAMLMergeBomb(t *testing.T) {
	doc := mergeBomb(12, 10) // 10^12 mappings if walked naively
	done := make(chan error, 1)
	go func() {
		_, err := ParseYAML([]byte(doc), Default())
		done <- err
	}()
	select {
	case err := <-done:
		// yaml.v3 may refuse it for excessive aliasing; either way it returns.
		t.Logf("ParseYAML: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("ParseYAML did not return within 30s: exponential walk of merges")
	}
}

func TestParseYAMLErrorCap(t *testing.T) {
	var b strings.Builder
	for i := range 100 {
		fmt.Fprintf(&b, "unknown%d: 1\n", i)
	}
	_, err := ParseYAML([]byte(b.String()), Default())
	if err == nil {
		t.Fatal("no error")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != maxYAMLErrors+1 || !strings.Contains(lines[maxYAMLErrors], "and 80 more problems") {
		t.Errorf("%d lines, last %q", len(lines), lines[len(lines)-1])
	}
}
