package gateway

import (
	"context"
	"fmt"

	"github.com/rtcio-gateway/rtcio-gateway/config"
	"github.com/rtcio-gateway/rtcio-gateway/gateway/sfu"
	"github.com/rtcio-gateway/rtcio-gateway/gateway/signaling"
	"github.com/rtcio-gateway/rtcio-gateway/gateway/webhook"
)

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
