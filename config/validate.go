package config

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// FieldError is one invalid value. Validate returns every FieldError it finds,
// joined with errors.Join; use errors.As, or walk the Unwrap() []error of the
// joined error, to inspect them.
type FieldError struct {
	// Key is the key path, e.g. "signaling.max_payload_bytes" or
	// "rooms.topologies[1].topology".
	Key string
	// Got is the offending value as it is printed in the message (strings are
	// quoted). It is empty for secrets, whose values are never printed.
	Got string
	// Reason says what a valid value looks like.
	Reason string
	// Source says where the value was set, when the Loader knows it:
	// "gateway.yaml:12", "environment RTCIO_LISTEN", "flag --listen".
	Source string
}

func (e *FieldError) Error() string {
	var b strings.Builder
	b.WriteString(e.Key + ": " + e.Reason)
	if e.Got != "" {
		b.WriteString(", got " + e.Got)
	}
	if e.Source != "" {
		b.WriteString(" (set by " + e.Source + ")")
	}
	return b.String()
}

// Bounds enforced by Validate. They are wide: their job is to catch a typo
// (a missing unit, an extra zero), not to tune the server.
const (
	minPayloadBytes  = 1 << 10
	maxPayloadBytes  = 16 << 20
	maxRoomNameBytes = 4096
	maxRoomsPerSock  = 1024
	maxMessageRate   = 1e6
	maxMessageBurst  = 1_000_000
	maxDuration      = time.Hour
	// maxTURNTTL is wider than maxDuration: TURN credentials commonly
	// last hours (the default is 6h).
	maxTURNTTL     = 7 * 24 * time.Hour
	maxCount       = 1_000_000
	minSecretBytes = 16
)

// Topology names accepted by rooms.default_topology and rooms.topologies.
const (
	TopologyMesh = "mesh"
	TopologySFU  = "sfu"
)

// Validate checks every key and returns all problems joined, each a
// *FieldError naming the key path and the offending value. It returns nil
// for a usable configuration, including Default().
func (c Config) Validate() error {
	var v validator
	v.listen(c.Listen)
	v.oneOf("log.level", c.Log.Level, "debug", "info", "warn", "error")
	v.oneOf("log.format", c.Log.Format, "text", "json")
	v.signaling(c.Signaling)
	v.http(c.HTTP, c.Metrics)
	for i, origin := range c.CORS.AllowedOrigins {
		if reason := checkOrigin(origin); reason != "" {
			v.fail(fmt.Sprintf("cors.allowed_origins[%d]", i), strconv.Quote(origin), reason)
		}
	}
	if n := len(c.Auth.JWTSecret); n > 0 && n < minSecretBytes {
		v.fail("auth.jwt_secret", "", fmt.Sprintf("must be at least %d bytes when set, got %d bytes", minSecretBytes, n))
	}
	if strings.ContainsFunc(c.Admin.Token, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) {
		// Usually a trailing newline from a secrets file; the token could
		// never match an Authorization header.
		v.fail("admin.token", "", "must not contain whitespace or control characters")
	}
	v.rooms(c.Rooms)
	v.media(c.Media)
	v.adapt(c.Adapt)
	v.oneOf("recording.mode", c.Recording.Mode, "off", "all", "rooms")
	if c.Recording.Mode != "off" && c.Recording.Dir == "" {
		v.fail("recording.dir", `""`, "must name a directory when recording.mode is \""+c.Recording.Mode+"\"")
	}
	if c.Recording.MaxFileSize < 0 {
		v.fail("recording.max_file_size", strconv.FormatInt(c.Recording.MaxFileSize, 10), "must not be negative")
	}
	v.duration("recording.flush_interval", c.Recording.FlushInterval)
	if c.Debug.PprofListen != "" {
		if _, _, err := net.SplitHostPort(c.Debug.PprofListen); err != nil {
			v.fail("debug.pprof_listen", strconv.Quote(c.Debug.PprofListen), "must be host:port")
		}
	}
	if c.TURN.Secret != "" {
		if len(c.TURN.URIs) == 0 {
			v.fail("turn.uris", "[]", "must list at least one turn: or stun: URI when turn.secret is set")
		}
		if d := c.TURN.TTL; d < time.Second || d > maxTURNTTL {
			v.fail("turn.ttl", strconv.Quote(d.String()), "must be between 1s and "+maxTURNTTL.String())
		}
	}
	for i, u := range c.Webhooks.URLs {
		if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
			v.fail(fmt.Sprintf("webhooks.urls[%d]", i), strconv.Quote(u), "must be an http or https URL")
		}
	}
	if len(c.Webhooks.URLs) > 0 && len(c.Webhooks.Secret) < minSecretBytes {
		v.fail("webhooks.secret", "", fmt.Sprintf("must be at least %d bytes when webhooks.urls is set", minSecretBytes))
	}
	v.cluster(c)
	v.duration("shutdown.timeout", c.Shutdown.Timeout)
	if d := c.Shutdown.ReadinessDelay; d < 0 || c.Shutdown.Timeout > 0 && d >= c.Shutdown.Timeout {
		v.fail("shutdown.readiness_delay", c.Shutdown.ReadinessDelay.String(), "must be at least 0 and below shutdown.timeout")
	}
	return errors.Join(v.errs...)
}

type validator struct{ errs []error }

// cluster checks redis.* and cluster.*. The cluster keys are checked even
// while redis.url is empty, so a typo does not wait for the day a
// deployment turns clustering on.
func (v *validator) cluster(c Config) {
	cl := c.Cluster
	v.duration("cluster.heartbeat", cl.Heartbeat)
	v.duration("cluster.node_ttl", cl.NodeTTL)
	if cl.Heartbeat > 0 && cl.NodeTTL < 2*cl.Heartbeat {
		v.fail("cluster.node_ttl", strconv.Quote(cl.NodeTTL.String()),
			"must be at least twice cluster.heartbeat ("+cl.Heartbeat.String()+"), or one late heartbeat declares a live node dead")
	}
	v.intRange("cluster.outbox_size", cl.OutboxSize, 16, maxCount, fmt.Sprintf("must be between 16 and %d", maxCount))
	v.duration("cluster.media_lease_ttl", cl.MediaLeaseTTL)
	if cl.MediaLeaseTTL > 0 && cl.MediaLeaseTTL < time.Second {
		v.fail("cluster.media_lease_ttl", strconv.Quote(cl.MediaLeaseTTL.String()), "must be at least 1s: it is renewed every third of it")
	}
	v.oneOf("cluster.placement", cl.Placement, PlacementJoining, PlacementLeastLoaded)
	if n := cl.MaxRoomPeersPerNode; n != 0 {
		switch {
		case n < 0:
			v.fail("cluster.max_room_peers_per_node", strconv.Itoa(n), "must be 0 (off) or positive")
		case c.Redis.URL == "":
			// Refused, not ignored: a deployment that sets a threshold
			// expects rooms to spread past it, and one node cannot.
			v.fail("cluster.max_room_peers_per_node", strconv.Itoa(n), "needs redis.url: rooms cascade over the nodes of a cluster")
		case c.Media.MaxPeersPerRoom > 0 && n >= c.Media.MaxPeersPerRoom:
			v.fail("cluster.max_room_peers_per_node", strconv.Itoa(n),
				"must be below media.max_peers_per_room ("+strconv.Itoa(c.Media.MaxPeersPerRoom)+"), or a room never cascades before it is full")
		}
	}
	v.intRange("cluster.inbox_max_len", cl.InboxMaxLen, 1000, 100*maxCount, fmt.Sprintf("must be between 1000 and %d", 100*maxCount))
	if id := cl.NodeID; id != "" && (len(id) > 64 || strings.ContainsFunc(id, func(r rune) bool {
		return !(r == '-' || r == '_' || r == '.' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z')
	})) {
		v.fail("cluster.node_id", strconv.Quote(id), "must be at most 64 letters, digits, '-', '_' or '.'")
	}
	u := c.Redis.URL
	if u == "" {
		if c.Redis.Password != "" {
			v.fail("redis.password", "", "is set but redis.url is empty")
		}
		return
	}
	parsed, err := url.Parse(u)
	switch {
	case err != nil || (parsed.Scheme != "redis" && parsed.Scheme != "rediss") || parsed.Host == "":
		got := ""
		if !strings.Contains(u, "@") { // never print what may be a password
			got = strconv.Quote(u)
		}
		v.fail("redis.url", got, "must be redis://host:port/db or rediss://host:port/db")
		return
	case parsed.User != nil:
		// The URL is logged; a password in it would be too.
		v.fail("redis.url", "", "must not carry credentials: set redis.password instead")
		return
	}
}

func (v *validator) fail(key, got, reason string) {
	v.errs = append(v.errs, &FieldError{Key: key, Got: got, Reason: reason})
}

func (v *validator) oneOf(key, got string, allowed ...string) {
	for _, a := range allowed {
		if got == a {
			return
		}
	}
	v.fail(key, strconv.Quote(got), "must be one of "+strings.Join(allowed, ", "))
}

func (v *validator) intRange(key string, got, lo, hi int, reason string) {
	if got < lo || got > hi {
		v.fail(key, strconv.Itoa(got), reason)
	}
}

func (v *validator) duration(key string, d time.Duration) {
	switch {
	case d <= 0:
		v.fail(key, strconv.Quote(d.String()), "must be a positive duration such as \"10s\"")
	case d > maxDuration:
		v.fail(key, strconv.Quote(d.String()), "must be at most "+maxDuration.String())
	}
}

func (v *validator) listen(addr string) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		v.fail("listen", strconv.Quote(addr), "must be host:port, e.g. \":3001\" or \"127.0.0.1:3001\"")
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 || port != strconv.Itoa(n) {
		v.fail("listen", strconv.Quote(addr), "port must be a number from 0 to 65535")
	}
	if host == "" {
		return
	}
	if _, err := netip.ParseAddr(host); err != nil && !validHostname(host) {
		v.fail("listen", strconv.Quote(addr), "host must be empty, an IP address or a host name")
	}
}

func (v *validator) signaling(s Signaling) {
	switch p := s.Path; {
	case !strings.HasPrefix(p, "/") || !strings.HasSuffix(p, "/"):
		v.fail("signaling.path", strconv.Quote(p), "must start and end with \"/\", like \"/socket.io/\"")
	case p == "/":
		v.fail("signaling.path", strconv.Quote(p), "must not be \"/\" alone, which would capture every request")
	case strings.Contains(p, "//") || strings.ContainsAny(p, "?#%") ||
		strings.ContainsFunc(p, func(r rune) bool { return r <= ' ' || r >= 0x7f }):
		v.fail("signaling.path", strconv.Quote(p), "must be a plain URL path: no \"//\", query, fragment, escapes, spaces or non-ASCII")
	}
	v.intRange("signaling.max_payload_bytes", s.MaxPayloadBytes, minPayloadBytes, maxPayloadBytes,
		"must be between 1 KiB and 16 MiB")
	v.intRange("signaling.max_description_bytes", s.MaxDescriptionBytes, minPayloadBytes, maxPayloadBytes,
		"must be between 1 KiB and 16 MiB")
	v.intRange("signaling.max_room_name_length", s.MaxRoomNameLength, 1, maxRoomNameBytes,
		fmt.Sprintf("must be between 1 and %d bytes", maxRoomNameBytes))
	v.intRange("signaling.max_rooms_per_socket", s.MaxRoomsPerSocket, 1, maxRoomsPerSock,
		fmt.Sprintf("must be between 1 and %d", maxRoomsPerSock))
	rate := s.MessagesPerSecond
	if math.IsNaN(rate) || rate < 0 || rate > maxMessageRate {
		v.fail("signaling.messages_per_second", strconv.FormatFloat(rate, 'g', -1, 64),
			"must be between 0 (no limit) and 1e+06")
	}
	if rate > 0 {
		v.intRange("signaling.message_burst", s.MessageBurst, 1, maxMessageBurst,
			fmt.Sprintf("must be between 1 and %d while signaling.messages_per_second is above 0", maxMessageBurst))
	} else if s.MessageBurst < 0 {
		v.fail("signaling.message_burst", strconv.Itoa(s.MessageBurst), "must not be negative")
	}
	v.duration("signaling.ping_interval", s.PingInterval)
	v.duration("signaling.ping_timeout", s.PingTimeout)
	v.intRange("signaling.max_queued_packets", s.MaxQueuedPackets, 16, maxCount, fmt.Sprintf("must be between 16 and %d", maxCount))
	v.duration("signaling.write_stall_timeout", s.WriteStallTimeout)
}

func (v *validator) http(h HTTP, m Metrics) {
	v.duration("http.read_header_timeout", h.ReadHeaderTimeout)
	v.duration("http.idle_timeout", h.IdleTimeout)
	v.intRange("http.max_connections", h.MaxConnections, 1, maxCount, fmt.Sprintf("must be between 1 and %d", maxCount))
	if m.Listen != "" {
		if _, _, err := net.SplitHostPort(m.Listen); err != nil {
			v.fail("metrics.listen", strconv.Quote(m.Listen), "must be host:port")
		}
	}
}

func (v *validator) rooms(r Rooms) {
	v.oneOf("rooms.default_topology", r.DefaultTopology, TopologyMesh, TopologySFU)
	first := map[string]int{}
	for i, rule := range r.Topologies {
		key := fmt.Sprintf("rooms.topologies[%d]", i)
		switch p := rule.Pattern; {
		case p == "":
			v.fail(key+".pattern", `""`, "must not be empty: use a room name or a prefix ending in \"*\"")
		case !utf8.ValidString(p) || strings.ContainsFunc(p, unicode.IsControl):
			v.fail(key+".pattern", strconv.Quote(p), "must be valid UTF-8 without control characters")
		case strings.Contains(strings.TrimSuffix(p, "*"), "*"):
			v.fail(key+".pattern", strconv.Quote(p), "may only have \"*\" at the end, as a prefix match")
		default:
			if j, dup := first[p]; dup {
				v.fail(key+".pattern", strconv.Quote(p), fmt.Sprintf("duplicates rooms.topologies[%d]", j))
			} else {
				first[p] = i
			}
		}
		v.oneOf(key+".topology", rule.Topology, TopologyMesh, TopologySFU)
	}
}

func (v *validator) media(m Media) {
	for i, cidr := range m.AllowedIPs {
		if _, err := netip.ParsePrefix(cidr); err != nil {
			v.fail(fmt.Sprintf("media.allowed_ips[%d]", i), strconv.Quote(cidr), "must be a CIDR range like 127.0.0.0/8")
		}
	}
	if m.UDPPort != 0 {
		v.intRange("media.udp_port", m.UDPPort, 1, 65535, "must be a port between 1 and 65535, or 0 for a port per connection")
	}
	v.intRange("media.udp_batch_size", m.UDPBatchSize, 0, 1024, "must be between 0 (off) and 1024 packets")
	v.duration("media.udp_batch_interval", m.UDPBatchInterval)
	v.intRange("media.udp_read_buffer_bytes", m.UDPReadBufferBytes, 0, 1<<30, "must be between 0 (the kernel's default) and 1 GiB")
	if m.UDPBatchInterval > 10*time.Millisecond {
		v.fail("media.udp_batch_interval", strconv.Quote(m.UDPBatchInterval.String()), "must be at most 10ms: every batched packet may wait this long")
	}
	for i, name := range m.RelayChannels {
		if name == "" {
			v.fail(fmt.Sprintf("media.relay_channels[%d]", i), `""`, "must not be empty")
		}
	}
	v.duration("media.metadata_wait", m.MetadataWait)
	v.duration("media.adopt_grace", m.AdoptGrace)
	v.intRange("media.max_peer_connections", m.MaxPeerConnections, 1, maxCount, fmt.Sprintf("must be between 1 and %d", maxCount))
	v.intRange("media.max_peers_per_room", m.MaxPeersPerRoom, 1, maxCount, fmt.Sprintf("must be between 1 and %d", maxCount))
	v.duration("media.peer_connect_timeout", m.PeerConnectTimeout)
	if r := m.RelayMessagesPerSecond; math.IsNaN(r) || r < 0 || r > maxMessageRate {
		v.fail("media.relay_messages_per_second", strconv.FormatFloat(r, 'g', -1, 64), "must be between 0 (no limit) and 1e+06")
	} else if r > 0 {
		v.intRange("media.relay_message_burst", m.RelayMessageBurst, 1, maxMessageBurst,
			fmt.Sprintf("must be between 1 and %d while media.relay_messages_per_second is above 0", maxMessageBurst))
	}
	v.intRange("media.max_unknown_ssrcs", m.MaxUnknownSSRCs, 1, maxCount, fmt.Sprintf("must be between 1 and %d", maxCount))
	for i, ip := range m.PublicIPs {
		if _, err := netip.ParseAddr(ip); err != nil {
			v.fail(fmt.Sprintf("media.public_ips[%d]", i), strconv.Quote(ip), "must be an IP address")
		}
	}
	if m.TCPPort != 0 {
		v.intRange("media.tcp_port", m.TCPPort, 1, 65535, "must be a port between 1 and 65535, or 0 for no ICE over TCP")
	}
	for i, u := range m.ICEServers {
		if !strings.HasPrefix(u, "stun:") && !strings.HasPrefix(u, "turn:") && !strings.HasPrefix(u, "turns:") {
			v.fail(fmt.Sprintf("media.ice_servers[%d]", i), strconv.Quote(u), "must be a stun:, turn: or turns: URL")
		}
	}
}

// checkOrigin returns why origin is not a valid CORS entry, or "".
func checkOrigin(origin string) string {
	const shape = "must be an origin like \"https://app.example.com\", \"*\", or have one \"*\" as the port or leading subdomain"
	if origin == "*" {
		return ""
	}
	scheme, rest, ok := strings.Cut(origin, "://")
	if !ok || !validScheme(scheme) || rest == "" {
		return shape
	}
	if origin != strings.ToLower(origin) {
		return "must be lower case, as browsers send it"
	}
	if strings.ContainsAny(rest, "/?#@\\") {
		return "must be scheme://host[:port] with no path, query or user (no trailing \"/\")"
	}
	if strings.Count(origin, "*") > 1 {
		return "may have at most one \"*\""
	}
	host, port := rest, ""
	if strings.HasPrefix(rest, "[") {
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			return shape
		}
		host, rest = rest[:end+1], rest[end+1:]
		if rest != "" {
			if rest[0] != ':' {
				return shape
			}
			port = rest[1:]
		}
		if a, err := netip.ParseAddr(host[1 : len(host)-1]); err != nil || !a.Is6() || a.Zone() != "" {
			return "host in brackets must be an IPv6 address"
		}
	} else {
		var hasPort bool
		host, port, hasPort = strings.Cut(rest, ":")
		if hasPort && port == "" {
			return "port must not be empty"
		}
		switch {
		case strings.HasPrefix(host, "*."):
			if !validHostname(host[2:]) {
				return "after \"*.\" must come a host name"
			}
		case strings.Contains(host, "*"):
			return "\"*\" may only be the whole port or the leading label of the host, as in \"https://*.example.com\""
		case !validHostname(host):
			if _, err := netip.ParseAddr(host); err != nil {
				return "host must be a host name or an IP address"
			}
		}
	}
	switch {
	case port == "" || port == "*":
	case strings.Contains(port, "*"):
		return "\"*\" may only be the whole port or the leading label of the host, as in \"https://*.example.com\""
	default:
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 || port != strconv.Itoa(n) {
			return "port must be a number from 1 to 65535 or \"*\""
		}
		if (scheme == "http" && n == 80) || (scheme == "https" && n == 443) {
			return "must not name the default port " + port + ": browsers leave it out of the Origin header"
		}
	}
	return ""
}

func validScheme(s string) bool {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '+' || r == '-' || r == '.') {
			return false
		}
	}
	return true
}

// validHostname accepts DNS names (letters, digits, inner hyphens, dotted
// labels of 1..63 bytes, an optional trailing dot), case-insensitively.
func validHostname(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	h = strings.TrimSuffix(h, ".")
	// An all-digit last label is a (possibly malformed) IPv4 address, which
	// callers check with netip instead.
	if last := h[strings.LastIndexByte(h, '.')+1:]; strings.Trim(last, "0123456789") == "" {
		return false
	}
	for label := range strings.SplitSeq(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}
