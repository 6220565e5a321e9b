package signaling

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/zishang520/socket.io/servers/socket/v3"
)

// One client event, from the socket to its handler: the payload bound, the
// dispatch, and the refusal sent back when a handler says no.

func firstString(args []any) (string, bool) {
	if len(args) == 0 {
		return "", false
	}
	v, ok := args[0].(string)
	return v, ok
}

// onEvent is the single entry point of every event a client sends. It runs
// on the socket's own event queue, so events of one socket are handled in
// order.
func (c *Conn) onEvent(args []any) {
	event, ok := firstString(args)
	if !ok {
		return
	}
	payload := args[1:]
	// An ack callback, when the client asked for one, comes last; the
	// protocol has no acks, so drop it.
	if n := len(payload); n > 0 {
		if _, isAck := payload[n-1].(socket.Ack); isAck {
			payload = payload[:n-1]
		}
	}
	defer func() {
		// A bug in one handler must not take every room down with it.
		if r := recover(); r != nil {
			c.log.Error("signaling handler panicked", "event", event, "panic", r)
		}
	}()
	if err := c.srv.dispatch(c, event, payload); err != nil {
		c.refused(event, err)
	}
}

func (s *Server) dispatch(c *Conn, event string, payload []any) error {
	c.out.check(c.dropSlow)
	if c.grant.expired(time.Now()) {
		go c.expire()
		return refuse(ReasonTokenExpired, "auth.token has expired; reconnect with a fresh one")
	}
	if c.limiter != nil && !c.limiter.Allow() {
		return refuse(ReasonRateLimited, fmt.Sprintf("more than %g messages per second", s.opts.MessagesPerSecond))
	}
	if err := s.checkSize(c, event, payload); err != nil {
		return err
	}
	switch event {
	case EventMessage:
		return s.relayMessage(c, payload)
	case EventJoinRoom:
		return s.joinRoom(c, payload)
	case EventLeaveRoom:
		return s.leaveRoom(c, payload)
	case EventMediaState:
		return s.mediaState(c, payload)
	case EventScreenStop:
		return s.relayToRoom(c, EventScreenStop, payload)
	}
	s.mu.Lock()
	h := s.handlers[event]
	s.mu.Unlock()
	if h != nil {
		return h(c, payload)
	}
	if strings.HasPrefix(event, "#rtcio:") {
		return refuse(ReasonReservedEvent, fmt.Sprintf("%q is sent only by the server", event))
	}
	// Like rtc.io-server, events nobody handles are ignored.
	return nil
}

// payloadSize is the JSON size of an event's arguments, the measure clients
// and operators reason about.
func payloadSize(payload []any) (int, error) {
	b, err := json.Marshal(payload)
	if err != nil {
		return 0, fmt.Errorf("payload is not JSON: %w", err)
	}
	return len(b), nil
}

// refused reports a refusal to the client, counts it and logs it.
func (c *Conn) refused(event string, err error) {
	reason := reasonOf(err)
	message := err.Error()
	var r *Refusal
	if errors.As(err, &r) {
		message = r.Message
	} else {
		reason = ReasonInvalidPayload
	}
	c.srv.refusals.add(reason)
	now := time.Now()
	c.refusalMu.Lock()
	rateReplied := now.Sub(c.lastRateReply) < time.Second
	if reason == ReasonRateLimited && !rateReplied {
		c.lastRateReply = now
	}
	logIt := now.Sub(c.lastRefusalLog) >= time.Second
	suppressed := c.suppressedLogs
	if logIt {
		c.lastRefusalLog, c.suppressedLogs = now, 0
	} else {
		c.suppressedLogs++
	}
	c.refusalMu.Unlock()
	switch {
	case reason == ReasonRateLimited && rateReplied:
		// One rate-limited reply a second tells a flooding client all it
		// needs; one per refused event would let it make the server
		// write as much as it sends.
	case !c.out.roomForReply():
		c.srv.refusals.add(ReasonReplyDropped)
	default:
		_ = c.Emit(EventError, errorEvent{Code: reason, Event: clip(event, maxEchoedEvent), Message: message})
	}
	if logIt {
		c.log.Warn("signaling request refused", "event", clip(event, maxEchoedEvent), "reason", reason, "detail", message, "suppressed", suppressed)
	}
}

// maxEchoedEvent bounds the event name a gateway-error echoes back: the
// name is the client's input, and is not counted in the payload bound.
const maxEchoedEvent = 128

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
