package rtcio

import (
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"
)

// Watchdog tunes the per-peer liveness watchdog (docs/PROTOCOL.md section 7).
// Zero fields take the defaults.
type Watchdog struct {
	// Timeout is how long a peer may stay disconnected or failed before it
	// is closed. Default 12 s.
	Timeout time.Duration
	// HintTimeout replaces Timeout when a #rtcio:peer-left hint for the peer
	// arrived within HintTTL. Default 2.5 s.
	HintTimeout time.Duration
	// HintTTL is how long a peer-left hint stays fresh. Default 30 s.
	HintTTL time.Duration
}

// Watchdog defaults, the JavaScript client's.
const (
	DefaultWatchdogTimeout     = 12 * time.Second
	DefaultWatchdogHintTimeout = 2500 * time.Millisecond
	DefaultWatchdogHintTTL     = 30 * time.Second
)

func (w Watchdog) withDefaults() Watchdog {
	if w.Timeout <= 0 {
		w.Timeout = DefaultWatchdogTimeout
	}
	if w.HintTimeout <= 0 {
		w.HintTimeout = DefaultWatchdogHintTimeout
	}
	if w.HintTTL <= 0 {
		w.HintTTL = DefaultWatchdogHintTTL
	}
	return w
}

// Options configure a Socket. The zero value works (default pion API, no
// ICE servers, default watchdog, slog.Default()).
type Options struct {
	// API builds the peer connections; it carries the SettingEngine,
	// MediaEngine and interceptors, so callers control ports, network
	// types, codecs and RTCP behaviour. Nil means webrtc.NewAPI().
	API *webrtc.API
	// ICEServers for every peer connection. Unlike the browser client there
	// is no public STUN default: a server-side peer should not contact
	// third parties unless told to.
	ICEServers []webrtc.ICEServer
	// Watchdog timings.
	Watchdog Watchdog
	// Logger receives the Socket's logs; debug logging is the logger's
	// Debug level. Nil means slog.Default().
	Logger *slog.Logger
	// Auth is the socket.io handshake auth object (Dial only).
	Auth map[string]any
	// MetadataTimeout bounds RequestMetadata when its context has no
	// deadline. Default 5 s.
	MetadataTimeout time.Duration
	// NewPeerConnection, when set, creates the Socket's peer connections
	// (with the remote peer's id) instead of API.NewPeerConnection: a
	// server uses it to watch what one connection costs.
	NewPeerConnection func(peerID string, cfg webrtc.Configuration) (*webrtc.PeerConnection, error)
}

// LoopbackAPI returns a pion API restricted to IPv4 UDP on 127.0.0.1 with
// mDNS off, default codecs and interceptors, and a receive buffer large
// enough that an oversized data channel frame is dropped by the size check
// rather than stalling SCTP. It is meant for tests and local tools; tune
// adjusts the SettingEngine further (ICE timeouts, a UDP mux, ...).
func LoopbackAPI(tune ...func(*webrtc.SettingEngine)) (*webrtc.API, error) {
	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetInterfaceFilter(func(name string) bool { return name == "lo" || name == "lo0" })
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetSCTPMaxReceiveBufferSize(8 << 20)
	// Advertise a max-message-size above MaxEnvelopeBytes, so an oversized
	// frame reaches the envelope size check instead of being refused by
	// the sender.
	se.SetSCTPMaxMessageSize(4 << 20)
	for _, f := range tune {
		f(&se)
	}
	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		return nil, fmt.Errorf("rtcio: register codecs: %w", err)
	}
	return webrtc.NewAPI(webrtc.WithSettingEngine(se), webrtc.WithMediaEngine(me)), nil
}
