package signaling

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
)

// Reason is the machine-readable code of a refused request, sent to the
// client in the "code" field of a gateway-error event and used as the label
// of the refusal counter.
type Reason string

// The reasons a request can be refused.
const (
	ReasonInvalidPayload   Reason = "invalid-payload"
	ReasonMissingField     Reason = "missing-field"
	ReasonPayloadTooLarge  Reason = "payload-too-large"
	ReasonForgedSource     Reason = "forged-source"
	ReasonNoSharedRoom     Reason = "no-shared-room"
	ReasonNotInRoom        Reason = "not-in-room"
	ReasonNotRelayed       Reason = "not-relayed"
	ReasonRateLimited      Reason = "rate-limited"
	ReasonRoomNameTooLong  Reason = "room-name-too-long"
	ReasonTooManyRooms     Reason = "too-many-rooms"
	ReasonRoomNotAllowed   Reason = "room-not-allowed"
	ReasonReservedEvent    Reason = "reserved-event"
	ReasonUnauthorized     Reason = "unauthorized"
	ReasonOriginNotAllowed Reason = "origin-not-allowed"
	ReasonShuttingDown     Reason = "shutting-down"
	ReasonNotFound         Reason = "not-found"
	ReasonForbidden        Reason = "forbidden"
	ReasonTokenExpired     Reason = "token-expired"
	ReasonTooManyPeers     Reason = "too-many-peers"
	// ReasonClusterUnavailable refuses what needs the cluster's shared
	// state while it does not answer (Redis down): a join, a message
	// whose shared room cannot be checked.
	ReasonClusterUnavailable Reason = "cluster-unavailable"
	// ReasonReplyDropped counts gateway-error replies not sent because
	// the socket's outbound queue was already half full (a client that
	// floods and does not read); ReasonSlowConsumer counts sockets
	// disconnected because their outbound queue overflowed or stalled.
	ReasonReplyDropped Reason = "reply-dropped"
	ReasonSlowConsumer Reason = "slow-consumer"
)

// Refuse is the error an EventHandler returns to refuse a request with a
// reason the client is told.
func Refuse(reason Reason, message string) error { return refuse(reason, message) }

// DecodeRoomRequest reads the first argument of an application event as
// an object with a non-empty string "roomId" and the given string fields.
func DecodeRoomRequest(args []any, fields ...string) (roomID string, values map[string]string, err error) {
	obj, err := firstObject(args)
	if err != nil {
		return "", nil, err
	}
	if roomID, err = stringField(obj, "roomId"); err != nil {
		return "", nil, err
	}
	values = make(map[string]string, len(fields))
	for _, f := range fields {
		v, err := stringField(obj, f)
		if err != nil {
			return "", nil, err
		}
		values[f] = v
	}
	return roomID, values, nil
}

// Refusal is the error returned for a request the server will not serve.
type Refusal struct {
	Reason  Reason
	Message string
}

func (r *Refusal) Error() string { return fmt.Sprintf("%s: %s", r.Reason, r.Message) }

func refuse(reason Reason, message string) error {
	return &Refusal{Reason: reason, Message: message}
}

// reasonOf extracts the refusal reason from err, or "" when err is not one.
func reasonOf(err error) Reason {
	var r *Refusal
	if errors.As(err, &r) {
		return r.Reason
	}
	return ""
}

// errorEvent is the payload of a gateway-error event.
type errorEvent struct {
	Code    Reason `json:"code"`
	Event   string `json:"event"`
	Message string `json:"message"`
}

// refusalCounter counts refusals by reason without a lock on the hot path of
// the common case (no refusals at all).
type refusalCounter struct {
	m sync.Map // Reason -> *atomic.Uint64
}

func (rc *refusalCounter) add(r Reason) {
	v, ok := rc.m.Load(r)
	if !ok {
		v, _ = rc.m.LoadOrStore(r, new(atomic.Uint64))
	}
	v.(*atomic.Uint64).Add(1)
}

func (rc *refusalCounter) snapshot() map[Reason]uint64 {
	out := make(map[Reason]uint64)
	rc.m.Range(func(k, v any) bool {
		out[k.(Reason)] = v.(*atomic.Uint64).Load()
		return true
	})
	return out
}
