package gateway

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/rtcio-gateway/rtcio-gateway/config"
	"github.com/rtcio-gateway/rtcio-gateway/gateway/demo"
	"github.com/rtcio-gateway/rtcio-gateway/gateway/sfu"
	"github.com/rtcio-gateway/rtcio-gateway/gateway/signaling"
	"github.com/rtcio-gateway/rtcio-gateway/gateway/turn"
	"github.com/rtcio-gateway/rtcio-gateway/gateway/webhook"
)

// EventTURNCredentials is the server event by which a client asks for TURN
// credentials; it is answered with the same event name carrying
// {iceServers: [...], ttl, expiresAt}.
const EventTURNCredentials = "turn-credentials"

// TURNPath serves the same credentials over HTTP (GET), for pages that
// want them before connecting.
const TURNPath = "/turn-credentials"

// mountTURN wires short-lived TURN credentials: an HTTP endpoint and a
// server event. Without auth.jwt_secret anyone who can reach the gateway
// can get them, exactly as anyone who can connect could relay through a
// mesh's TURN server; with it, the HTTP endpoint wants the same token as
// signaling (Authorization: Bearer, or ?token=), and the server event is
// only answered on a socket whose token has not expired (the signaling
// server checks that on every event).
func (s *Server) mountTURN(cfg config.TURN) error {
	if cfg.Secret == "" {
		return nil
	}
	issuer, err := turn.New(turn.Config{Secret: cfg.Secret, TTL: cfg.TTL, URIs: cfg.URIs})
	if err != nil {
		return fmt.Errorf("turn: %w", err)
	}
	s.mux.Handle("GET "+TURNPath, issuer.Handler(func(r *http.Request) (string, error) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		if !s.signaling.AuthRequired() {
			return "http-" + host, nil
		}
		token := r.URL.Query().Get("token")
		if h, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
			token = h
		}
		id, err := s.signaling.Authenticate(token)
		if err != nil {
			return "", err
		}
		return strings.TrimPrefix(id.Key, "sub:"), nil
	}, s.log))
	s.signaling.Handle(EventTURNCredentials, func(c *signaling.Conn, _ []any) error {
		cred := issuer.Issue(c.ID(), time.Now())
		return c.Emit(EventTURNCredentials, map[string]any{
			"iceServers": []turn.ICEServer{cred.ICEServer()},
			"ttl":        cred.TTL,
			"expiresAt":  cred.ExpiresAt.Unix(),
		})
	})
	return nil
}

// mountDemo serves the demo room page at "/".
func (s *Server) mountDemo(cfg config.Config) error {
	if !cfg.Demo.Enabled {
		return nil
	}
	opts := demo.Options{ClientURL: cfg.Demo.ClientURL, SignalingPath: cfg.Signaling.Path}
	if cfg.TURN.Secret != "" {
		opts.ICEServersURL = TURNPath
	}
	h, err := demo.Handler(opts)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	s.mux.Handle("/", h)
	return nil
}

// webhooks turns room, participant and stream changes into webhook events.
type webhooks struct {
	n *webhook.Notifier
}

func newWebhooks(ctx context.Context, cfg config.Webhooks, s *Server) (*webhooks, error) {
	if len(cfg.URLs) == 0 {
		return nil, nil
	}
	n, err := webhook.New(ctx, webhook.Config{URLs: cfg.URLs, Secret: cfg.Secret, Logger: s.log.With("component", "webhook")})
	if err != nil {
		return nil, fmt.Errorf("webhooks: %w", err)
	}
	return &webhooks{n: n}, nil
}

func (w *webhooks) notify(ev webhook.Event) {
	if w == nil {
		return
	}
	_ = w.n.Notify(ev)
}

func (w *webhooks) joined(ev signaling.RoomEvent) {
	if w == nil || ev.Member.Role != signaling.RoleClient {
		return
	}
	if clients(ev.Members) == 1 {
		w.notify(webhook.Event{Type: webhook.RoomStarted, Room: ev.Room})
	}
	w.notify(webhook.Event{Type: webhook.ParticipantJoined, Room: ev.Room,
		Participant: &webhook.Participant{SocketID: ev.Member.ID, Name: ev.Member.Name}})
}

func (w *webhooks) left(ev signaling.RoomEvent) {
	if w == nil || ev.Member.Role != signaling.RoleClient {
		return
	}
	w.notify(webhook.Event{Type: webhook.ParticipantLeft, Room: ev.Room,
		Participant: &webhook.Participant{SocketID: ev.Member.ID, Name: ev.Member.Name}})
	if clients(ev.Members) == 0 {
		w.notify(webhook.Event{Type: webhook.RoomFinished, Room: ev.Room})
	}
}

func (w *webhooks) stream(n sfu.Notice) {
	if w == nil {
		return
	}
	var typ webhook.EventType
	switch n.Kind {
	case sfu.StreamPublished:
		typ = webhook.StreamPublished
	case sfu.StreamUnpublished:
		typ = webhook.StreamUnpublished
	default:
		return
	}
	ev := webhook.Event{Type: typ, Room: n.Room,
		Participant: &webhook.Participant{SocketID: n.Publisher},
		Stream:      &webhook.Stream{ID: n.MediaStream}}
	if len(n.Events) > 0 {
		ev.Stream.Event = n.Events[0]
	}
	w.notify(ev)
}

func (w *webhooks) close(ctx context.Context) {
	if w != nil {
		_ = w.n.Close(ctx)
	}
}

func clients(members []signaling.Member) int {
	n := 0
	for _, m := range members {
		if m.Role == signaling.RoleClient {
			n++
		}
	}
	return n
}
