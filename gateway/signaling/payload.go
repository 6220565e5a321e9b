package signaling

import (
	"fmt"
)

// The signaling event names of docs/PROTOCOL.md section 2 and the reference room
// convention. Names starting with "#rtcio:" are the rtc.io library's own.
const (
	EventMessage    = "#rtcio:message"
	EventInitOffer  = "#rtcio:init-offer"
	EventPeerLeft   = "#rtcio:peer-left"
	EventJoinRoom   = "join-room"
	EventLeaveRoom  = "leave-room"
	EventMediaState = "media-state"
	EventScreenStop = "stopScreenShare"

	EventUserConnected    = "user-connected"
	EventUserDisconnected = "user-disconnected"
	// EventJoinOK and EventJoinError are what the rtc.io demo server sends a
	// joiner; apps written against it wait for them.
	EventJoinOK    = "join-ok"
	EventJoinError = "join-error"
	// EventError carries every refusal back to the client that caused it.
	EventError = "gateway-error"
)

// messagePayload is the decoded data of #rtcio:message. Data stays as the
// client sent it: the server relays it and never looks inside.
type messagePayload struct {
	Source string
	Target string
	Data   any
	// raw is the object as received, relayed with Source corrected.
	raw map[string]any
}

type joinPayload struct {
	RoomID string
	Name   string
	// Password is carried by some demo apps; the gateway ignores it.
}

type roomPayload struct {
	RoomID string
	raw    map[string]any
}

type mediaStatePayload struct {
	RoomID string
	Mic    *bool
	Cam    *bool
	raw    map[string]any
}

// firstObject returns the event's first argument as a JSON object.
func firstObject(args []any) (map[string]any, error) {
	if len(args) == 0 {
		return nil, refuse(ReasonMissingField, "payload is missing")
	}
	obj, ok := args[0].(map[string]any)
	if !ok {
		return nil, refuse(ReasonInvalidPayload, fmt.Sprintf("payload must be an object, got %s", jsonKind(args[0])))
	}
	return obj, nil
}

// stringField reads a required non-empty string field.
func stringField(obj map[string]any, key string) (string, error) {
	v, present := obj[key]
	if !present || v == nil {
		return "", refuse(ReasonMissingField, fmt.Sprintf("field %q is missing", key))
	}
	s, ok := v.(string)
	if !ok {
		return "", refuse(ReasonInvalidPayload, fmt.Sprintf("field %q must be a string, got %s", key, jsonKind(v)))
	}
	if s == "" {
		return "", refuse(ReasonMissingField, fmt.Sprintf("field %q is empty", key))
	}
	return s, nil
}

// optionalString reads a string field that may be absent; a present value of
// another type is still an error.
func optionalString(obj map[string]any, key string) (string, error) {
	v, present := obj[key]
	if !present || v == nil {
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", refuse(ReasonInvalidPayload, fmt.Sprintf("field %q must be a string, got %s", key, jsonKind(v)))
	}
	return s, nil
}

func optionalBool(obj map[string]any, key string) (*bool, error) {
	v, present := obj[key]
	if !present || v == nil {
		return nil, nil
	}
	b, ok := v.(bool)
	if !ok {
		return nil, refuse(ReasonInvalidPayload, fmt.Sprintf("field %q must be a boolean, got %s", key, jsonKind(v)))
	}
	return &b, nil
}

func decodeMessage(args []any) (messagePayload, error) {
	obj, err := firstObject(args)
	if err != nil {
		return messagePayload{}, err
	}
	target, err := stringField(obj, "target")
	if err != nil {
		return messagePayload{}, err
	}
	source, err := optionalString(obj, "source")
	if err != nil {
		return messagePayload{}, err
	}
	data, present := obj["data"]
	if !present || data == nil {
		return messagePayload{}, refuse(ReasonMissingField, `field "data" is missing`)
	}
	if _, ok := data.(map[string]any); !ok {
		return messagePayload{}, refuse(ReasonInvalidPayload, fmt.Sprintf(`field "data" must be an object, got %s`, jsonKind(data)))
	}
	return messagePayload{Source: source, Target: target, Data: data, raw: obj}, nil
}

func decodeJoin(args []any) (joinPayload, error) {
	obj, err := firstObject(args)
	if err != nil {
		return joinPayload{}, err
	}
	room, err := stringField(obj, "roomId")
	if err != nil {
		return joinPayload{}, err
	}
	name, err := optionalString(obj, "name")
	if err != nil {
		return joinPayload{}, err
	}
	return joinPayload{RoomID: room, Name: name}, nil
}

func decodeRoom(args []any) (roomPayload, error) {
	obj, err := firstObject(args)
	if err != nil {
		return roomPayload{}, err
	}
	room, err := stringField(obj, "roomId")
	if err != nil {
		return roomPayload{}, err
	}
	return roomPayload{RoomID: room, raw: obj}, nil
}

func decodeMediaState(args []any) (mediaStatePayload, error) {
	obj, err := firstObject(args)
	if err != nil {
		return mediaStatePayload{}, err
	}
	room, err := stringField(obj, "roomId")
	if err != nil {
		return mediaStatePayload{}, err
	}
	mic, err := optionalBool(obj, "mic")
	if err != nil {
		return mediaStatePayload{}, err
	}
	cam, err := optionalBool(obj, "cam")
	if err != nil {
		return mediaStatePayload{}, err
	}
	return mediaStatePayload{RoomID: room, Mic: mic, Cam: cam, raw: obj}, nil
}

// jsonKind names the JSON type of a decoded value for error messages.
func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case bool:
		return "boolean"
	case float64, float32, int, int64, uint64, int32, uint32:
		return "number"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	case []byte:
		return "binary"
	default:
		return fmt.Sprintf("%T", v)
	}
}
