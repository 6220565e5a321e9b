// Package cluster is what several gateway processes share through Redis so
// that they behave as one rtc.io server: room membership changed
// atomically (Lua), one inbox per node for events bound to sockets on
// other nodes (a Redis Stream, read from where it left off, deduplicated
// by sender sequence), leases with epochs for the node that hosts a room's
// media, and node heartbeats with a reaper for the sockets of dead nodes.
//
// Redis is the only shared state and the only bus: there is no leader and
// no home-made consensus. Everything here takes a context and stops with
// it; nothing here knows socket.io, rooms' topologies or media.
package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"
)

// Config of a node's connection to the cluster.
type Config struct {
	// URL of Redis, as go-redis parses it: redis://host:port/db; Password,
	// when set, authenticates (it overrides one in the URL).
	URL, Password string
	// NodeID names this node; it must be unique among live nodes.
	NodeID string
	// Prefix starts every key (default "rtcio:").
	Prefix string
	// Heartbeat is how often the node says it is alive (default 1s);
	// NodeTTL how long after its last heartbeat it counts as dead
	// (default 5s).
	Heartbeat, NodeTTL time.Duration
	// InboxMaxLen caps each node's inbox stream (default 100000 entries);
	// OutboxSize bounds the events waiting to be sent to one node
	// (default 10000).
	InboxMaxLen, OutboxSize int
	// ClientName names this node's Redis connections (default
	// "rtcio-<node id>"), so CLIENT LIST shows whose they are.
	ClientName string
	Logger     *slog.Logger
}

func (c *Config) setDefaults() {
	if c.Prefix == "" {
		c.Prefix = "rtcio:"
	}
	if c.Heartbeat <= 0 {
		c.Heartbeat = time.Second
	}
	if c.NodeTTL <= 0 {
		c.NodeTTL = 5 * time.Second
	}
	if c.InboxMaxLen <= 0 {
		c.InboxMaxLen = 100000
	}
	if c.OutboxSize <= 0 {
		c.OutboxSize = 10000
	}
	if c.ClientName == "" {
		c.ClientName = "rtcio-" + c.NodeID
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Cluster is one node's handle on the cluster's Redis.
type Cluster struct {
	cfg Config
	rdb *redis.Client
	// incarnation tells this process's envelopes from those of an earlier
	// process with the same node id, whose sequence numbers restart.
	incarnation string
	keys        keys
	log         *slog.Logger
}

// Open connects to Redis. It does not wait for Redis to answer: a node
// starts, and keeps running, while Redis is down.
func Open(cfg Config) (*Cluster, error) {
	cfg.setDefaults()
	if cfg.NodeID == "" {
		return nil, errors.New("cluster: node id is empty")
	}
	opt, err := redis.ParseURL(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("cluster: redis url: %w", err)
	}
	// Short timeouts: a Redis that does not answer must not hold up
	// signaling for long, and every caller retries or reports.
	opt.DialTimeout, opt.ReadTimeout, opt.WriteTimeout = 2*time.Second, 2*time.Second, 2*time.Second
	// No silent retries: a Lua change whose answer was lost must not run
	// twice (callers retry what is safe to retry).
	opt.MaxRetries = -1
	opt.ClientName = cfg.ClientName
	if cfg.Password != "" {
		opt.Password = cfg.Password
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	return &Cluster{
		cfg: cfg, rdb: redis.NewClient(opt), incarnation: hex.EncodeToString(b[:]),
		keys: keys{prefix: cfg.Prefix}, log: cfg.Logger.With("component", "cluster", "node", cfg.NodeID),
	}, nil
}

// NodeID is this node's id.
func (c *Cluster) NodeID() string { return c.cfg.NodeID }

// Heartbeat is how often the node heartbeats (and so how long every live
// node may take to notice that Redis came back empty).
func (c *Cluster) Heartbeat() time.Duration { return c.cfg.Heartbeat }

// Ping reports whether Redis answers now.
func (c *Cluster) Ping(ctx context.Context) error {
	if err := c.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("cluster: redis: %w", err)
	}
	return nil
}

// Close closes the connections to Redis.
func (c *Cluster) Close() error { return c.rdb.Close() }

// keys names every key the cluster uses.
type keys struct{ prefix string }

func (k keys) members(room string) string   { return k.prefix + "room:" + room + ":members" }
func (k keys) joinSeq(room string) string   { return k.prefix + "room:" + room + ":seq" }
func (k keys) served(room string) string    { return k.prefix + "room:" + room + ":served" }
func (k keys) assign(room string) string    { return k.prefix + "room:" + room + ":assign" }
func (k keys) media(room string) string     { return k.prefix + "room:" + room + ":media" }
func (k keys) socketNode(id string) string  { return k.prefix + "socket:" + id + ":node" }
func (k keys) rooms() string                { return k.prefix + "rooms" }
func (k keys) socketRooms(id string) string { return k.prefix + "socket:" + id + ":rooms" }
func (k keys) nodeSockets(n string) string  { return k.prefix + "node:" + n + ":sockets" }
func (k keys) nodeAlive(n string) string    { return k.prefix + "node:" + n + ":alive" }
func (k keys) nodeLoad(n string) string     { return k.prefix + "node:" + n + ":load" }
func (k keys) nodes() string                { return k.prefix + "nodes" }
func (k keys) reaping(n string) string      { return k.prefix + "node:" + n + ":reaping" }
func (k keys) reaped(n string) string       { return k.prefix + "node:" + n + ":reaped" }
func (k keys) inbox(n string) string        { return k.prefix + "inbox:" + n }
func (k keys) lease(name string) string     { return k.prefix + "lease:" + name }
func (k keys) leaseEpoch(name string) string {
	return k.prefix + "lease:" + name + ":epoch"
}
