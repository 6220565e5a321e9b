package gateway

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/rtcio-gateway/rtcio-gateway/config"
	"github.com/rtcio-gateway/rtcio-gateway/gateway/signaling"
	"github.com/rtcio-gateway/rtcio-gateway/gateway/turn"
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
