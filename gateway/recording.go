package gateway

import (
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/rtcio-gateway/rtcio-gateway/config"
	"github.com/rtcio-gateway/rtcio-gateway/gateway/sfu"
	"github.com/rtcio-gateway/rtcio-gateway/gateway/signaling"
	"github.com/rtcio-gateway/rtcio-gateway/gateway/webhook"
	"github.com/rtcio-gateway/rtcio-gateway/recorder"
)

// EventRecording is the server event that starts or stops recording an
// SFU room or one of its streams: {roomId, action: "start"|"stop",
// streamId?}. It is answered with recording {roomId, action, streamId,
// count}, or a gateway-error. Only a member of the room whose token still
// allows the room may send it (checked on every event, see
// signaling.Server.HandleRoom); restrict who joins with tokens.
const EventRecording = "recording"

// newRecorder builds the recorder when recording.dir is set, after marking
// the manifests a previous process left unfinished as interrupted.
func (s *Server) newRecorder(cfg config.Recording) (*recorder.Recorder, error) {
	if cfg.Dir == "" {
		return nil, nil
	}
	if _, err := os.Stat(cfg.Dir); err == nil {
		marked, err := recorder.Recover(cfg.Dir, s.log)
		if err != nil {
			s.log.Warn("recovering recordings", "dir", cfg.Dir, "error", err)
		}
		for _, m := range marked {
			s.log.Warn("recording marked interrupted", "manifest", m)
		}
	}
	rec, err := recorder.New(recorder.Config{
		Dir: cfg.Dir, NameTemplate: cfg.NameTemplate, MaxFileSize: cfg.MaxFileSize,
		MaxDuration: cfg.MaxDuration, FlushInterval: cfg.FlushInterval,
		Logger: s.log.With("component", "recorder"),
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
		return func(room string) bool {
			for _, p := range cfg.Rooms {
				if prefix, ok := strings.CutSuffix(p, "*"); ok && strings.HasPrefix(room, prefix) || p == room {
					return true
				}
			}
			return false
		}
	}
	return nil
}

// controlRecording applies a start or stop to a room or one stream.
func (s *Server) controlRecording(roomID, action, streamID string) (int, error) {
	room := s.sfu.Room(roomID)
	if room == nil {
		return 0, signaling.Refuse(signaling.ReasonNotFound, fmt.Sprintf("no SFU room %q", roomID))
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
