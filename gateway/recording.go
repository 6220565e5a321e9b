package gateway

import (
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"

	"github.com/rtcio-gateway/rtcio-gateway/config"
	"github.com/rtcio-gateway/rtcio-gateway/gateway/sfu"
	"github.com/rtcio-gateway/rtcio-gateway/gateway/signaling"
	"github.com/rtcio-gateway/rtcio-gateway/gateway/webhook"
	"github.com/rtcio-gateway/rtcio-gateway/internal/roompattern"
	"github.com/rtcio-gateway/rtcio-gateway/recorder"
)

// EventRecording is the server event that starts or stops recording a
// room (SFU or mesh) or one of its streams: {roomId, action: "start"|"stop",
// streamId?}. It is answered with recording {roomId, action, streamId,
// count}, or a gateway-error. Only a member of the room whose token still
// allows the room may send it (checked on every event, see
// signaling.Server.HandleRoom); restrict who joins with tokens.
const EventRecording = "recording"

// EventRecordingFailed tells clients that a recording of their room could
// not start or stopped on an error: {roomId, streamId, recordingId, reason}
// with reason "disk-full", "permission" or "error" (the details, which name
// server paths, go to the log and the webhook only).
// It goes to the clients that asked for the room's recording with
// EventRecording and are still connected, or, for a recording nobody asked
// for (recording.mode), to every client of the room.
const EventRecordingFailed = "recording-failed"

// NewRecorder builds the recorder of a configuration (nil when
// recording.dir is empty), after marking the manifests a previous process
// left unfinished as interrupted. serve and join both record through it.
func NewRecorder(cfg config.Recording, log *slog.Logger) (*recorder.Recorder, error) {
	if cfg.Dir == "" {
		return nil, nil
	}
	if _, err := os.Stat(cfg.Dir); err == nil {
		marked, err := recorder.Recover(cfg.Dir, log)
		if err != nil {
			log.Warn("recovering recordings", "dir", cfg.Dir, "error", err)
		}
		for _, m := range marked {
			log.Warn("recording marked interrupted", "manifest", m)
		}
	}
	rec, err := recorder.New(recorder.Config{
		Dir: cfg.Dir, NameTemplate: cfg.NameTemplate, MaxFileSize: cfg.MaxFileSize,
		MaxDuration: cfg.MaxDuration, FlushInterval: cfg.FlushInterval,
		Logger: log.With("component", "recorder"),
	})
	if err != nil {
		return nil, fmt.Errorf("recording.dir: %w", err)
	}
	return rec, nil
}

// recordPolicy says which rooms record from their start.
func recordPolicy(cfg config.Recording) func(string) bool {
	switch cfg.Mode {
	case "all":
		return func(string) bool { return true }
	case "rooms":
		return func(room string) bool { return roompattern.Any(cfg.Rooms, room) }
	}
	return nil
}

// controlRecording applies a start or stop to a room or one stream. A
// mesh room that has no recorder peer yet gets one on a start.
func (s *Server) controlRecording(roomID, action, streamID string) (int, error) {
	room := s.sfu.Room(roomID)
	if room == nil && action == "start" && s.isMeshRoom(roomID) {
		var err error
		if room, err = s.sfu.RecordMesh(roomID); err != nil {
			return 0, signaling.Refuse(signaling.ReasonForbidden, err.Error())
		}
	}
	if room == nil {
		return 0, signaling.Refuse(signaling.ReasonNotFound, fmt.Sprintf("no room %q with clients", roomID))
	}
	switch action {
	case "start":
		n, err := room.StartRecording(streamID)
		if err != nil {
			return n, signaling.Refuse(signaling.ReasonForbidden, err.Error())
		}
		return n, nil
	case "stop":
		return room.StopRecording(streamID), nil
	}
	return 0, signaling.Refuse(signaling.ReasonInvalidPayload, fmt.Sprintf("action %q is neither start nor stop", action))
}

func (s *Server) recordingEvent(c *signaling.Conn, roomID string, args []any) error {
	_, v, err := signaling.DecodeRoomRequest(args, "action")
	if err != nil {
		return err
	}
	streamID := ""
	if obj, ok := args[0].(map[string]any); ok {
		streamID, _ = obj["streamId"].(string)
	}
	n, err := s.controlRecording(roomID, v["action"], streamID)
	if err != nil {
		return err
	}
	if v["action"] == "start" {
		s.recordingAskers.add(roomID, c.ID())
	}
	return c.Emit(EventRecording, map[string]any{"roomId": roomID, "action": v["action"], "streamId": streamID, "count": n})
}

func (s *Server) adminRecording(w http.ResponseWriter, r *http.Request) {
	n, err := s.controlRecording(r.PathValue("room"), r.PathValue("action"), r.URL.Query().Get("stream"))
	if err != nil {
		writeJSON(w, http.StatusConflict, apiError{Code: "refused", Message: err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"count": n})
}

func (s *Server) adminRecordings(w http.ResponseWriter, r *http.Request) {
	room := s.sfu.Room(r.PathValue("room"))
	if room == nil {
		writeJSON(w, http.StatusNotFound, apiError{Code: "not-found", Message: "no SFU room " + r.PathValue("room")})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"recordings": room.Recordings()})
}

// recordingFinished sends the recording_finished webhook with the manifest.
func (w *webhooks) recordingFinished(n sfu.Notice) {
	if w == nil || n.Kind != sfu.RecordingFinished {
		return
	}
	ev := webhook.Event{Type: webhook.RecordingFinished, Room: n.Room, Recording: &webhook.Recording{ID: n.Recording}}
	if n.Manifest != "" {
		if b, err := os.ReadFile(n.Manifest); err == nil {
			ev.Recording.Manifest = b
		}
	}
	w.notify(ev)
}

// isMeshRoom reports whether roomID is a mesh room with clients in it.
func (s *Server) isMeshRoom(roomID string) bool {
	for _, r := range s.signaling.Rooms() {
		if r.ID != roomID || r.Topology != (signaling.Mesh{}).Name() {
			continue
		}
		for _, m := range r.Members {
			if m.Role == signaling.RoleClient.String() {
				return true
			}
		}
	}
	return false
}

// recordingFailed makes a failed recording loud: a log line came from the
// room; here the metric, the webhook and the clients' server event.
func (s *Server) recordingFailed(n sfu.Notice) {
	if n.Kind != sfu.RecordingFailed {
		return
	}
	s.metrics.Direct.RecordingFailures.Add(1)
	s.webhooks.notify(webhook.Event{Type: webhook.RecordingFailed, Room: n.Room,
		Recording: &webhook.Recording{ID: n.Recording, Stream: n.Stream, Error: n.Error}})
	to := s.recordingAskers.connected(n.Room, s.roomClients(n.Room))
	s.signaling.EmitTo(to, EventRecordingFailed, map[string]any{
		"roomId": n.Room, "streamId": n.Stream, "recordingId": n.Recording, "reason": n.Reason,
	})
}

// roomClients lists the client members of a room.
func (s *Server) roomClients(roomID string) []string {
	var ids []string
	for _, r := range s.signaling.Rooms() {
		if r.ID != roomID {
			continue
		}
		for _, m := range r.Members {
			if m.Role == signaling.RoleClient.String() {
				ids = append(ids, m.ID)
			}
		}
	}
	return ids
}

// askers remembers which clients asked for a room's recording, so that a
// failure reaches them. It is forgotten with the room's gateway peer.
type askers struct {
	mu    sync.Mutex
	rooms map[string]map[string]bool
}

func (a *askers) add(room, id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.rooms == nil {
		a.rooms = make(map[string]map[string]bool)
	}
	if a.rooms[room] == nil {
		a.rooms[room] = make(map[string]bool)
	}
	a.rooms[room][id] = true
}

// connected returns the askers of room among members, or all members when
// none of them asked.
func (a *askers) connected(room string, members []string) []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for _, id := range members {
		if a.rooms[room][id] {
			out = append(out, id)
		}
	}
	if len(out) == 0 {
		return members
	}
	return out
}

// forget drops what is known of a room.
func (a *askers) forget(room string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.rooms, room)
}
