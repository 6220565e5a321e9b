// Package signaling is the socket.io signaling server of rtcio-gateway: it
// speaks rtc.io-server's protocol (docs/PROTOCOL.md sections 1 and 2) and the
// reference room convention, so a browser running the plain rtc.io client
// cannot tell it from rtc.io-server, and hardens it: the server, not the
// client, says who sent a message; messages reach only room mates; payload
// size, room names, rooms per socket and message rate are bounded; origins
// and tokens are checked. Every refusal goes back to the client as a
// gateway-error event with a reason code, and is logged and counted.
package signaling

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zishang520/socket.io/servers/socket/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"
	"golang.org/x/time/rate"

	"github.com/rtcio-gateway/rtcio-gateway/internal/logthrottle"
)

// Options configure a Server. The zero value of a limit disables it.
type Options struct {
	Path            string
	MaxPayloadBytes int
	// MaxDescriptionBytes bounds the sdp of a session description in a
	// #rtcio:message on its own (see checkSize).
	MaxDescriptionBytes int
	MaxRoomNameLength   int
	MaxRoomsPerSocket   int
	MessagesPerSecond   float64
	MessageBurst        int
	EnforceSource       bool
	RequireSharedRoom   bool
	PingInterval        time.Duration
	PingTimeout         time.Duration
	// MaxQueuedPackets bounds the packets waiting to be written to one
	// socket: past half of it gateway-error replies are dropped (counted),
	// past it the socket is disconnected. WriteStallTimeout disconnects a
	// socket whose queue stays at least half full that long without the
	// transport taking anything.
	MaxQueuedPackets  int
	WriteStallTimeout time.Duration
	AllowedOrigins    []string
	// JWTSecret, when set, requires every client to present an HS256 token.
	JWTSecret string
	// Topology picks a room's policy when the room is created; nil means
	// mesh for every room.
	Topology func(roomID string) Topology
	// MayJoin, when set, can refuse a join (return a Refuse error) after
	// every check of the signaling server passed: it is where the media
	// side bounds what joins cost. It runs on the socket's event queue.
	MayJoin func(socketID, roomID string, topology Topology) error
	// OnJoin and OnLeave, when set, hear of every membership change after
	// the room was told. They run on the changing socket's event queue and
	// must not block.
	OnJoin  func(RoomEvent)
	OnLeave func(RoomEvent)
	// Directory, when set, builds where membership is kept and how events
	// reach sockets (a cluster's); nil keeps everything in this process.
	Directory func(DirectoryEnv) (Directory, error)
	Logger    *slog.Logger
}

// RoomEvent describes one membership change.
type RoomEvent struct {
	Room     string
	Topology Topology
	// Member is who joined or left.
	Member Member
	// Members is the room after the change, in join order.
	Members []Member
}

// EventHandler serves an application event that the signaling server does
// not know itself. It runs on the sender's serialized event queue.
type EventHandler func(c *Conn, args []any) error

// Server is the signaling server. Create it with New, mount Handler under
// Options.Path, and Close it when done.
type Server struct {
	opts     Options
	log      *slog.Logger
	io       *socket.Server
	handler  http.Handler
	dir      Directory
	tokens   *tokenVerifier
	origins  originPolicy
	draining atomic.Bool

	mu       sync.Mutex
	conns    map[string]*Conn
	handlers map[string]EventHandler
	// admitting holds, per socket being admitted, a channel closed once
	// the server library has finished connecting it (see admit).
	admitting map[string]chan struct{}

	refusals  refusalCounter
	originLog logthrottle.Throttle
	// watchQueues runs until stopWatch.
	watchCtx  context.Context
	stopWatch context.CancelFunc
	watchDone chan struct{}
	// roomBreaking counts refused session descriptions.
	roomBreaking atomic.Uint64
}

// Conn is one connected socket as the signaling server sees it.
type Conn struct {
	srv     *Server
	sock    *socket.Socket // nil for a local participant
	local   *LocalConn     // nil for a network client
	id      string
	grant   grant
	role    Role
	limiter *rate.Limiter
	log     *slog.Logger
	// lastRefusalLog throttles refusal log lines: a flooding client must
	// not flood the log too. refusalMu guards it and the fields below: a
	// local participant's events run on its callers' goroutines.
	refusalMu      sync.Mutex
	lastRefusalLog time.Time
	suppressedLogs int
	lastRateReply  time.Time
	// out bounds what waits to be written to the socket; expiry
	// disconnects it when its token runs out.
	out        *outQueue
	expiry     *time.Timer
	expireOnce sync.Once
}

// ID is the socket id.
func (c *Conn) ID() string { return c.id }

// Emit sends an event to this socket.
func (c *Conn) Emit(event string, args ...any) error {
	if c.local != nil {
		c.local.push(event, args)
		return nil
	}
	return c.sock.Emit(event, args...)
}

// New builds a signaling server.
func New(opts Options) (*Server, error) {
	if opts.Path == "" {
		opts.Path = "/socket.io/"
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Topology == nil {
		opts.Topology = func(string) Topology { return Mesh{} }
	}
	s := &Server{
		opts:      opts,
		log:       opts.Logger,
		origins:   newOriginPolicy(opts.AllowedOrigins),
		conns:     make(map[string]*Conn),
		handlers:  make(map[string]EventHandler),
		admitting: make(map[string]chan struct{}),
	}
	if opts.JWTSecret != "" {
		s.tokens = newTokenVerifier(opts.JWTSecret)
	}
	env := DirectoryEnv{Topology: opts.Topology, Emit: s.emitLocal, Logger: opts.Logger}
	if opts.Directory == nil {
		s.dir = newLocalDirectory(env)
	} else {
		dir, err := opts.Directory(env)
		if err != nil {
			return nil, fmt.Errorf("signaling directory: %w", err)
		}
		s.dir = dir
	}

	so := socket.DefaultServerOptions()
	so.SetServeClient(false)
	so.SetParser(newDedupParser())
	so.SetPath(strings.TrimSuffix(opts.Path, "/"))
	if opts.PingInterval > 0 {
		so.SetPingInterval(opts.PingInterval)
	}
	if opts.PingTimeout > 0 {
		so.SetPingTimeout(opts.PingTimeout)
	}
	// The transport bound sits well above the per-event bound so that an
	// oversized event is refused with a reason instead of a dropped
	// connection; a polling batch may hold several events.
	transportLimit := int64(1 << 20)
	if lim := int64(opts.MaxPayloadBytes) * 4; lim > transportLimit {
		transportLimit = lim
	}
	if lim := int64(opts.MaxDescriptionBytes+opts.MaxPayloadBytes) * 2; lim > transportLimit {
		transportLimit = lim
	}
	so.SetMaxHttpBufferSize(transportLimit)
	so.SetCors(&types.Cors{
		Origin:      func(origin string) bool { return s.origins.allowed(origin, "") },
		Credentials: true,
	})
	so.SetAllowRequest(func(ctx *types.HttpContext) error {
		r := ctx.Request()
		origin := r.Header.Get("Origin")
		if !s.origins.allowed(origin, r.Host) {
			s.refusals.add(ReasonOriginNotAllowed)
			s.log.Warn("signaling connection refused", "reason", ReasonOriginNotAllowed, "origin", origin, "remote", r.RemoteAddr)
			return fmt.Errorf("%s: origin %q is not allowed", ReasonOriginNotAllowed, origin)
		}
		return nil
	})

	s.watchCtx, s.stopWatch = context.WithCancel(context.Background())
	s.watchDone = make(chan struct{})
	go s.watchQueues()

	s.io = socket.NewServer(nil, so)
	s.io.Use(s.admit)
	s.io.On("connection", func(args ...any) {
		if sock, ok := args[0].(*socket.Socket); ok {
			s.connected(sock)
		}
	})
	s.handler = s.io.ServeHandler(so)
	return s, nil
}

// Handler serves the socket.io transports; mount it under Options.Path. A
// request from a page whose origin is not allowed is answered 403 with
// code origin-not-allowed before it reaches the server library (which
// would answer 400 for a WebSocket).
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if !s.origins.allowed(origin, r.Host) {
			s.refusals.add(ReasonOriginNotAllowed)
			s.originLog.Do(func(suppressed int) {
				s.log.Warn("signaling connection refused", "reason", ReasonOriginNotAllowed, "origin", origin, "remote", r.RemoteAddr, "suppressed", suppressed)
			})
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden)
			_ = json.NewEncoder(w).Encode(map[string]any{"code": ReasonOriginNotAllowed, "message": fmt.Sprintf("origin %q is not allowed", origin)})
			return
		}
		s.handler.ServeHTTP(w, r)
	})
}

// Authenticate checks a client token the way a connecting socket's is
// checked, for requests outside socket.io (TURN credentials over HTTP).
// Without auth.jwt_secret every caller passes, anonymous.
func (s *Server) Authenticate(token string) (Identity, error) {
	if s.tokens == nil {
		return Identity{}, nil
	}
	g, err := s.tokens.verify(token)
	if err != nil {
		return Identity{}, err
	}
	return Identity{Key: "sub:" + g.subject, Authenticated: true}, nil
}

// AuthRequired reports whether clients must present a token.
func (s *Server) AuthRequired() bool { return s.tokens != nil }

// Handle registers a handler for an application event (for example a
// server-side command). It must be called before clients connect.
func (s *Server) Handle(event string, h EventHandler) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.handlers[event] = h
}

// Connections is the number of connected network clients.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.conns {
		if c.sock != nil {
			n++
		}
	}
	return n
}

// Refusals returns how many requests were refused, by reason.
func (s *Server) Refusals() map[Reason]uint64 { return s.refusals.snapshot() }

// Drain refuses new connections and joins from now on.
func (s *Server) Drain() { s.draining.Store(true) }

// connectSettle bounds how long admit holds a client's packet reader while
// the library finishes connecting the socket.
const connectSettle = 5 * time.Second

// admit is the connection middleware: it refuses connections while
// draining and without a valid token, and sets up an admitted socket.
//
// It works around two races in the server library (v3.0.6), which sends
// the client its CONNECT and only then, on the socket's task queue,
// records the socket in its client and runs "connection" handlers, while
// the client's next packets are decoded on the reader goroutine that runs
// this middleware:
//   - an event arriving before the socket is recorded makes the library
//     close the whole connection ("invalid state"): a client that emits
//     join-room on connect, as rtc.io apps do, would be dropped now and
//     then. So admit holds the reader until "connection" has run.
//   - an event arriving before handlers are registered would be lost, so
//     the socket's handlers are registered here, before the CONNECT.
func (s *Server) admit(sock *socket.Socket, next func(*socket.ExtendedError)) {
	if s.draining.Load() {
		s.refusals.add(ReasonShuttingDown)
		next(socket.NewExtendedError("server is shutting down", map[string]any{"code": ReasonShuttingDown}))
		return
	}
	var g grant
	if s.tokens != nil {
		token, _ := sock.Handshake().Auth["token"].(string)
		var err error
		if g, err = s.tokens.verify(token); err != nil {
			s.refusals.add(ReasonUnauthorized)
			s.log.Warn("signaling connection refused", "reason", ReasonUnauthorized, "error", err, "remote", sock.Handshake().Address)
			next(socket.NewExtendedError("unauthorized", map[string]any{"code": ReasonUnauthorized, "message": err.Error()}))
			return
		}
	}
	s.setUp(sock, g)
	id := string(sock.Id())
	settled := make(chan struct{})
	s.mu.Lock()
	s.admitting[id] = settled
	s.mu.Unlock()
	next(nil)
	select {
	case <-settled:
	case <-time.After(connectSettle):
		// The connection closed before the library finished connecting it.
	}
	s.mu.Lock()
	delete(s.admitting, id)
	s.mu.Unlock()
}

// connected runs when the library has finished connecting a socket.
func (s *Server) connected(sock *socket.Socket) {
	s.mu.Lock()
	settled := s.admitting[string(sock.Id())]
	s.mu.Unlock()
	if settled != nil {
		close(settled)
	}
}

func (s *Server) setUp(sock *socket.Socket, g grant) {
	id := string(sock.Id())
	c := &Conn{
		srv:   s,
		sock:  sock,
		id:    id,
		role:  RoleClient,
		grant: g,
		log:   s.log.With("socket", id),
	}
	if s.opts.MessagesPerSecond > 0 {
		c.limiter = rate.NewLimiter(rate.Limit(s.opts.MessagesPerSecond), max(s.opts.MessageBurst, 1))
	}
	c.out = newOutQueue(s.opts.MaxQueuedPackets, s.opts.WriteStallTimeout)
	c.out.watch(sock, c.dropSlow)
	if !g.expires.IsZero() {
		c.expiry = time.AfterFunc(time.Until(g.expires), c.expire)
	}
	s.mu.Lock()
	s.conns[id] = c
	s.mu.Unlock()
	s.connect(id, c.role)
	c.log.Debug("socket connected", "remote", sock.Handshake().Address)

	sock.OnAny(func(args ...any) { c.onEvent(args) })
	sock.On("disconnecting", func(args ...any) {
		reason, _ := firstString(args)
		s.onDisconnecting(c, reason)
	})
	sock.On("disconnect", func(...any) {
		if c.expiry != nil {
			c.expiry.Stop()
		}
		s.mu.Lock()
		delete(s.conns, id)
		s.mu.Unlock()
	})
}

// EmitTo sends a server event to the sockets with these ids, wherever
// they are connected; ids that are not connected are skipped (the media
// side telling clients about their media: a gateway-error they caused
// there, a failed recording).
func (s *Server) EmitTo(ids []string, event string, args ...any) { s.dir.SendIDs(ids, event, args...) }

// emitLocal emits an event to the sockets of this process with these ids.
func (s *Server) emitLocal(ids []string, event string, args []any) {
	if len(ids) == 0 {
		return
	}
	rooms := make([]socket.Room, 0, len(ids))
	for _, id := range ids {
		if l := s.localConn(id); l != nil {
			l.push(event, args)
			continue
		}
		rooms = append(rooms, socket.Room(id))
	}
	if len(rooms) == 0 {
		return
	}
	if err := s.io.To(rooms...).Emit(event, args...); err != nil {
		s.log.Warn("emit failed", "event", event, "error", err)
	}
}

// localConn returns the local participant with that id, if there is one.
func (s *Server) localConn(id string) *LocalConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.conns[id]; c != nil {
		return c.local
	}
	return nil
}

func ids(members []Member, keep func(Member) bool) []string {
	out := make([]string, 0, len(members))
	for _, m := range members {
		if keep == nil || keep(m) {
			out = append(out, m.ID)
		}
	}
	return out
}
