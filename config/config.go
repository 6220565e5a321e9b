// Package config holds the one typed configuration of rtcio-gateway: its
// defaults (which run out of the box), and how a YAML file, environment
// variables and command-line flags override them, in that order. Validation
// errors name the offending key and value.
//
// Every value has a key path made of its yaml keys, such as
// "signaling.max_payload_bytes". The same path names it everywhere:
//
//   - in the YAML file, nested: signaling: {max_payload_bytes: 65536}.
//     Unknown keys are errors naming the key and line.
//   - in the environment, as RTCIO_ plus the path in upper case with dots
//     and dashes turned into "_": RTCIO_SIGNALING_MAX_PAYLOAD_BYTES=65536.
//     RTCIO_CONFIG names the YAML file. Variables with an empty value are
//     ignored; RTCIO_* variables matching no key are reported by
//     Loader.Warnings.
//   - on the command line: --set signaling.max_payload_bytes=65536, or a
//     shortcut flag (--listen, --log-level, --log-format, --admin-token,
//     --topology); --config FILE names the YAML file.
//
// Durations are Go duration strings ("10s", "1m30s"). In the environment and
// --set, lists are comma-separated, and a topology rule is written
// pattern=topology: RTCIO_ROOMS_TOPOLOGIES="lobby-*=sfu,standup=mesh".
// Keys lists every key with its variable and syntax.
//
// A program uses a Loader (see its example): NewLoader, RegisterFlags on its
// flag.FlagSet, parse the arguments, then Load(os.Environ()), which returns a
// validated Config or every problem found, each naming the key, the value and
// where it was set. Log the result with slog or %v: Config's LogValue and
// String redact secrets.
package config

import "time"

// Config is the whole configuration. Every field has a yaml key; the key path
// (for example "signaling.max_payload_bytes") is what errors, environment
// variables and the --set flag use.
type Config struct {
	// Listen is the HTTP listen address for signaling, admin and probes.
	Listen string `yaml:"listen"`

	Log       Log       `yaml:"log"`
	Signaling Signaling `yaml:"signaling"`
	CORS      CORS      `yaml:"cors"`
	Auth      Auth      `yaml:"auth"`
	Admin     Admin     `yaml:"admin"`
	Rooms     Rooms     `yaml:"rooms"`
	Media     Media     `yaml:"media"`
	TURN      TURN      `yaml:"turn"`
	Webhooks  Webhooks  `yaml:"webhooks"`
	Demo      Demo      `yaml:"demo"`
	Recording Recording `yaml:"recording"`
	Debug     Debug     `yaml:"debug"`
	Shutdown  Shutdown  `yaml:"shutdown"`
	HTTP      HTTP      `yaml:"http"`
	Metrics   Metrics   `yaml:"metrics"`
	Adapt     Adapt     `yaml:"adapt"`
	Redis     Redis     `yaml:"redis"`
	Cluster   Cluster   `yaml:"cluster"`
}

// Redis is the shared state and bus of a cluster of gateways. While URL is
// empty the gateway is a single node: everything stays in the process.
type Redis struct {
	// URL is redis://host:port/db (or rediss:// for TLS). It must not
	// carry a password: that goes in Password, which is redacted in logs.
	URL string `yaml:"url"`
	// Password authenticates to Redis (AUTH); empty for none.
	Password string `yaml:"password"`
}

// Cluster tunes how a node takes part in a cluster (used only while
// redis.url is set).
type Cluster struct {
	// NodeID names this node among the live ones; empty means the host
	// name. Two live processes must never share one.
	NodeID string `yaml:"node_id"`
	// Heartbeat is how often the node tells Redis it is alive; NodeTTL is
	// how long after its last heartbeat it counts as dead, when its
	// sockets leave their rooms.
	Heartbeat time.Duration `yaml:"heartbeat"`
	NodeTTL   time.Duration `yaml:"node_ttl"`
	// OutboxSize bounds the events waiting to be written to Redis for one
	// other node (Redis slow or away); past it events are dropped and
	// counted. InboxMaxLen caps each node's inbox stream in Redis.
	OutboxSize  int `yaml:"outbox_size"`
	InboxMaxLen int `yaml:"inbox_max_len"`
	// MediaLeaseTTL is how long an SFU room's media lease outlives its
	// holder's last renewal (renewed every third of it): how long a dead
	// media node's rooms wait for a new host.
	MediaLeaseTTL time.Duration `yaml:"media_lease_ttl"`
	// Placement chooses the node that hosts a new SFU room's media:
	// "joining", the node whose client joined first, or "least-loaded",
	// the live node whose hosted rooms serve the fewest clients.
	Placement string `yaml:"placement"`
	// MaxRoomPeersPerNode is the most clients one node serves in one SFU
	// room before the room cascades to an edge gateway on another node;
	// 0 is off. Cascading is not built yet, so Validate refuses any other
	// value rather than accept a setting that would do nothing.
	MaxRoomPeersPerNode int `yaml:"max_room_peers_per_node"`
}

// Placements of a new SFU room's media (cluster.placement).
const (
	// PlacementJoining: the node whose client joined the room first.
	PlacementJoining = "joining"
	// PlacementLeastLoaded: the live node whose hosted SFU rooms serve the
	// fewest clients (peer connections), the joining node on a tie or when
	// no node published its load.
	PlacementLeastLoaded = "least-loaded"
)

// HTTP bounds what connections to the HTTP listener may hold.
type HTTP struct {
	// ReadHeaderTimeout bounds how long a client may take to send a
	// request's headers.
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	// IdleTimeout closes a keep-alive connection that sends no new request
	// for this long (WebSocket connections are not idle: they have their
	// own heartbeat).
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// MaxConnections bounds the open connections to the listener; past it
	// a new connection gets 503 and is closed. The effective bound is at
	// most half the process's open-file limit, so descriptors remain for
	// peer connections, recordings and probes.
	MaxConnections int `yaml:"max_connections"`
}

// Metrics says where /metrics is served.
type Metrics struct {
	// Public serves /metrics on the client-facing listener without
	// credentials; when false it is served there only with the admin
	// bearer token (and not at all while admin.token is empty).
	Public bool `yaml:"public"`
	// Listen, when set, also serves /metrics without credentials on its own
	// address (e.g. "127.0.0.1:9090"), for a scraper on a private network.
	Listen string `yaml:"listen"`
}

// Recording records rooms' streams to disk, one file per stream.
type Recording struct {
	// Mode is "off" (only what the admin API or a server event starts),
	// "all" (every SFU room) or "rooms" (rooms matching Rooms).
	Mode string `yaml:"mode"`
	// Rooms are room names or prefixes ending in "*" (mode "rooms").
	Rooms []string `yaml:"rooms"`
	// Dir is the output directory; recording is unavailable while empty.
	Dir string `yaml:"dir"`
	// NameTemplate names files below Dir ("{room}/{start}_{publisher}_{stream}"
	// when empty).
	NameTemplate string `yaml:"name_template"`
	// MaxFileSize (bytes) and MaxDuration roll to a new file; 0 means none.
	MaxFileSize int64         `yaml:"max_file_size"`
	MaxDuration time.Duration `yaml:"max_duration"`
	// FlushInterval bounds what a crash can lose.
	FlushInterval time.Duration `yaml:"flush_interval"`
}

// Debug exposes profiling.
type Debug struct {
	// PprofListen, when set, serves net/http/pprof on this address (its
	// own listener, e.g. "127.0.0.1:6060"; never expose it publicly).
	PprofListen string `yaml:"pprof_listen"`
}

// TURN makes the gateway hand out short-lived TURN credentials in the
// shared-secret scheme of coturn's use-auth-secret, so no long-lived TURN
// password ships to browsers. Disabled while Secret is empty.
type TURN struct {
	// Secret is coturn's static-auth-secret.
	Secret string `yaml:"secret"`
	// URIs are the TURN/STUN URIs handed to clients, e.g.
	// "turn:turn.example.com:3478?transport=udp".
	URIs []string `yaml:"uris"`
	// TTL is how long a credential is valid.
	TTL time.Duration `yaml:"ttl"`
}

// Webhooks posts signed JSON events (room, participant, stream, recording)
// to URLs. Disabled while URLs is empty.
type Webhooks struct {
	URLs []string `yaml:"urls"`
	// Secret signs every delivery (HMAC-SHA256); required with URLs.
	Secret string `yaml:"secret"`
}

// Demo serves a demo room page at "/".
type Demo struct {
	Enabled bool `yaml:"enabled"`
	// ClientURL is where the page imports the rtc.io client from (an https
	// URL or a path on the gateway's origin); empty means the default CDN.
	ClientURL string `yaml:"client_url"`
}

// Media configures the gateway's own peers (SFU rooms).
type Media struct {
	// AllowedIPs limits the local addresses gathered as ICE candidates to
	// these CIDR ranges (e.g. "127.0.0.0/8" for a loopback-only test
	// setup); empty means every address.
	AllowedIPs []string `yaml:"allowed_ips"`
	// UDPPort, when not 0, serves every peer connection on this one UDP
	// port (ICE UDP mux) instead of a port per connection.
	UDPPort int `yaml:"udp_port"`
	// UDPBatchSize, with UDPPort, queues the mux's outgoing packets and
	// sends them with one sendmmsg per batch of up to this many (Linux;
	// elsewhere every packet is written alone): fewer system calls per
	// forwarded packet. 0 writes every packet with its own system call.
	// Without UDPPort (a socket per connection) it has no effect. Each
	// batched socket's flusher wakes every half UDPBatchInterval, idle or
	// not (about 4% of a core per listening address here).
	UDPBatchSize int `yaml:"udp_batch_size"`
	// UDPBatchInterval is the longest a queued packet waits for its batch
	// to fill before the batch is sent anyway: the latency the batching may
	// add.
	UDPBatchInterval time.Duration `yaml:"udp_batch_interval"`
	// UDPReadBufferBytes is the kernel receive buffer asked for the shared
	// UDP port (UDPPort): it takes every publisher's packets and every
	// subscriber's feedback, so a few milliseconds without CPU overflow the
	// default (about 200 KiB) where a socket per connection would not. The
	// kernel caps it at net.core.rmem_max.
	UDPReadBufferBytes int `yaml:"udp_read_buffer_bytes"`
	// RelayChannels are the custom channel names whose broadcast messages
	// the gateway relays between the clients of an SFU room. A negotiated
	// channel exists only where both ends create it, so the gateway can
	// relay only channels it knows by name; a client sending on any other
	// gets a channel-not-relayed gateway-error.
	RelayChannels []string `yaml:"relay_channels"`
	// MetadataWait bounds how long a late joiner's replay waits for a
	// publisher to confirm that it still tracks a stream.
	MetadataWait time.Duration `yaml:"metadata_wait"`
	// PublicIPs are the public addresses of a host behind a 1:1 NAT: the
	// gateway advertises them as its host candidates.
	PublicIPs []string `yaml:"public_ips"`
	// TCPPort, when not 0, also accepts ICE over TCP on this port (a
	// fallback for clients whose UDP is blocked).
	TCPPort int `yaml:"tcp_port"`
	// ICEServers are STUN/TURN URLs the gateway's own peers use.
	ICEServers []string `yaml:"ice_servers"`
	// AdoptGrace is how long the streams of a publisher whose connection
	// is gone wait for it to reconnect and publish them again; adopted
	// streams continue on the subscribers' existing tracks.
	AdoptGrace time.Duration `yaml:"adopt_grace"`
	// MaxPeerConnections bounds the gateway's peer connections in the
	// whole process, and MaxPeersPerRoom those of one SFU room: each client
	// in an SFU room costs one. A join past either is refused
	// (too-many-peers).
	MaxPeerConnections int `yaml:"max_peer_connections"`
	MaxPeersPerRoom    int `yaml:"max_peers_per_room"`
	// PeerConnectTimeout closes a gateway peer connection that did not
	// connect this long after it was created (a client that never answers).
	PeerConnectTimeout time.Duration `yaml:"peer_connect_timeout"`
	// RelayMessagesPerSecond and RelayMessageBurst form a token bucket per
	// sender over the ctrl events and channel messages the gateway relays
	// in SFU rooms; past it messages are dropped and counted.
	RelayMessagesPerSecond float64 `yaml:"relay_messages_per_second"`
	RelayMessageBurst      int     `yaml:"relay_message_burst"`
	// MaxUnknownSSRCs bounds the RTP streams with SSRCs that no track
	// announced that one peer connection may open; past it the connection
	// is closed (a publisher cycling SSRCs would otherwise grow memory).
	MaxUnknownSSRCs int `yaml:"max_unknown_ssrcs"`
}

// Log selects the log level and format.
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // text or json
}

// Signaling bounds what one socket may do on the socket.io signaling server.
type Signaling struct {
	// Path is the socket.io path, "/socket.io/" like every socket.io server.
	Path string `yaml:"path"`
	// MaxPayloadBytes bounds the JSON size of one event's payload.
	MaxPayloadBytes int `yaml:"max_payload_bytes"`
	// MaxDescriptionBytes bounds the sdp of one session description (an
	// offer or answer in #rtcio:message) on its own: in an SFU room it
	// grows with the streams a client receives, unlike every other payload.
	// The rest of such a message keeps MaxPayloadBytes.
	MaxDescriptionBytes int `yaml:"max_description_bytes"`
	// MaxRoomNameLength bounds a room id, in bytes.
	MaxRoomNameLength int `yaml:"max_room_name_length"`
	// MaxRoomsPerSocket bounds how many rooms one socket may be in at once.
	MaxRoomsPerSocket int `yaml:"max_rooms_per_socket"`
	// MessagesPerSecond and MessageBurst form a token bucket per socket over
	// every event it sends. Zero MessagesPerSecond disables the limit.
	MessagesPerSecond float64 `yaml:"messages_per_second"`
	MessageBurst      int     `yaml:"message_burst"`
	// EnforceSource makes the server set `source` of #rtcio:message to the
	// sender's id and refuse a message that claims another source.
	EnforceSource bool `yaml:"enforce_source"`
	// RequireSharedRoom relays #rtcio:message only to a target that shares a
	// room with the sender.
	RequireSharedRoom bool `yaml:"require_shared_room"`
	// PingInterval and PingTimeout are the Engine.IO heartbeat.
	PingInterval time.Duration `yaml:"ping_interval"`
	PingTimeout  time.Duration `yaml:"ping_timeout"`
	// MaxQueuedPackets bounds what waits to be written to one socket: from
	// half of it on, gateway-error replies are dropped (counted as
	// reply-dropped); past it the socket is disconnected (slow-consumer).
	MaxQueuedPackets int `yaml:"max_queued_packets"`
	// WriteStallTimeout disconnects a socket whose queue stays at least
	// half full this long without the transport taking anything.
	WriteStallTimeout time.Duration `yaml:"write_stall_timeout"`
}

// CORS lists the origins whose pages may connect. An entry is an exact origin
// ("https://app.example.com"), "*" for any, or a pattern with one "*" for a
// port or a leading subdomain ("http://localhost:*", "https://*.example.com").
// A page served by the gateway itself (same origin) is always allowed.
type CORS struct {
	AllowedOrigins []string `yaml:"allowed_origins"`
}

// Auth configures the optional token check on connect.
type Auth struct {
	// JWTSecret, when set, makes every socket present `auth.token`: an HS256
	// JWT signed with this secret. Its optional `rooms` claim (a list of room
	// names, "*" allowed as a trailing wildcard) restricts which rooms it may
	// join.
	JWTSecret string `yaml:"jwt_secret"`
}

// Admin configures the admin HTTP API under /admin/v1.
type Admin struct {
	// Token is the bearer token. The API is disabled while it is empty.
	Token string `yaml:"token"`
}

// Rooms chooses the topology of each room.
type Rooms struct {
	// DefaultTopology is "mesh" or "sfu".
	DefaultTopology string `yaml:"default_topology"`
	// Topologies overrides the default for rooms matching a pattern (a room
	// name, or a prefix ending in "*").
	Topologies []TopologyRule `yaml:"topologies"`
}

// TopologyRule gives the rooms matching Pattern the topology Topology.
type TopologyRule struct {
	Pattern  string `yaml:"pattern"`
	Topology string `yaml:"topology"`
}

// Shutdown bounds a graceful stop.
type Shutdown struct {
	// Timeout is how long a stop may take before the process exits anyway.
	Timeout time.Duration `yaml:"timeout"`
	// ReadinessDelay is how long the server keeps serving after it turned
	// unready, so load balancers stop sending new clients before the
	// existing ones are told to leave. Counts within Timeout.
	ReadinessDelay time.Duration `yaml:"readiness_delay"`
}

// Default returns the configuration used when nothing overrides it.
func Default() Config {
	return Config{
		Listen: ":3001",
		Log:    Log{Level: "info", Format: "text"},
		Signaling: Signaling{
			Path:            "/socket.io/",
			MaxPayloadBytes: 64 << 10,
			// Room for about 200 forwarded streams in one description
			// (a meeting of 100 publishing audio and video); see README.
			MaxDescriptionBytes: 256 << 10,
			MaxRoomNameLength:   128,
			MaxRoomsPerSocket:   8,
			MessagesPerSecond:   100,
			MessageBurst:        400,
			EnforceSource:       true,
			RequireSharedRoom:   true,
			PingInterval:        25 * time.Second,
			PingTimeout:         20 * time.Second,
			MaxQueuedPackets:    1024,
			WriteStallTimeout:   10 * time.Second,
		},
		HTTP: HTTP{ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 60 * time.Second, MaxConnections: 10000},
		CORS: CORS{AllowedOrigins: []string{
			"http://localhost:*", "http://127.0.0.1:*", "http://[::1]:*",
			"https://localhost:*", "https://127.0.0.1:*", "https://[::1]:*",
		}},
		Rooms: Rooms{DefaultTopology: "sfu"},
		Media: Media{
			RelayChannels: []string{"chat"},
			MetadataWait:  5 * time.Second,
			AdoptGrace:    800 * time.Millisecond,

			UDPBatchSize:       64,
			UDPBatchInterval:   200 * time.Microsecond,
			UDPReadBufferBytes: 4 << 20,

			MaxPeerConnections:     1000,
			MaxPeersPerRoom:        500,
			PeerConnectTimeout:     20 * time.Second,
			RelayMessagesPerSecond: 100,
			RelayMessageBurst:      400,
			MaxUnknownSSRCs:        32,
		},
		TURN:      TURN{TTL: 6 * time.Hour},
		Demo:      Demo{Enabled: true},
		Recording: Recording{Mode: "off", FlushInterval: time.Second},
		Shutdown:  Shutdown{Timeout: 10 * time.Second},
		Adapt:     DefaultAdapt(),
		Cluster: Cluster{
			Heartbeat:   time.Second,
			NodeTTL:     5 * time.Second,
			OutboxSize:  10000,
			InboxMaxLen: 100000,

			MediaLeaseTTL: 5 * time.Second,
			Placement:     PlacementJoining,
		},
	}
}
