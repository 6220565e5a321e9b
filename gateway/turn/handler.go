package turn

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"time"

	"github.com/rtcio-gateway/rtcio-gateway/internal/logthrottle"
)

// Response is what Handler serves: the credentials, and the same as a
// ready-made iceServers list for the browser.
type Response struct {
	Credentials
	ICEServers []ICEServer `json:"iceServers"`
}

// Handler serves fresh credentials as JSON to GET requests:
//
//	{"username": "1700021600:alice", "credential": "...", "ttl": 21600,
//	 "expires_at": "...", "uris": [...],
//	 "iceServers": [{"urls": [...], "username": "...", "credential": "..."}]}
//
// userOf names the user of a request, typically from the same token that
// authenticates signaling; an error from it is answered 401 and logged.
// With a nil userOf every request gets a random label: then the endpoint
// must be protected by whatever mounts it, since it hands out relay access.
func (i *Issuer) Handler(userOf func(*http.Request) (string, error), log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", "turn")
	var refusedLog logthrottle.Throttle
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", http.MethodGet)
			writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "use GET"})
			return
		}
		user := ""
		if userOf != nil {
			u, err := userOf(r)
			if err != nil {
				refusedLog.Do(func(suppressed int) {
					log.Info("TURN credentials refused", "remote", r.RemoteAddr, "err", err, "suppressed", suppressed)
				})
				writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "unauthorized"})
				return
			}
			user = u
		}
		c := i.Issue(user, time.Now())
		writeJSON(w, http.StatusOK, Response{Credentials: c, ICEServers: []ICEServer{c.ICEServer()}})
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	// A credential cached by a proxy or the browser would be served after it
	// expired, or to someone else.
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
