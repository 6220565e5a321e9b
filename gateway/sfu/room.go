// Package sfu is the media side of SFU rooms. In an SFU room every client
// has one peer connection, to the room's gateway peer: an rtcio.Socket
// attached in process to the signaling server. The gateway peer receives
// each client's streams, feeds their tracks into the forwarding plane, and
// re-publishes every stream to the room's other clients with the
// publisher's own event name, arguments, RTCIOStream id and MediaStream id.
// What a late joiner gets is decided as in a mesh: the gateway asks the
// publisher again ({mid} request) and replays only streams the publisher
// still tracks.
package sfu

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/rtcio-gateway/rtcio-gateway/gateway/signaling"
	"github.com/rtcio-gateway/rtcio-gateway/internal/logthrottle"
	"github.com/rtcio-gateway/rtcio-gateway/recorder"
	"github.com/rtcio-gateway/rtcio-gateway/rtcio"
	"github.com/rtcio-gateway/rtcio-gateway/speaker"
)

// Config configures the media side of every SFU room.
type Config struct {
	// API builds the gateway peers' connections; see NewAPI.
	API *webrtc.API
	// Binder must be the Binder registered in API (see NewAPI).
	Binder *Binder
	// SSRCGuard, when set, must be the guard registered in API: a client
	// connection that opens too many remote streams is closed.
	SSRCGuard *SSRCGuard
	// ICEServers for the gateway peers.
	ICEServers []webrtc.ICEServer
	// Channels are the custom channel names relayed between clients. Both
	// ends of a negotiated channel must create it, so the gateway can only
	// relay channels it knows by name (see channelRefused).
	Channels []string
	// Tell, when set, sends a server event to one client (the gateway
	// tells a client about a channel it does not relay).
	Tell func(clientID, event string, payload any)
	// MetadataWait bounds how long a late joiner's replay waits for a
	// publisher to confirm a stream. Default 5 s: a publisher that still
	// tracks the stream answers at once, so the wait only delays giving up
	// on one that untracked it, while on a busy machine an answer can take
	// seconds to come back.
	MetadataWait time.Duration
	// MediaStopGrace is how long a publisher whose socket left may go
	// without sending media before its streams are removed. Default 400 ms.
	MediaStopGrace time.Duration
	// AdoptGrace is how long the streams of a departed publisher wait for
	// it to come back (a new connection publishing the same RTCIOStream)
	// before they are removed; a stream that is adopted continues on the
	// subscribers' existing tracks. Default 800 ms, which with
	// MediaStopGrace keeps a closed page's tracks on the others' screens
	// for well under 2 s.
	AdoptGrace time.Duration
	// Observer, when set, sees the media plane for metrics.
	Observer Observer
	// Dropped, when set, counts what the rooms drop, by reason (see the
	// Drop constants). It must not block.
	Dropped func(reason string)
	// Identity tells who a connected client is; a reconnecting publisher
	// continues a stream only under the same identity (see adopt.go).
	// nil means no stream is ever adopted.
	Identity func(socketID string) (signaling.Identity, bool)
	// MaxPeerConnections and MaxPeersPerRoom bound the gateway peer
	// connections joins create (see Manager.MayJoin); 0 means no bound.
	MaxPeerConnections int
	MaxPeersPerRoom    int
	// PeerConnectTimeout closes a gateway peer connection that did not
	// connect in time; 0 means never.
	PeerConnectTimeout time.Duration
	// RelayRate and RelayBurst bound, per sender, the ctrl events and
	// channel messages the room relays; RelayRate 0 means no bound.
	RelayRate  float64
	RelayBurst int
	// ReceiveOnly makes the peer a plain participant that relays nothing
	// (see Join).
	ReceiveOnly bool
	// Recorder records streams; nil means recording is unavailable.
	Recorder *recorder.Recorder
	// RecordRoom says whether a room records every stream from its start.
	RecordRoom func(roomID string) bool
	// Notify, when set, hears what the rooms decide about streams (for
	// webhooks, metrics and tests). It runs on the deciding goroutine and
	// must not block.
	Notify func(Notice)
	// Adapt and Speaker configure bandwidth adaptation and the active
	// speaker (adapt.go, activespeaker.go); both are off in the zero
	// Config. AdaptObserver, when set, sees them for metrics.
	Adapt         AdaptConfig
	Speaker       SpeakerConfig
	AdaptObserver AdaptObserver
	Logger        *slog.Logger
	// Placement, in a cluster, decides whether this node hosts an SFU
	// room's media (it holds the room's media lease); nil on one node.
	Placement Placement
	// IsLink, when set, tells which peers are other gateway peers of a
	// room cascaded over several nodes: such a peer's metadata requests
	// are answered only after the stream's publisher confirmed it again
	// (see answerLink). Nil: no peer is a link.
	IsLink func(peerID string) bool
}

func (c *Config) setDefaults() {
	if c.MetadataWait <= 0 {
		c.MetadataWait = 5 * time.Second
	}
	if c.MediaStopGrace <= 0 {
		c.MediaStopGrace = 400 * time.Millisecond
	}
	if c.AdoptGrace <= 0 {
		c.AdoptGrace = 800 * time.Millisecond
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	c.Adapt.setDefaults()
	c.Speaker.setDefaults()
}

// Room is the media side of one SFU room.
type Room struct {
	id    string
	cfg   Config
	log   *slog.Logger
	local Conn
	sock  *rtcio.Socket
	ctx   context.Context
	stop  context.CancelFunc
	loops sync.WaitGroup // track read loops and the room's own goroutines

	mu        sync.Mutex
	streams   map[streamKey]*relayed
	metadata  metadataCalls        // shared by replays of one stream
	left      map[string]time.Time // publishers whose socket left, and when
	departing map[string]bool      // publishers whose peer the room closed
	moved     map[string]bool      // clients moved here from a dead edge (link.go)
	channels  map[string]*rtcio.BroadcastChannel
	// recordAll records every stream the room relays; recordings are the
	// running ones, by RTCIOStream id.
	recordAll  bool
	recordings map[string]*recorder.Recording
	// starting are the streams whose recording is being started.
	starting map[string]bool
	// meeting is the room manifest of the recordings, from the first one
	// until the room closes.
	meeting meeting

	connects   *connectWatch
	relayLimit *relayLimits
	relayLog   logthrottle.Throttle
	// badPacketLog throttles the log of packets a track drops.
	badPacketLog logthrottle.Throttle

	// adapt and speaker are nil when off (and in receive-only peers).
	adapt   *adapter
	speaker *speaker.Detector
}

type streamKey struct{ publisher, msid string }

// Conn is the gateway peer's signaling connection: in process for the
// gateway's own rooms, a socket.io client for a room on another server.
type Conn interface {
	rtcio.Signaling
	Close()
}

// newRoom attaches the gateway peer of roomID to the signaling server and
// joins it to the room.
func newRoom(sig *signaling.Server, roomID string, cfg Config) (*Room, error) {
	return Join(sig.AttachLocal(signaling.RoleGateway), roomID, "gateway", cfg)
}

// Join makes a gateway peer on conn and joins it to roomID under name. With
// cfg.ReceiveOnly it is a plain participant of someone else's room (a mesh
// on any rtc.io server): it receives, and records when told to, but relays
// nothing.
func Join(local Conn, roomID, name string, cfg Config) (*Room, error) {
	cfg.setDefaults()
	log := cfg.Logger.With("room", roomID, "gateway_peer", local.ID())
	opts := rtcio.Options{API: cfg.API, ICEServers: cfg.ICEServers, Logger: log, MetadataTimeout: cfg.MetadataWait}
	var adapt *adapter
	if cfg.Adapt.Enabled && !cfg.ReceiveOnly && cfg.API != nil {
		adapt = newAdapter(cfg.Adapt, cfg.AdaptObserver)
	}
	if cfg.SSRCGuard != nil && cfg.API != nil {
		opts.NewPeerConnection = func(peerID string, c webrtc.Configuration) (*webrtc.PeerConnection, error) {
			var pc *webrtc.PeerConnection
			var err error
			pc, err = cfg.SSRCGuard.NewPeerConnection(cfg.API, c, func() {
				log.Warn("sfu: closing a peer connection that sent too many unannounced SSRCs", "client", peerID)
				if cfg.Dropped != nil {
					cfg.Dropped(DropUnknownSSRCs)
				}
				_ = pc.Close()
			})
			return pc, err
		}
	}
	if adapt != nil {
		// The adaptation hears a subscriber's feedback by its connection
		// (the Binder sees pion's connection id) and needs its client.
		newPC := opts.NewPeerConnection
		opts.NewPeerConnection = func(peerID string, c webrtc.Configuration) (*webrtc.PeerConnection, error) {
			var pc *webrtc.PeerConnection
			var err error
			if newPC != nil {
				pc, err = newPC(peerID, c)
			} else {
				pc, err = cfg.API.NewPeerConnection(c)
			}
			if err == nil {
				adapt.connected(pc.ID(), peerID)
			}
			return pc, err
		}
	}
	sock, err := rtcio.New(local, opts)
	if err != nil {
		local.Close()
		return nil, err
	}
	ctx, stop := context.WithCancel(context.Background())
	r := &Room{
		id: roomID, cfg: cfg, log: log, local: local, sock: sock, ctx: ctx, stop: stop,
		streams:    make(map[streamKey]*relayed),
		left:       make(map[string]time.Time),
		departing:  make(map[string]bool),
		moved:      make(map[string]bool),
		channels:   make(map[string]*rtcio.BroadcastChannel),
		recordings: make(map[string]*recorder.Recording),
		starting:   make(map[string]bool),
		recordAll:  cfg.Recorder != nil && cfg.RecordRoom != nil && cfg.RecordRoom(roomID),
		connects:   newConnectWatch(),
		relayLimit: newRelayLimits(cfg.RelayRate, cfg.RelayBurst),
		adapt:      adapt,
	}
	if cfg.Speaker.Enabled && !cfg.ReceiveOnly {
		r.speaker = speaker.New(cfg.Speaker.Detector)
	}
	hooks := rtcio.Hooks{
		RemoteTrack:        r.onRemoteTrack,
		RemoteTrackEnded:   r.onRemoteTrackEnded,
		RemoteStreamEvents: r.onStreamEvents,
	}
	relays := !cfg.ReceiveOnly
	if relays {
		// Only a relaying peer passes data on, refuses what it cannot
		// relay, and replays streams to whoever connects; a receive-only
		// one is a plain participant (see Join's comment).
		hooks.Ctrl, hooks.ChannelMessage, hooks.ChannelAcceptFailed = r.relayCtrl, r.relayChannel, r.channelRefused
		if cfg.IsLink != nil {
			hooks.RelayedMetadata = r.answerLink
		}
	}
	sock.SetHooks(hooks)
	sock.On(rtcio.EventPeerConnect, func(ev *rtcio.Event) {
		r.connects.markConnected(ev.PeerID)
		if relays {
			r.replayTo(ev.PeerID)
			r.tellSpeaker(ev.PeerID)
		}
	})
	for _, name := range cfg.Channels {
		bc, err := sock.CreateChannel(name, rtcio.ChannelOptions{})
		if err != nil {
			r.log.Warn("sfu: cannot relay channel", "channel", name, "err", err)
			continue
		}
		r.channels[name] = bc
	}
	local.Subscribe(r.onSignal)
	r.loops.Add(1)
	go r.watchDepartures()
	if r.adapt != nil || r.speaker != nil {
		r.loops.Add(1)
		go r.control()
	}
	if err := local.Emit(signaling.EventJoinRoom, map[string]any{"roomId": roomID, "name": name}); err != nil {
		r.Close()
		return nil, err
	}
	r.log.Info("sfu: gateway peer joined")
	return r, nil
}

// ID is the room id.
func (r *Room) ID() string { return r.id }

// PeerID is the gateway peer's socket id.
func (r *Room) PeerID() string { return r.local.ID() }

// Close leaves the room: every peer connection closes (clients see
// peer-disconnect), every publication stops.
func (r *Room) Close() {
	r.StopRecording("")
	r.stop()
	_ = r.sock.Close()
	r.mu.Lock()
	var ins []*inbound
	var ended []Notice
	for _, rel := range r.streams {
		for _, in := range rel.tracks {
			ins = append(ins, in)
		}
		ins = append(ins, rel.orphans...)
		if rel.out != nil {
			ended = append(ended, rel.key.notice(StreamUnpublished, rel.out))
		}
	}
	r.streams = make(map[streamKey]*relayed)
	r.mu.Unlock()
	for _, in := range ins {
		in.close()
	}
	for _, n := range ended {
		r.notify(n)
	}
	r.loops.Wait()
	r.meeting.close()
	r.local.Close()
	r.log.Info("sfu: gateway peer left")
}
