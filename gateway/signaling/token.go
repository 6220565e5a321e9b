package signaling

import (
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/rtcio-gateway/rtcio-gateway/internal/roompattern"
)

// tokenClaims are the claims the gateway reads from a client's auth.token.
type tokenClaims struct {
	// Rooms, when present, is the list of rooms the socket may join. An
	// entry ending in "*" matches every room with that prefix.
	Rooms []string `json:"rooms,omitempty"`
	// Name, when present, is the display name presence events use,
	// whatever join-room says.
	Name string `json:"name,omitempty"`
	jwt.RegisteredClaims
}

// grant is what a verified token allows a socket to do.
type grant struct {
	rooms []string // nil means any room
	name  string
	// subject is the token's "sub" claim: who the client is, the identity
	// a reconnecting publisher must share with its previous connection.
	subject string
	// expires is the token's "exp"; zero without auth. A token is checked
	// for the whole session, not only at connect: past it, every event is
	// refused and the socket is disconnected.
	expires time.Time
}

// expired reports whether the token behind the grant has run out at now.
func (g grant) expired(now time.Time) bool {
	return !g.expires.IsZero() && !now.Before(g.expires)
}

func (g grant) mayJoin(roomID string) bool {
	if g.rooms == nil {
		return true
	}
	return roompattern.Any(g.rooms, roomID)
}

// tokenVerifier checks HS256 JWTs signed with one shared secret.
type tokenVerifier struct {
	secret []byte
	parser *jwt.Parser
}

func newTokenVerifier(secret string) *tokenVerifier {
	return &tokenVerifier{
		secret: []byte(secret),
		parser: jwt.NewParser(jwt.WithValidMethods([]string{"HS256"}), jwt.WithExpirationRequired()),
	}
}

// verify checks token and returns what it grants.
func (v *tokenVerifier) verify(token string) (grant, error) {
	if token == "" {
		return grant{}, errors.New("auth.token is missing")
	}
	var claims tokenClaims
	_, err := v.parser.ParseWithClaims(token, &claims, func(*jwt.Token) (any, error) { return v.secret, nil })
	if err != nil {
		return grant{}, fmt.Errorf("auth.token rejected: %w", err)
	}
	g := grant{rooms: claims.Rooms, name: claims.Name, subject: claims.Subject}
	if claims.ExpiresAt != nil {
		g.expires = claims.ExpiresAt.Time
	}
	if claims.Rooms != nil && len(claims.Rooms) == 0 {
		g.rooms = []string{} // an explicit empty list allows no room
	}
	return g, nil
}
