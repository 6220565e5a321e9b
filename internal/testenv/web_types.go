package testenv

import (
	"encoding/json"
	"fmt"
	"time"
)

// ConformanceOptions tunes one conformance peer. The zero value connects
// with no auth, lets socket.io pick its transports (polling, then upgrade),
// keeps the real client's watchdog timings and offers loopback ICE
// candidates only.
type ConformanceOptions struct {
	// WebURL is a base URL from ServeWeb; empty starts a server for the test.
	WebURL string
	// Auth is the socket.io handshake auth object.
	Auth map[string]any
	// Name is the default name for JoinRoom.
	Name string
	// Transports restricts socket.io transports, e.g. []string{"websocket"}.
	Transports []string
	// Watchdog overrides the liveness watchdog windows (zero fields keep
	// 12 s, 2.5 s and 30 s).
	Watchdog WatchdogOptions
	// RejoinOnReconnect re-emits join-room for joined rooms after a
	// socket.io reconnect, as the demo apps do (the library never does).
	RejoinOnReconnect bool
	// AllowNonLoopback also offers non-loopback ICE candidates. Leave it
	// off: tests must stay on 127.0.0.0/8.
	AllowNonLoopback bool
	// NoRender skips attaching received video to <video> elements.
	NoRender bool
	// Debug logs every page event to the console (and so to the test log).
	Debug bool
	// ConnectTimeout bounds the socket.io handshake (default 10 s).
	ConnectTimeout time.Duration
}

// WatchdogOptions are the page's watchdog windows.
type WatchdogOptions struct {
	Timeout     time.Duration // unhealthy grace window
	HintTimeout time.Duration // window when a fresh peer-left hint exists
	HintTTL     time.Duration // how long a peer-left hint stays fresh
}

func (o ConformanceOptions) jsOptions() map[string]any {
	m := map[string]any{"name": o.Name, "loopbackOnly": !o.AllowNonLoopback, "render": !o.NoRender, "debug": o.Debug}
	if o.Auth != nil {
		m["auth"] = o.Auth
	}
	if len(o.Transports) > 0 {
		m["transports"] = o.Transports
	}
	if o.RejoinOnReconnect {
		m["rejoinOnReconnect"] = true
	}
	if o.ConnectTimeout > 0 {
		m["connectTimeoutMs"] = o.ConnectTimeout.Milliseconds()
	}
	wd := map[string]any{}
	for k, d := range map[string]time.Duration{"timeout": o.Watchdog.Timeout, "hintTimeout": o.Watchdog.HintTimeout, "hintTTL": o.Watchdog.HintTTL} {
		if d > 0 {
			wd[k] = d.Milliseconds()
		}
	}
	if len(wd) > 0 {
		m["watchdog"] = wd
	}
	return m
}

// MediaOptions selects what PublishCamera captures. The zero value is
// camera and microphone from the browser's fake devices, falling back to a
// canvas/oscillator stream when getUserMedia is unavailable.
type MediaOptions struct {
	NoAudio bool
	NoVideo bool
	// Source is "" (auto), "getUserMedia" (fail without devices) or
	// "synthetic" (canvas video, oscillator audio).
	Source string
}

// ChannelOptions map to the RTCDataChannel init of a custom channel; nil
// fields keep the browser's defaults (ordered, reliable).
type ChannelOptions struct {
	Ordered           *bool `json:"ordered,omitempty"`
	MaxRetransmits    *int  `json:"maxRetransmits,omitempty"`
	MaxPacketLifeTime *int  `json:"maxPacketLifeTime,omitempty"`
}

// StreamInfo describes an RTCIOStream as the page sees it.
type StreamInfo struct {
	RTCIOStreamID string   `json:"rtcioStreamId"`
	MediaStreamID string   `json:"mediaStreamId"`
	TrackKinds    []string `json:"trackKinds"`
	TrackIDs      []string `json:"trackIds"`
	// Source is how PublishCamera got its media ("getUserMedia" or "synthetic").
	Source string `json:"source,omitempty"`
}

// TrackInfo names one MediaStreamTrack.
type TrackInfo struct {
	ID   string `json:"id"`
	Kind string `json:"kind"`
}

// ChannelInfo describes a custom channel.
type ChannelInfo struct {
	Name   string `json:"name"`
	ID     int    `json:"id"`
	Label  string `json:"label"`
	State  string `json:"state,omitempty"`
	Queued int    `json:"queued,omitempty"`
}

// PageEvent is one record of the page's event log. Type is one of:
//
//	stream-event    a stream event fired after {mid, events}: Name, Args
//	                (the stream appears as {"$stream": StreamInfo}), Stream
//	event           a ctrl-channel event (Via "ctrl"): Name, Args
//	channel-event   a custom-channel {e, d} envelope: Channel, Name, Args
//	channel-data    a binary custom-channel frame: Channel, ByteLength, Base64
//	channel-open, channel-close, channel-error (Reason)
//	drop            a ctrl frame the filters refused: Reason is nonText,
//	                tooLarge, invalidJson, badName, internal or reserved
//	peer-connect, peer-disconnect, peer-created, peer-closed (Reason)
//	track-added     Via "ontrack" or "addtrack"; Stream, Track
//	track-removed   Stream, Track
//	track           every ontrack (MediaStreamID, Kind, Mid)
//	server          any socket.io event from the server but #rtcio:message
//	signal-in, signal-out  #rtcio:message traffic: Kind is offer, answer,
//	                candidate, empty-candidate, mid-request or mid-answer
//	negotiation     Action: ignored-offer, rollback, stale-answer, ...
//	pc-state, signaling-state (State), watchdog-armed, watchdog-expired,
//	peer-left-hint, ice-restart, socket-connect, socket-disconnect, ...
//
// Raw keeps the whole record for fields not mapped here.
type PageEvent struct {
	Seq           int               `json:"seq"`
	T             float64           `json:"t"`
	Type          string            `json:"type"`
	PeerID        string            `json:"peerId"`
	Name          string            `json:"name"`
	Via           string            `json:"via"`
	Reason        string            `json:"reason"`
	Channel       string            `json:"channel"`
	State         string            `json:"state"`
	Kind          string            `json:"kind"`
	Action        string            `json:"action"`
	MediaStreamID string            `json:"mediaStreamId"`
	Args          []json.RawMessage `json:"args"`
	Stream        *StreamInfo       `json:"stream"`
	Track         *TrackInfo        `json:"track"`
	ByteLength    int               `json:"byteLength"`
	Base64        string            `json:"base64"`
	Raw           json.RawMessage   `json:"-"`
}

// UnmarshalJSON keeps the raw record beside the mapped fields. Records are
// the page's own, but fields like mid echo what a peer sent, so anything
// that does not fit a mapped field stays readable through Raw only.
func (e *PageEvent) UnmarshalJSON(b []byte) error {
	type plain PageEvent
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return fmt.Errorf("page event %s: %w", b, err)
	}
	*e = PageEvent(p)
	e.Raw = append(json.RawMessage(nil), b...)
	return nil
}

// Arg decodes argument i into v.
func (e PageEvent) Arg(i int, v any) error {
	if i < 0 || i >= len(e.Args) {
		return fmt.Errorf("page event %d (%s %s) has %d args, no arg %d", e.Seq, e.Type, e.Name, len(e.Args), i)
	}
	if err := json.Unmarshal(e.Args[i], v); err != nil {
		return fmt.Errorf("page event %d arg %d: %w", e.Seq, i, err)
	}
	return nil
}

// StreamArg finds the substituted stream ({"$stream": ...}) anywhere in the
// args, as a receiver's listener would find its RTCIOStream.
func (e PageEvent) StreamArg() (StreamInfo, bool) {
	for _, a := range e.Args {
		var v any
		if json.Unmarshal(a, &v) != nil {
			continue
		}
		if s, ok := findStreamMarker(v, 0); ok {
			return s, true
		}
	}
	return StreamInfo{}, false
}

func findStreamMarker(v any, depth int) (StreamInfo, bool) {
	if depth > 32 {
		return StreamInfo{}, false
	}
	switch x := v.(type) {
	case map[string]any:
		if inner, ok := x["$stream"]; ok && len(x) == 1 {
			b, err := json.Marshal(inner)
			var s StreamInfo
			if err == nil && json.Unmarshal(b, &s) == nil {
				return s, true
			}
		}
		for _, c := range x {
			if s, ok := findStreamMarker(c, depth+1); ok {
				return s, true
			}
		}
	case []any:
		for _, c := range x {
			if s, ok := findStreamMarker(c, depth+1); ok {
				return s, true
			}
		}
	}
	return StreamInfo{}, false
}

// Drops counts ctrl-channel frames the page's receive filters refused.
type Drops struct {
	Total       int `json:"total"`
	NonText     int `json:"nonText"`
	TooLarge    int `json:"tooLarge"`
	InvalidJSON int `json:"invalidJson"`
	BadName     int `json:"badName"`
	Internal    int `json:"internal"`
	Reserved    int `json:"reserved"`
}

// NegotiationCounters count what the page's negotiation and signaling did.
type NegotiationCounters struct {
	IgnoredOffers      int `json:"ignoredOffers"`
	Rollbacks          int `json:"rollbacks"`
	StaleAnswers       int `json:"staleAnswers"`
	SRDFailures        int `json:"srdFailures"`
	OffersSent         int `json:"offersSent"`
	AnswersSent        int `json:"answersSent"`
	CandidateErrors    int `json:"candidateErrors"`
	EmptyCandidates    int `json:"emptyCandidates"`
	FilteredCandidates int `json:"filteredCandidates"`
	CtrlQueueDropped   int `json:"ctrlQueueDropped"`
	BadSignals         int `json:"badSignals"`
}

// PeerSummary is the page peer's state at a glance.
type PeerSummary struct {
	Handle    int                 `json:"handle"`
	ID        string              `json:"id"`
	Connected bool                `json:"connected"`
	Closed    bool                `json:"closed"`
	LastSeq   int                 `json:"lastSeq"`
	Peers     int                 `json:"peers"`
	Drops     Drops               `json:"drops"`
	Counters  NegotiationCounters `json:"counters"`
}

// PeerConnections lists the page's RTCPeerConnections.
type PeerConnections struct {
	Count int                  `json:"count"`
	Peers []PeerConnectionInfo `json:"peers"`
}

// PeerConnectionInfo is one RTCPeerConnection of the page.
type PeerConnectionInfo struct {
	ID                 string            `json:"id"`
	Polite             bool              `json:"polite"`
	ConnectionState    string            `json:"connectionState"`
	IceConnectionState string            `json:"iceConnectionState"`
	SignalingState     string            `json:"signalingState"`
	CtrlState          string            `json:"ctrlState"`
	ConnectFired       bool              `json:"connectFired"`
	WatchdogArmed      bool              `json:"watchdogArmed"`
	Transceivers       []TransceiverInfo `json:"transceivers"`
	Channels           []ChannelInfo     `json:"channels"`
	Streams            []PeerStream      `json:"streams"`
}

// TransceiverInfo is one transceiver; Mid is "" before negotiation.
type TransceiverInfo struct {
	Mid              string `json:"mid"`
	Direction        string `json:"direction"`
	CurrentDirection string `json:"currentDirection"`
	Kind             string `json:"kind"`
	Sending          bool   `json:"sending"`
}

// PeerStream is a stream known on one peer connection: Remote ones were
// received, the others are the page's own.
type PeerStream struct {
	StreamInfo
	Remote bool `json:"remote"`
}

// PeerStats is the getStats digest of one peer connection.
type PeerStats struct {
	Inbound      []InboundRTP   `json:"inbound"`
	Outbound     []OutboundRTP  `json:"outbound"`
	SelectedPair *CandidatePair `json:"selectedPair"`
}

// InboundRTP is one inbound-rtp stats entry.
type InboundRTP struct {
	Kind            string `json:"kind"`
	Mid             string `json:"mid"`
	SSRC            uint32 `json:"ssrc"`
	FramesDecoded   uint64 `json:"framesDecoded"`
	BytesReceived   uint64 `json:"bytesReceived"`
	PacketsReceived uint64 `json:"packetsReceived"`
	TrackIdentifier string `json:"trackIdentifier"`
	// What the bandwidth tests read: losses and freezes, decoding rate,
	// keyframes and the requests for them, audio concealment.
	PacketsLost          int64   `json:"packetsLost"`
	FreezeCount          uint64  `json:"freezeCount"`
	FramesPerSecond      float64 `json:"framesPerSecond"`
	KeyFramesDecoded     uint64  `json:"keyFramesDecoded"`
	PLICount             uint64  `json:"pliCount"`
	FIRCount             uint64  `json:"firCount"`
	NACKCount            uint64  `json:"nackCount"`
	ConcealedSamples     uint64  `json:"concealedSamples"`
	TotalSamplesReceived uint64  `json:"totalSamplesReceived"`
	// FramesDropped: frames the receiver dropped before decoding (it
	// could not keep up).
	FramesDropped uint64 `json:"framesDropped"`
}

// OutboundRTP is one outbound-rtp stats entry.
type OutboundRTP struct {
	Kind          string `json:"kind"`
	Mid           string `json:"mid"`
	SSRC          uint32 `json:"ssrc"`
	BytesSent     uint64 `json:"bytesSent"`
	PacketsSent   uint64 `json:"packetsSent"`
	FramesEncoded uint64 `json:"framesEncoded"`
	// TargetBitrate is the encoder's target (bit/s); PLICount and
	// FIRCount the keyframe requests the sender received.
	TargetBitrate          float64 `json:"targetBitrate"`
	FramesPerSecond        float64 `json:"framesPerSecond"`
	PLICount               uint64  `json:"pliCount"`
	FIRCount               uint64  `json:"firCount"`
	RetransmittedBytesSent uint64  `json:"retransmittedBytesSent"`
	// CPULimitedSeconds is how long the encoder has lowered its quality
	// because the CPU could not keep up (qualityLimitationDurations.cpu):
	// tells a starved publisher from a network problem.
	CPULimitedSeconds float64 `json:"cpuLimitedSeconds"`
}

// CandidatePair is the selected ICE pair.
type CandidatePair struct {
	Local  *Candidate `json:"local"`
	Remote *Candidate `json:"remote"`
}

// Candidate is one side of a candidate pair.
type Candidate struct {
	Address       string `json:"address"`
	Port          int    `json:"port"`
	CandidateType string `json:"candidateType"`
	Protocol      string `json:"protocol"`
}

// RawFrame is a DataChannel frame for SendRaw.
type RawFrame struct{ v any }

// RawText is a text frame with exactly s.
func RawText(s string) RawFrame { return RawFrame{s} }

// RawBinary is a binary frame.
func RawBinary(b []byte) RawFrame { return RawFrame{map[string]any{"base64": b}} }

// RawLongText is a text frame of n UTF-16 code units built in the page from
// fill repeated, so megabytes need not cross the driver.
func RawLongText(fill string, n int) RawFrame {
	return RawFrame{map[string]any{"repeat": fill, "length": n}}
}

// RawResult reports a SendRaw. OK is false when the browser refused the
// send (e.g. above the remote's max-message-size).
type RawResult struct {
	OK    bool   `json:"ok"`
	Label string `json:"label"`
	ID    int    `json:"id"`
	Size  int    `json:"size"`
	Error string `json:"error"`
}
