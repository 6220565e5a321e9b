package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rtcio-gateway/rtcio-gateway/config"
	"github.com/rtcio-gateway/rtcio-gateway/gateway/cluster"
	"github.com/rtcio-gateway/rtcio-gateway/gateway/clusterrooms"
	"github.com/rtcio-gateway/rtcio-gateway/gateway/metrics"
	"github.com/rtcio-gateway/rtcio-gateway/gateway/sfu"
	"github.com/rtcio-gateway/rtcio-gateway/gateway/signaling"
)

// clusterNode is this process's part in a cluster of gateways (redis.url
// set); nil on a single node.
type clusterNode struct {
	c     *cluster.Cluster
	rooms *clusterrooms.Rooms
	place *clusterrooms.Placement
	// leaseTTL is cluster.media_lease_ttl: after Redis came back empty, the
	// node waits this long before it reconciles (Rooms.MayReconcile).
	leaseTTL time.Duration
	// edgeLimit is cluster.max_room_peers_per_node (0: rooms do not
	// cascade).
	edgeLimit int
	// withdrawn: the node is shutting down and takes no new SFU rooms.
	withdrawn atomic.Bool
	cancel    context.CancelFunc
	wg        sync.WaitGroup
}

// openCluster connects to the cluster's Redis when redis.url is set. It does
// not wait for Redis: a node starts, and serves, while Redis is away.
func openCluster(cfg config.Config, log *slog.Logger) (*clusterNode, error) {
	if cfg.Redis.URL == "" {
		return nil, nil
	}
	id := cfg.Cluster.NodeID
	if id == "" {
		host, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("cluster.node_id is empty and the host name is unknown: %w", err)
		}
		id = host
	}
	c, err := cluster.Open(cluster.Config{
		URL:         cfg.Redis.URL,
		Password:    cfg.Redis.Password,
		NodeID:      id,
		Heartbeat:   cfg.Cluster.Heartbeat,
		NodeTTL:     cfg.Cluster.NodeTTL,
		OutboxSize:  cfg.Cluster.OutboxSize,
		InboxMaxLen: cfg.Cluster.InboxMaxLen,
		Logger:      log,
	})
	if err != nil {
		return nil, err
	}
	log.Info("cluster node", "node", id)
	return &clusterNode{c: c, rooms: clusterrooms.New(c, log)}, nil
}

// directory is the signaling server's Options.Directory: the cluster's, or
// nil for the single-node one.
func (n *clusterNode) directory() func(signaling.DirectoryEnv) (signaling.Directory, error) {
	if n == nil {
		return nil
	}
	return n.rooms.Bind
}

// placement is the SFU manager's Placement: nil (a nil interface) on a
// single node.
func (n *clusterNode) placement(cfg config.Cluster) sfu.Placement {
	if n == nil {
		return nil
	}
	n.leaseTTL = cfg.MediaLeaseTTL
	n.edgeLimit = cfg.MaxRoomPeersPerNode
	n.place = n.rooms.Placement(cfg.MediaLeaseTTL, cfg.Placement == config.PlacementLeastLoaded)
	return sfuPlacement{n.place}
}

// isLink is the SFU rooms' IsLink: with cascading on, another gateway
// peer of a room is a link (an edge, or the origin), whatever its node.
func (n *clusterNode) isLink(cfg config.Cluster) func(string) bool {
	if n == nil || cfg.MaxRoomPeersPerNode == 0 {
		return nil
	}
	return signaling.IsGatewayID
}

// sfuPlacement adapts the cluster's placement to sfu.Placement.
type sfuPlacement struct{ *clusterrooms.Placement }

func (p sfuPlacement) Claim(ctx context.Context, roomID string) (sfu.Hold, bool, error) {
	h, ok, err := p.Placement.Claim(ctx, roomID)
	if !ok {
		return nil, false, err
	}
	return h, true, nil
}

func (n *clusterNode) start(sig *signaling.Server, rooms *sfu.Manager) {
	if n == nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	if n.place != nil {
		// Rooms other nodes place here start under the lease this node
		// adopted; the manager's load is what least-loaded placement
		// compares.
		n.place.Serve(func(room string, h clusterrooms.MediaHold) { rooms.HostHeld(room, h) }, func() int {
			if n.withdrawn.Load() {
				return -1
			}
			return rooms.Load()
		})
	}
	if n.place != nil && n.edgeLimit > 0 {
		n.place.Cascade(n.edgeLimit, func(room, edge string, h clusterrooms.EdgeHold) { rooms.HostEdge(room, edge, h) }, rooms.Invite)
	}
	n.rooms.Start(ctx, sig)
	// Every heartbeat the node takes the SFU rooms its clients are in that
	// nobody hosts (their media node died or handed them over), and
	// closes the hosted rooms every client left.
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		tick := time.NewTicker(n.c.Heartbeat())
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				if n.rooms.MayReconcile(n.leaseTTL) {
					rooms.Reconcile(ctx)
					n.rooms.Reassign(ctx, rooms.Origins())
				}
			}
		}
	}()
}

// withdraw stops other nodes from placing SFU rooms here (least-loaded
// placement) from now on, rather than from the next heartbeat: the node is
// shutting down.
func (n *clusterNode) withdraw() {
	if n == nil || n.place == nil {
		return
	}
	n.withdrawn.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	// Redis away: the load key expires two heartbeats after the last one
	// anyway (and the heartbeat withdraws it too).
	_ = n.c.PublishLoad(ctx, -1)
}

// ready reports whether this node may take joins; always on a single node.
func (n *clusterNode) ready() bool { return n == nil || n.rooms.Ready() }

// stop ends the heartbeat and the inbox (the node's sockets have left by
// then) and closes the connections to Redis.
func (n *clusterNode) stop() {
	if n == nil {
		return
	}
	if n.cancel != nil {
		n.cancel()
		n.rooms.Wait()
		n.wg.Wait()
	}
	_ = n.c.Close()
}

// observe adds the node's cluster figures to a metrics snapshot.
func (n *clusterNode) observe(snap *metrics.Snapshot) {
	st := n.rooms.Stats()
	snap.Rooms += int64(st.LocalRooms)
	if n.rooms.Ready() {
		snap.ClusterRedisUp = 1
	}
	snap.ClusterInboxLagMaxMicro = int64(st.Bus.LagMaxMicros)
	snap.ClusterEnvelopesSent += st.Bus.Sent
	snap.ClusterEnvelopesRecv += st.Bus.Received
	snap.ClusterDuplicates += st.Bus.Duplicates
	snap.ClusterSequenceGaps += st.Bus.Gaps
	snap.ClusterEnvelopesDropped += st.SendFailed + st.Undeliverable
	snap.ClusterWriteRetries += st.Bus.Retries
	snap.ClusterReapedSockets += st.Reaped
	cs := n.rooms.Cascade()
	snap.ClusterEdgesPlaced += cs.EdgesPlaced
	snap.ClusterEdgeOverLimit += cs.OverLimit
	snap.ClusterEdgeClientsMoved += cs.ClientsMoved
}
