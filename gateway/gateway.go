// Package gateway is the rtcio-gateway server: it serves the rtc.io
// signaling protocol over socket.io, the admin API and the health probes on
// one HTTP listener, and wires rooms to their topology policy.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/rtcio-gateway/rtcio-gateway/config"
	"github.com/rtcio-gateway/rtcio-gateway/gateway/metrics"
	"github.com/rtcio-gateway/rtcio-gateway/gateway/sfu"
	"github.com/rtcio-gateway/rtcio-gateway/gateway/signaling"
	"github.com/rtcio-gateway/rtcio-gateway/internal/logthrottle"
	"github.com/rtcio-gateway/rtcio-gateway/internal/roompattern"
	"github.com/rtcio-gateway/rtcio-gateway/recorder"
)

// Server is one gateway process's server.
type Server struct {
	cfg       config.Config
	log       *slog.Logger
	signaling *signaling.Server
	media     *mediaStack
	sfu       *sfu.Manager
	metrics   *metrics.Metrics
	webhooks  *webhooks
	recorder  *recorder.Recorder
	mux       *http.ServeMux
	ready     atomic.Bool
	// recordingAskers are the clients told when a recording fails.
	recordingAskers askers
	// listener is the client-facing listener, bounded (see Serve).
	listener *limitListener
	// adminDenied throttles the log of refused admin requests.
	adminDenied logthrottle.Throttle
	// cluster is this node's part in a cluster; nil on a single node.
	cluster *clusterNode
}

// Option adjusts what New builds beyond the configuration.
type Option func(*options)

type options struct {
	notify []func(sfu.Notice)
}

// WithStreamNotices registers f for every stream decision of SFU rooms.
func WithStreamNotices(f func(sfu.Notice)) Option {
	return func(o *options) { o.notify = append(o.notify, f) }
}

// New builds a server from a validated configuration.
func New(cfg config.Config, log *slog.Logger, opts ...Option) (*Server, error) {
	if log == nil {
		log = slog.Default()
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	topologies, err := newTopologyResolver(cfg.Rooms)
	if err != nil {
		return nil, err
	}
	media, err := newMediaStack(cfg.Media, log)
	if err != nil {
		return nil, err
	}
	reg, err := metrics.New(metrics.Options{Logger: log})
	if err != nil {
		media.close()
		return nil, err
	}
	s := &Server{cfg: cfg, log: log, media: media, metrics: reg, mux: http.NewServeMux()}
	hooks, err := newWebhooks(context.Background(), cfg.Webhooks, s)
	if err != nil {
		media.close()
		return nil, err
	}
	s.webhooks = hooks
	o.notify = append(o.notify, hooks.stream, hooks.recordingFinished, s.recordingFailed)
	rec, err := NewRecorder(cfg.Recording, log)
	if err != nil {
		media.close()
		return nil, err
	}
	s.recorder = rec
	node, err := openCluster(cfg, log)
	if err != nil {
		media.close()
		return nil, fmt.Errorf("cluster: %w", err)
	}
	s.cluster = node
	rooms := sfu.NewManager(sfu.Config{
		API:           media.api,
		ICEServers:    iceServers(cfg.Media.ICEServers),
		Binder:        media.binder,
		SSRCGuard:     media.guard,
		Channels:      cfg.Media.RelayChannels,
		MetadataWait:  cfg.Media.MetadataWait,
		AdoptGrace:    cfg.Media.AdoptGrace,
		Observer:      mediaMetrics{reg},
		Adapt:         adaptConfig(cfg.Adapt),
		Speaker:       speakerConfig(cfg.Adapt),
		AdaptObserver: mediaMetrics{reg},
		Dropped:       func(reason string) { reg.Dropped(reason).Inc() },

		MaxPeerConnections: cfg.Media.MaxPeerConnections,
		MaxPeersPerRoom:    cfg.Media.MaxPeersPerRoom,
		PeerConnectTimeout: cfg.Media.PeerConnectTimeout,
		RelayRate:          cfg.Media.RelayMessagesPerSecond,
		RelayBurst:         cfg.Media.RelayMessageBurst,
		Recorder:           rec,
		RecordRoom:         recordPolicy(cfg.Recording),
		Notify: func(n sfu.Notice) {
			for _, f := range o.notify {
				f(n)
			}
		},
		Tell: func(id, event string, payload any) {
			if s.signaling != nil {
				s.signaling.EmitTo([]string{id}, event, payload)
			}
		},
		Logger:    log.With("component", "sfu"),
		Placement: node.placement(cfg.Cluster),
		IsLink:    node.isLink(cfg.Cluster),
	})
	sig, err := signaling.New(signaling.Options{
		Path:                cfg.Signaling.Path,
		MaxPayloadBytes:     cfg.Signaling.MaxPayloadBytes,
		MaxDescriptionBytes: cfg.Signaling.MaxDescriptionBytes,
		MaxRoomNameLength:   cfg.Signaling.MaxRoomNameLength,
		MaxRoomsPerSocket:   cfg.Signaling.MaxRoomsPerSocket,
		MessagesPerSecond:   cfg.Signaling.MessagesPerSecond,
		MessageBurst:        cfg.Signaling.MessageBurst,
		EnforceSource:       cfg.Signaling.EnforceSource,
		RequireSharedRoom:   cfg.Signaling.RequireSharedRoom,
		PingInterval:        cfg.Signaling.PingInterval,
		PingTimeout:         cfg.Signaling.PingTimeout,
		MaxQueuedPackets:    cfg.Signaling.MaxQueuedPackets,
		WriteStallTimeout:   cfg.Signaling.WriteStallTimeout,
		MayJoin:             rooms.MayJoin,
		AllowedOrigins:      cfg.CORS.AllowedOrigins,
		JWTSecret:           cfg.Auth.JWTSecret,
		Topology:            topologies.resolve,
		OnJoin: func(ev signaling.RoomEvent) {
			rooms.OnJoin(ev)
			hooks.joined(ev)
		},
		OnLeave: func(ev signaling.RoomEvent) {
			rooms.OnLeave(ev)
			hooks.left(ev)
			if clients(ev.Members) == 0 {
				s.recordingAskers.forget(ev.Room)
			}
		},
		Directory: node.directory(),
		Logger:    log.With("component", "signaling"),
	})
	if err != nil {
		media.close()
		node.stop()
		return nil, fmt.Errorf("signaling server: %w", err)
	}
	rooms.Attach(sig)
	sig.HandleRoom(EventUntrackStream, func(c *signaling.Conn, roomID string, args []any) error {
		return untrackByPublisher(rooms, c, roomID, args)
	})
	sig.HandleRoom(EventRecording, s.recordingEvent)
	s.signaling, s.sfu = sig, rooms
	reg.AddSource(s.stateSource)
	s.mountMetrics()
	s.mux.Handle(cfg.Signaling.Path, sig.Handler())
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	s.mux.HandleFunc("GET /readyz", s.readyz)
	s.mountAdmin()
	if err := s.mountTURN(cfg.TURN); err != nil {
		media.close()
		node.stop()
		return nil, err
	}
	if err := s.mountDemo(cfg); err != nil {
		media.close()
		node.stop()
		return nil, err
	}
	return s, nil
}

// Handler is the whole HTTP surface: signaling, admin API, probes.
func (s *Server) Handler() http.Handler { return s.mux }

// Handle adds a route to the server's HTTP surface (for example a page
// served from the gateway's own origin).
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// SFU is the media side of SFU rooms.
func (s *Server) SFU() *sfu.Manager { return s.sfu }

// Signaling is the socket.io signaling server.
func (s *Server) Signaling() *signaling.Server { return s.signaling }

func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	if !s.ready.Load() || !s.cluster.ready() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unready"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// Serve serves on ln until ctx is cancelled, then shuts down within the
// configured timeout: readiness turns unready first, new connections and
// joins are refused, every socket is told and closed, and in-flight HTTP
// requests get the rest of the bound.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{
		Handler:           s.mux,
		ReadHeaderTimeout: s.cfg.HTTP.ReadHeaderTimeout,
		IdleTimeout:       s.cfg.HTTP.IdleTimeout,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	maxConns := effectiveMaxConnections(s.cfg.HTTP.MaxConnections)
	s.listener = newLimitListener(ln, maxConns)
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(s.listener) }()
	if addr := s.cfg.Metrics.Listen; addr != "" {
		stop, err := s.serveMetrics(addr)
		if err != nil {
			s.log.Error("metrics listener not served", "addr", addr, "error", err)
		} else {
			defer stop()
		}
	}
	if addr := s.cfg.Debug.PprofListen; addr != "" {
		stop, err := servePprof(addr, s.log)
		if err != nil {
			s.log.Error("pprof not served", "addr", addr, "error", err)
		} else {
			defer stop()
		}
	}
	s.cluster.start(s.signaling, s.sfu)
	s.ready.Store(true)
	s.log.Info("serving", "addr", ln.Addr().String(), "signaling_path", s.cfg.Signaling.Path, "max_connections", maxConns)

	select {
	case err := <-errc:
		s.ready.Store(false)
		s.cluster.stop()
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	return s.shutdown(hs, errc)
}

func (s *Server) shutdown(hs *http.Server, errc <-chan error) error {
	start := time.Now()
	s.ready.Store(false)
	s.log.Info("shutting down", "timeout", s.cfg.Shutdown.Timeout)
	// No more SFU rooms placed here (least-loaded placement).
	s.cluster.withdraw()
	if d := s.cfg.Shutdown.ReadinessDelay; d > 0 {
		// Unready but still serving, so a load balancer takes this
		// instance out before its clients are told to leave.
		time.Sleep(d)
	}
	s.signaling.Drain()

	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.Shutdown.Timeout)
	defer cancel()
	closed := make(chan struct{})
	go func() {
		// Clients first: they are told and disconnected at once, whatever
		// the rooms' media still has to tear down.
		s.signaling.Close()
		// Rooms close before the node leaves Redis: each frees its media
		// lease once its gateway peer is gone, and a node with clients in
		// the room takes it over (handover).
		s.sfu.Close()
		// Every socket left its rooms in Redis; the node can stop.
		s.cluster.stop()
		if s.recorder != nil {
			// Every room is closed, so every recording has stopped; this
			// waits for their files and manifests to be complete.
			s.recorder.Close()
		}
		s.media.close()
		s.webhooks.close(ctx)
		close(closed)
	}()
	select {
	case <-closed:
	case <-ctx.Done():
		s.log.Warn("signaling did not close within the shutdown timeout")
	}
	err := hs.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		err = hs.Close()
	}
	if serveErr := <-errc; serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return fmt.Errorf("http server: %w", serveErr)
	}
	s.log.Info("stopped", "took", time.Since(start).Round(time.Millisecond))
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// EventUntrackStream is the server event by which a publisher retires one
// of its streams for clients that join later, in an SFU room: the same as
// its own untrackStream, for applications that manage streams from the
// server side. Payload {roomId, streamId}; answered with stream-untracked
// {roomId, streamId}, or a gateway-error.
const EventUntrackStream = "untrack-stream"

func untrackByPublisher(rooms *sfu.Manager, c *signaling.Conn, roomID string, args []any) error {
	_, v, err := signaling.DecodeRoomRequest(args, "streamId")
	if err != nil {
		return err
	}
	room := rooms.Room(roomID)
	if room == nil {
		return signaling.Refuse(signaling.ReasonNotFound, fmt.Sprintf("no SFU room %q", roomID))
	}
	found, err := room.Untrack(v["streamId"], c.ID())
	switch {
	case !found:
		return signaling.Refuse(signaling.ReasonNotFound, fmt.Sprintf("no stream %q in room %q", v["streamId"], roomID))
	case err != nil:
		return signaling.Refuse(signaling.ReasonForbidden, err.Error())
	}
	return c.Emit("stream-untracked", map[string]any{"roomId": roomID, "streamId": v["streamId"]})
}

// topologyResolver picks a room's topology from the configured rules.
type topologyResolver struct {
	fallback signaling.Topology
	rules    []topologyRule
}

type topologyRule struct {
	pattern  string
	topology signaling.Topology
}

func newTopologyResolver(cfg config.Rooms) (*topologyResolver, error) {
	fallback, err := topologyByName(cfg.DefaultTopology)
	if err != nil {
		return nil, fmt.Errorf("rooms.default_topology: %w", err)
	}
	r := &topologyResolver{fallback: fallback}
	for i, rule := range cfg.Topologies {
		t, err := topologyByName(rule.Topology)
		if err != nil {
			return nil, fmt.Errorf("rooms.topologies[%d].topology: %w", i, err)
		}
		r.rules = append(r.rules, topologyRule{pattern: rule.Pattern, topology: t})
	}
	return r, nil
}

func (r *topologyResolver) resolve(roomID string) signaling.Topology {
	for _, rule := range r.rules {
		if roompattern.Match(rule.pattern, roomID) {
			return rule.topology
		}
	}
	return r.fallback
}

func topologyByName(name string) (signaling.Topology, error) {
	switch name {
	case "mesh", "":
		return signaling.Mesh{}, nil
	case "sfu":
		return signaling.SFU{}, nil
	}
	return nil, fmt.Errorf("unknown topology %q", name)
}

// Metrics is the server's metrics registry.
func (s *Server) Metrics() *metrics.Metrics { return s.metrics }
