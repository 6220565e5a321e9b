package config

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

func TestDefaultValidates(t *testing.T) {
	if err := Default().Validate(); err != nil {
		t.Fatalf("Default() is invalid: %v", err)
	}
}

// Each case breaks one key; the error must name the key and the value, and
// nothing else may be reported.
func TestValidateNamesKeyAndValue(t *testing.T) {
	for _, tc := range []struct {
		name  string
		mut   func(*Config)
		want  string
		nwant int
	}{
		{"listen no port", func(c *Config) { c.Listen = "localhost" }, `listen: must be host:port, e.g. ":3001" or "127.0.0.1:3001", got "localhost"`, 1},
		{"listen port range", func(c *Config) { c.Listen = ":70000" }, `listen: port must be a number from 0 to 65535, got ":70000"`, 1},
		{"listen port name", func(c *Config) { c.Listen = ":http" }, `listen: port must be a number`, 1},
		{"listen bad host", func(c *Config) { c.Listen = "bad_host:1" }, `listen: host must be empty, an IP address or a host name, got "bad_host:1"`, 1},
		{"listen bad ipv4", func(c *Config) { c.Listen = "1.2.3.999:1" }, `listen: host must be`, 1},
		{"log level", func(c *Config) { c.Log.Level = "verbose" }, `log.level: must be one of debug, info, warn, error, got "verbose"`, 1},
		{"log level case", func(c *Config) { c.Log.Level = "INFO" }, `log.level: must be one of debug, info, warn, error, got "INFO"`, 1},
		{"log format", func(c *Config) { c.Log.Format = "xml" }, `log.format: must be one of text, json, got "xml"`, 1},
		{"path slashes", func(c *Config) { c.Signaling.Path = "socket.io" }, `signaling.path: must start and end with "/", like "/socket.io/", got "socket.io"`, 1},
		{"path trailing", func(c *Config) { c.Signaling.Path = "/socket.io" }, `signaling.path: must start and end with "/"`, 1},
		{"path root", func(c *Config) { c.Signaling.Path = "/" }, `signaling.path: must not be "/" alone`, 1},
		{"path query", func(c *Config) { c.Signaling.Path = "/a?b/" }, `signaling.path: must be a plain URL path`, 1},
		{"payload small", func(c *Config) { c.Signaling.MaxPayloadBytes = 12 }, "signaling.max_payload_bytes: must be between 1 KiB and 16 MiB, got 12", 1},
		{"payload large", func(c *Config) { c.Signaling.MaxPayloadBytes = 1 << 30 }, "signaling.max_payload_bytes: must be between 1 KiB and 16 MiB, got 1073741824", 1},
		{"room name zero", func(c *Config) { c.Signaling.MaxRoomNameLength = 0 }, "signaling.max_room_name_length: must be between 1 and 4096 bytes, got 0", 1},
		{"rooms per socket", func(c *Config) { c.Signaling.MaxRoomsPerSocket = -1 }, "signaling.max_rooms_per_socket: must be between 1 and 1024, got -1", 1},
		{"rate negative", func(c *Config) { c.Signaling.MessagesPerSecond = -0.5 }, "signaling.messages_per_second: must be between 0 (no limit) and 1e+06, got -0.5", 1},
		{"rate NaN", func(c *Config) { c.Signaling.MessagesPerSecond = math.NaN() }, "signaling.messages_per_second: must be between 0 (no limit) and 1e+06, got NaN", 1},
		{"rate Inf", func(c *Config) { c.Signaling.MessagesPerSecond = math.Inf(1) }, "signaling.messages_per_second: must be between 0 (no limit) and 1e+06, got +Inf", 1},
		{"burst zero with rate", func(c *Config) { c.Signaling.MessageBurst = 0 }, "signaling.message_burst: must be between 1 and 1000000 while signaling.messages_per_second is above 0, got 0", 1},
		{"burst negative without rate", func(c *Config) { c.Signaling.MessagesPerSecond = 0; c.Signaling.MessageBurst = -3 }, "signaling.message_burst: must not be negative, got -3", 1},
		{"ping interval", func(c *Config) { c.Signaling.PingInterval = 0 }, `signaling.ping_interval: must be a positive duration such as "10s", got "0s"`, 1},
		{"ping timeout", func(c *Config) { c.Signaling.PingTimeout = 2 * time.Hour }, `signaling.ping_timeout: must be at most 1h0m0s, got "2h0m0s"`, 1},
		{"shutdown", func(c *Config) { c.Shutdown.Timeout = -time.Second }, `shutdown.timeout: must be a positive duration such as "10s", got "-1s"`, 1},
		{"adapt floor", func(c *Config) { c.Adapt.FloorBps = 1000 }, "adapt.floor_bps: must be between 30000 and 10000000 bit/s, got 1000", 1},
		{"adapt max below floor", func(c *Config) { c.Adapt.MaxBps = 100_000 }, "adapt.max_bps: must be between adapt.floor_bps (200000) and 100000000 bit/s, got 100000", 1},
		{"adapt subscriber max below a video's", func(c *Config) { c.Adapt.SubscriberMaxBps = 1_000_000 }, "adapt.subscriber_max_bps: must be between adapt.max_bps (3000000) and 1000000000 bit/s, got 1000000", 1},
		{"adapt step", func(c *Config) { c.Adapt.StepDown = math.NaN() }, "adapt.step_down: must be between 0.01 and 0.9, got NaN", 1},
		{"adapt share", func(c *Config) { c.Adapt.RetransmitShare = 2 }, "adapt.retransmit_share: must be between 0.01 and 1, got 2", 1},
		{"adapt backoff", func(c *Config) { c.Adapt.MaxResumeBackoff = time.Second }, `adapt.max_resume_backoff: must be at least adapt.resume_backoff, got "1s"`, 1},
		{"adapt interval", func(c *Config) { c.Adapt.Interval = 0 }, `adapt.interval: must be a positive duration such as "10s", got "0s"`, 1},
		{"origin", func(c *Config) { c.CORS.AllowedOrigins = []string{"https://ok.example.com", "example.com"} }, `cors.allowed_origins[1]: must be an origin like`, 1},
		{"default topology", func(c *Config) { c.Rooms.DefaultTopology = "star" }, `rooms.default_topology: must be one of mesh, sfu, got "star"`, 1},
		{"rule empty pattern", func(c *Config) { c.Rooms.Topologies = []TopologyRule{{"", "sfu"}} }, `rooms.topologies[0].pattern: must not be empty: use a room name or a prefix ending in "*", got ""`, 1},
		{"rule inner star", func(c *Config) { c.Rooms.Topologies = []TopologyRule{{"a*b", "sfu"}} }, `rooms.topologies[0].pattern: may only have "*" at the end, as a prefix match, got "a*b"`, 1},
		{"rule bad utf8", func(c *Config) { c.Rooms.Topologies = []TopologyRule{{"a\xff", "sfu"}} }, `rooms.topologies[0].pattern: must be valid UTF-8 without control characters, got "a\xff"`, 1},
		{"rule topology", func(c *Config) { c.Rooms.Topologies = []TopologyRule{{"a", "mesh"}, {"b*", "p2p"}} }, `rooms.topologies[1].topology: must be one of mesh, sfu, got "p2p"`, 1},
		{"jwt short", func(c *Config) { c.Auth.JWTSecret = "hunter2" }, "auth.jwt_secret: must be at least 16 bytes when set, got 7 bytes", 1},
		{"redis url scheme", func(c *Config) { c.Redis.URL = "http://127.0.0.1:6379"; c.Rooms.DefaultTopology = "mesh" }, `redis.url: must be redis://host:port/db or rediss://host:port/db, got "http://127.0.0.1:6379"`, 1},
		{"redis url password", func(c *Config) { c.Redis.URL = "redis://:hunter2@127.0.0.1:6379"; c.Rooms.DefaultTopology = "mesh" }, "redis.url: must not carry credentials: set redis.password instead", 1},
		{"redis password alone", func(c *Config) { c.Redis.Password = "hunter2" }, "redis.password: is set but redis.url is empty", 1},
		{"cluster lease short", func(c *Config) { c.Cluster.MediaLeaseTTL = 100 * time.Millisecond }, `cluster.media_lease_ttl: must be at least 1s: it is renewed every third of it, got "100ms"`, 1},
		{"cluster placement", func(c *Config) { c.Cluster.Placement = "random" }, `cluster.placement: must be one of joining, least-loaded, got "random"`, 1},
		{"cluster cascade alone", func(c *Config) { c.Cluster.MaxRoomPeersPerNode = 20 }, `cluster.max_room_peers_per_node: needs redis.url: rooms cascade over the nodes of a cluster, got 20`, 1},
		{"cluster cascade negative", func(c *Config) { c.Cluster.MaxRoomPeersPerNode = -1 }, `cluster.max_room_peers_per_node: must be 0 (off) or positive, got -1`, 1},
		{"cluster cascade above room", func(c *Config) {
			c.Redis.URL = "redis://127.0.0.1:6379/0"
			c.Cluster.MaxRoomPeersPerNode = 500
		}, `cluster.max_room_peers_per_node: must be below media.max_peers_per_room (500), or a room never cascades before it is full, got 500`, 1},
		{"cluster heartbeat", func(c *Config) { c.Cluster.Heartbeat = 0 }, `cluster.heartbeat: must be a positive duration such as "10s", got "0s"`, 1},
		{"cluster node ttl", func(c *Config) { c.Cluster.NodeTTL = 1500 * time.Millisecond }, `cluster.node_ttl: must be at least twice cluster.heartbeat (1s), or one late heartbeat declares a live node dead, got "1.5s"`, 1},
		{"cluster node id", func(c *Config) { c.Cluster.NodeID = "node 1" }, `cluster.node_id: must be at most 64 letters, digits, '-', '_' or '.', got "node 1"`, 1},
		{"cluster outbox", func(c *Config) { c.Cluster.OutboxSize = 1 }, "cluster.outbox_size: must be between 16 and 1000000, got 1", 1},
		{"cluster inbox", func(c *Config) { c.Cluster.InboxMaxLen = 10 }, "cluster.inbox_max_len: must be between 1000 and 100000000, got 10", 1},
		{"udp batch size", func(c *Config) { c.Media.UDPBatchSize = 5000 }, "media.udp_batch_size: must be between 0 (off) and 1024 packets, got 5000", 1},
		{"udp read buffer", func(c *Config) { c.Media.UDPReadBufferBytes = -1 }, "media.udp_read_buffer_bytes: must be between 0 (the kernel's default) and 1 GiB, got -1", 1},
		{"udp batch interval", func(c *Config) { c.Media.UDPBatchInterval = time.Second }, `media.udp_batch_interval: must be at most 10ms: every batched packet may wait this long, got "1s"`, 1},
		{"admin token newline", func(c *Config) { c.Admin.Token = "abcdefghijklmnop\n" }, "admin.token: must not contain whitespace or control characters", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			tc.mut(&c)
			err := c.Validate()
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q\nlacks %q", err, tc.want)
			}
			if n := len(fieldErrors(t, err)); n != tc.nwant {
				t.Errorf("%d errors, want %d: %v", n, tc.nwant, err)
			}
			for _, secret := range []string{"hunter2", "abcdefghijklmnop"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error leaks a secret: %q", err)
				}
			}
		})
	}
}

// fieldErrors unpacks Validate's joined error; every part must be a *FieldError.
func fieldErrors(t *testing.T, err error) []*FieldError {
	t.Helper()
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		t.Fatalf("error %T is not a joined error", err)
	}
	var out []*FieldError
	for _, e := range joined.Unwrap() {
		var fe *FieldError
		if !errors.As(e, &fe) {
			t.Fatalf("part %T %q is not a *FieldError", e, e)
		}
		out = append(out, fe)
	}
	return out
}

func TestValidateReportsAll(t *testing.T) {
	c := Default()
	c.Listen = "nope"
	c.Log.Format = "xml"
	c.Signaling.MaxPayloadBytes = 12
	c.Rooms.Topologies = []TopologyRule{{"x", "ring"}}
	c.Shutdown.Timeout = 0
	errs := fieldErrors(t, c.Validate())
	var keys []string
	for _, fe := range errs {
		keys = append(keys, fe.Key)
	}
	want := []string{"listen", "log.format", "signaling.max_payload_bytes", "rooms.topologies[0].topology", "shutdown.timeout"}
	if strings.Join(keys, " ") != strings.Join(want, " ") {
		t.Errorf("keys %q, want %q", keys, want)
	}
}

func TestValidateAcceptsEdgeValues(t *testing.T) {
	c := Default()
	c.Listen = "[::1]:0"
	c.Signaling.MaxPayloadBytes = 1 << 10
	c.Signaling.MessagesPerSecond = 0
	c.Signaling.MessageBurst = 0 // ignored while the limit is off
	c.Auth.JWTSecret = strings.Repeat("k", 16)
	c.Admin.Token = "t"
	c.Rooms.Topologies = []TopologyRule{{"*", "sfu"}, {"exact", "mesh"}, {"pre-*", "sfu"}}
	c.CORS.AllowedOrigins = nil
	c.Cluster.Placement = PlacementLeastLoaded
	for _, listen := range []string{":3001", "127.0.0.1:3001", "[::1]:3001", "localhost:80", "gw.example.com:443", "[fe80::1%eth0]:1"} {
		c.Listen = listen
		if err := c.Validate(); err != nil {
			t.Errorf("listen %q: %v", listen, err)
		}
	}
}

func TestCheckOrigin(t *testing.T) {
	good := []string{
		"*",
		"https://app.example.com",
		"http://localhost:3000",
		"http://localhost:*",
		"https://*.example.com",
		"https://*.example.com:8443",
		"http://127.0.0.1:*",
		"http://[::1]:*",
		"http://[::1]",
		"https://example.com.",
		"app://local",
		"capacitor://localhost",
	}
	bad := map[string]string{
		"":                            "must be an origin like",
		"null":                        "must be an origin like",
		"example.com":                 "must be an origin like",
		"https://":                    "must be an origin like",
		"1http://a.com":               "must be an origin like",
		"HTTPS://app.example.com":     "must be an origin like", // scheme checked before case
		"https://App.example.com":     "must be lower case",
		"https://app.example.com/":    "no trailing",
		"https://app.example.com/x":   "no path",
		"https://u@app.example.com":   "no path, query or user",
		"https://a.example.com:":      "port must not be empty",
		"https://a.example.com:0":     "port must be a number from 1 to 65535",
		"https://a.example.com:99999": "port must be a number from 1 to 65535",
		"https://a.example.com:8*":    `"*" may only be the whole port`,
		"https://a.*.example.com":     `"*" may only be the whole port or the leading label`,
		"https://*example.com":        `"*" may only be the whole port or the leading label`,
		"https://*.":                  `after "*." must come a host name`,
		"https://*.1.2.3.4":           `after "*." must come a host name`,
		"https://**.example.com":      `at most one "*"`,
		"https://*.example.com:*":     `at most one "*"`,
		"https://a_b.example.com":     "host must be a host name or an IP address",
		"https://1.2.3.999":           "host must be a host name or an IP address",
		"http://[::1":                 "must be an origin like",
		"http://[1.2.3.4]":            "host in brackets must be an IPv6 address",
		"http://[::1]x":               "must be an origin like",
		"https://app.example.com:443": "must not name the default port 443",
		"http://app.example.com:80":   "must not name the default port 80",
	}
	for _, o := range good {
		if reason := checkOrigin(o); reason != "" {
			t.Errorf("%q rejected: %s", o, reason)
		}
	}
	for o, want := range bad {
		if reason := checkOrigin(o); !strings.Contains(reason, want) {
			t.Errorf("%q: reason %q, want it to contain %q", o, reason, want)
		}
	}
}
