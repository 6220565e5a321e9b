package gateway

import (
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/rtcio-gateway/rtcio-gateway/gateway/signaling"
)

// The admin API lives under /admin/v1, speaks JSON and takes a bearer token
// from admin.token. While no token is configured it does not exist (404), so
// an operator who never set one exposes nothing.

func (s *Server) mountAdmin() {
	if s.cfg.Admin.Token == "" {
		return
	}
	s.mux.Handle("GET /admin/v1/rooms", s.adminOnly(s.adminRooms))
	s.mux.Handle("GET /admin/v1/rooms/{room}", s.adminOnly(s.adminRoom))
	s.mux.Handle("DELETE /admin/v1/sockets/{id}", s.adminOnly(s.adminKick))
	s.mux.Handle("GET /admin/v1/rooms/{room}/streams", s.adminOnly(s.adminStreams))
	s.mux.Handle("POST /admin/v1/rooms/{room}/streams/{stream}/untrack", s.adminOnly(s.adminUntrack))
	s.mux.Handle("POST /admin/v1/rooms/{room}/recording/{action}", s.adminOnly(s.adminRecording))
	s.mux.Handle("GET /admin/v1/rooms/{room}/recordings", s.adminOnly(s.adminRecordings))
	// The tree answers only for SFU rooms, by the same rules the signaling
	// applies; New already built them once from this configuration, so
	// this cannot fail.
	topologies, err := newTopologyResolver(s.cfg.Rooms)
	if err != nil {
		s.log.Error("admin room tree not served", "error", err)
		return
	}
	isSFU := func(room string) bool { _, ok := topologies.resolve(room).(signaling.SFU); return ok }
	s.mux.Handle("GET /admin/v1/rooms/{room}/tree", s.adminOnly(s.adminTree(isSFU, nodeName(s.cfg.Cluster.NodeID))))
}

func (s *Server) adminStreams(w http.ResponseWriter, r *http.Request) {
	room := s.sfu.Room(r.PathValue("room"))
	if room == nil {
		writeJSON(w, http.StatusNotFound, apiError{Code: "not-found", Message: "no SFU room " + r.PathValue("room")})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"streams": room.Streams()})
}

func (s *Server) adminUntrack(w http.ResponseWriter, r *http.Request) {
	room := s.sfu.Room(r.PathValue("room"))
	if room == nil {
		writeJSON(w, http.StatusNotFound, apiError{Code: "not-found", Message: "no SFU room " + r.PathValue("room")})
		return
	}
	found, err := room.Untrack(r.PathValue("stream"), "")
	if err != nil || !found {
		writeJSON(w, http.StatusNotFound, apiError{Code: "not-found", Message: "no relayed stream " + r.PathValue("stream")})
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) adminOnly(next http.HandlerFunc) http.Handler {
	want := []byte("Bearer " + s.cfg.Admin.Token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := []byte(r.Header.Get("Authorization"))
		if subtle.ConstantTimeCompare(got, want) != 1 {
			s.adminDenied.Do(func(suppressed int) {
				s.log.Warn("admin request refused", "reason", "unauthorized", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr, "suppressed", suppressed)
			})
			w.Header().Set("WWW-Authenticate", `Bearer realm="rtcio-gateway admin"`)
			writeJSON(w, http.StatusUnauthorized, apiError{Code: "unauthorized", Message: "a valid bearer token is required"})
			return
		}
		next(w, r)
	})
}

type apiError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (s *Server) adminRooms(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"rooms": s.signaling.Rooms()})
}

func (s *Server) adminRoom(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("room")
	for _, room := range s.signaling.Rooms() {
		if room.ID == id {
			writeJSON(w, http.StatusOK, room)
			return
		}
	}
	writeJSON(w, http.StatusNotFound, apiError{Code: "not-found", Message: "no room " + strings.TrimSpace(id)})
}

func (s *Server) adminKick(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	found, err := s.signaling.Kick(id)
	switch {
	case !found:
		writeJSON(w, http.StatusNotFound, apiError{Code: "not-found", Message: "no socket " + id})
		return
	case err != nil:
		writeJSON(w, http.StatusConflict, apiError{Code: "not-kickable", Message: err.Error()})
		return
	}
	s.log.Info("admin kicked socket", "socket", id)
	w.WriteHeader(http.StatusNoContent)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
