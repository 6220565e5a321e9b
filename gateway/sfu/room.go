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
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"

	"github.com/rtcio-gateway/rtcio-gateway/gateway/signaling"
	"github.com/rtcio-gateway/rtcio-gateway/recorder"
	"github.com/rtcio-gateway/rtcio-gateway/rtcio"
)

// Config configures the media side of every SFU room.
type Config struct {
	// API builds the gateway peers' connections; see NewAPI.
	API *webrtc.API
	// Router must be the RTCPRouter registered in API.
	Router *RTCPRouter
	// ICEServers for the gateway peers.
	ICEServers []webrtc.ICEServer
	// Channels are the custom channel names relayed between clients. Both
	// ends of a negotiated channel must create it, so the gateway can only
	// relay channels it knows by name.
	Channels []string
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
	Logger *slog.Logger
}

// NoticeKind says what a Notice reports.
type NoticeKind string

// The stream decisions a room reports.
const (
	// StreamPublished: a publisher's stream is now relayed to the room.
	StreamPublished NoticeKind = "stream-published"
	// StreamReplayed: a client that connected got a live stream.
	StreamReplayed NoticeKind = "stream-replayed"
	// StreamNotReplayed: a client that connected did not get a stream its
	// publisher no longer confirms.
	StreamNotReplayed NoticeKind = "stream-not-replayed"
	// StreamUnpublished: a relayed stream ended and was retired.
	StreamUnpublished NoticeKind = "stream-unpublished"
	// StreamAdopted: a publisher that reconnected continues a stream on
	// the subscribers' existing tracks.
	StreamAdopted NoticeKind = "stream-adopted"
	// RecordingFinished: a recording ended; Manifest is its manifest.
	RecordingFinished NoticeKind = "recording-finished"
)

// Notice is one decision of a room about a stream.
type Notice struct {
	Kind      NoticeKind
	Room      string
	Publisher string
	// Stream is the publisher's RTCIOStream id; MediaStream its msid.
	Stream      string
	MediaStream string
	// Client is the client concerned by a replay decision.
	Client string
	// Events are the stream's event names at the time.
	Events []string
	// Recording and Manifest identify a finished recording.
	Recording string
	Manifest  string
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
	channels  map[string]*rtcio.BroadcastChannel
	// recordAll records every stream the room relays; recordings are the
	// running ones, by RTCIOStream id.
	recordAll  bool
	recordings map[string]*recorder.Recording
}

type streamKey struct{ publisher, msid string }

// relayed is one publisher's stream as the room re-publishes it.
type relayed struct {
	key    streamKey
	tracks map[*webrtc.TrackRemote]*inbound
	// out is nil until the publisher's metadata arrived: without events
	// the gateway could not answer its subscribers' {mid} requests.
	out *rtcio.Stream
	// orphans are the tracks of a departed publisher, kept (with their
	// publications and subscribers) until orphanedAt+AdoptGrace in case
	// the publisher comes back.
	orphans    []*inbound
	orphanedAt time.Time
	// pendingNew are tracks of an adopting connection that the old one
	// did not have, to add once the lock is released.
	pendingNew []*inbound
	// untracked is set when the application untracked the stream: clients
	// that connect later do not get it, connected ones keep it.
	untracked bool
	events    []string
}

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
	sock, err := rtcio.New(local, rtcio.Options{API: cfg.API, ICEServers: cfg.ICEServers, Logger: log, MetadataTimeout: cfg.MetadataWait})
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
		channels:   make(map[string]*rtcio.BroadcastChannel),
		recordings: make(map[string]*recorder.Recording),
		recordAll:  cfg.Recorder != nil && cfg.RecordRoom != nil && cfg.RecordRoom(roomID),
	}
	sock.SetHooks(rtcio.Hooks{
		RemoteTrack:        r.onRemoteTrack,
		RemoteTrackEnded:   r.onRemoteTrackEnded,
		RemoteStreamEvents: r.onStreamEvents,
		Ctrl:               r.relayCtrl,
		ChannelMessage:     r.relayChannel,
	})
	sock.On(rtcio.EventPeerConnect, func(ev *rtcio.Event) { r.replayTo(ev.PeerID) })
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
			ended = append(ended, Notice{Kind: StreamUnpublished, Publisher: rel.key.publisher, Stream: rel.out.ID(), MediaStream: rel.key.msid})
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
	r.local.Close()
	r.log.Info("sfu: gateway peer left")
}

// onRemoteTrack feeds a newly received track into the forwarding plane and,
// when its stream is already relayed, adds it to the relayed stream (the
// subscribers' rtc.io then fires track-added).
func (r *Room) onRemoteTrack(peerID string, rs *rtcio.RemoteStream, track *webrtc.TrackRemote, receiver *webrtc.RTPReceiver) {
	in, err := r.startInbound(r.ctx, track, receiver)
	if err != nil {
		r.log.Error("sfu: cannot forward track", "publisher", peerID, "track", track.ID(), "err", err)
		return
	}
	key := streamKey{peerID, rs.MediaStreamID()}
	r.mu.Lock()
	rel := r.streams[key]
	if rel == nil {
		rel = &relayed{key: key, tracks: make(map[*webrtc.TrackRemote]*inbound)}
		r.streams[key] = rel
	}
	rel.tracks[track] = in
	out := rel.out
	adopted := out != nil && r.adoptTrack(rel, in)
	rec := r.recordingFor(rel)
	r.mu.Unlock()
	if rec != nil && !adopted {
		r.attachRecording(rec, in)
	}
	r.log.Info("sfu: receiving track", "publisher", peerID, "stream", key.msid, "kind", track.Kind().String(), "codec", track.Codec().MimeType, "adopted", adopted)
	if out != nil && !adopted {
		r.addTrack(out, in)
	}
}

func (r *Room) addTrack(out *rtcio.Stream, in *inbound) {
	if err := out.AddTrack(in.out); err != nil {
		r.log.Error("sfu: relay track", "err", err)
	}
}

// onStreamEvents relays a stream once its publisher's metadata arrived: a
// relay stream with the publisher's ids and events, sent to every other
// client.
func (r *Room) onStreamEvents(peerID string, rs *rtcio.RemoteStream, events map[string][]json.RawMessage) {
	key := streamKey{peerID, rs.MediaStreamID()}
	r.mu.Lock()
	rel := r.streams[key]
	if rel == nil || rel.out != nil {
		r.mu.Unlock()
		return
	}
	if orphan := r.orphanFor(rs.ID(), key.msid, peerID); orphan != nil {
		r.adoptLocked(orphan, rel)
		r.mu.Unlock()
		r.continueAdopted(peerID, orphan, events)
		return
	}
	out := rtcio.NewRelayStream(rs.ID(), rs.MediaStreamID())
	out.OnRTCP(r.routeSubscriberRTCP)
	rel.out = out
	rel.events = eventNames(events)
	ins := make([]*inbound, 0, len(rel.tracks))
	for _, in := range rel.tracks {
		ins = append(ins, in)
	}
	r.mu.Unlock()
	for _, in := range ins {
		r.addTrack(out, in)
	}
	if r.cfg.ReceiveOnly {
		r.mu.Lock()
		recordIt := r.recordAll
		r.mu.Unlock()
		if recordIt {
			_ = r.record(rel)
		}
		return
	}
	if err := r.sock.Relay(out, events); err != nil {
		r.log.Error("sfu: relay stream", "err", err)
		return
	}
	var to []string
	for _, id := range r.sock.Peers() {
		if id != peerID {
			to = append(to, id)
		}
	}
	r.sock.SendStream(out, to...)
	r.mu.Lock()
	recordIt := r.recordAll
	r.mu.Unlock()
	if recordIt {
		_ = r.record(rel)
	}
	r.notify(Notice{Kind: StreamPublished, Publisher: peerID, Stream: rs.ID(), MediaStream: key.msid, Events: eventNames(events)})
	r.log.Info("sfu: relaying stream", "publisher", peerID, "stream", rs.ID(), "msid", key.msid, "events", eventNames(events), "subscribers", len(to))
}

// routeSubscriberRTCP hands a subscriber's feedback to the down-track it
// names.
func (r *Room) routeSubscriberRTCP(_ string, track webrtc.TrackLocal, pkts []rtcp.Packet) {
	if ft, ok := track.(*forwardTrack); ok {
		ft.handleRTCP(pkts)
	}
}

// onRemoteTrackEnded removes an ended track from its relayed stream (the
// subscribers see track-removed) and retires the stream when it has no
// track left: untracked, so no later client gets it, and removed from the
// clients that have it.
func (r *Room) onRemoteTrackEnded(peerID string, rs *rtcio.RemoteStream, track *webrtc.TrackRemote, streamEnded bool) {
	key := streamKey{peerID, rs.MediaStreamID()}
	r.mu.Lock()
	rel := r.streams[key]
	var in *inbound
	if rel != nil {
		in = rel.tracks[track]
		delete(rel.tracks, track)
	}
	if in != nil && rel.out != nil && (r.departing[peerID] || !slices.Contains(r.sock.Peers(), peerID)) {
		// The publisher's connection is gone (not a track it stopped):
		// keep the track's publication and subscribers for a while, the
		// publisher may be reconnecting.
		rel.orphans = append(rel.orphans, in)
		if len(rel.tracks) == 0 {
			rel.orphanedAt = time.Now()
			if r.departing[peerID] {
				// Closed because its socket left and its media went
				// silent: the wait for a reconnect began with the silence.
				rel.orphanedAt = time.Unix(0, in.lastPacket.Load())
			}
		}
		r.mu.Unlock()
		return
	}
	retire := rel != nil && (streamEnded || len(rel.tracks) == 0)
	if retire {
		delete(r.streams, key)
	}
	r.mu.Unlock()
	if in == nil {
		return
	}
	if rel.out != nil {
		rel.out.RemoveTrack(in.out)
	}
	in.close()
	if retire && rel.out != nil {
		r.sock.UntrackStream(rel.out)
		r.sock.RemoveStream(rel.out)
		r.notify(Notice{Kind: StreamUnpublished, Publisher: peerID, Stream: rel.out.ID(), MediaStream: key.msid})
		r.log.Info("sfu: stream ended", "publisher", peerID, "stream", rel.out.ID())
	}
}

// replayTo gives a client that just connected every live stream whose
// publisher still tracks it, each on its own so that a silent publisher
// holds up nothing else.
func (r *Room) replayTo(clientID string) {
	if r.cfg.ReceiveOnly {
		return
	}
	r.mu.Lock()
	var candidates, untracked []*relayed
	for _, rel := range r.streams {
		if rel.out == nil || rel.key.publisher == clientID || len(rel.tracks) == 0 {
			continue
		}
		if rel.untracked {
			untracked = append(untracked, rel)
		} else {
			candidates = append(candidates, rel)
		}
	}
	r.mu.Unlock()
	for _, rel := range untracked {
		r.notify(Notice{Kind: StreamNotReplayed, Publisher: rel.key.publisher, Stream: rel.out.ID(), MediaStream: rel.key.msid, Client: clientID})
	}
	for _, rel := range candidates {
		r.loops.Add(1)
		go func() {
			defer r.loops.Done()
			events, err := r.metadata.do(rel.key, func() (map[string][]json.RawMessage, error) {
				ctx, cancel := context.WithTimeout(r.ctx, r.cfg.MetadataWait)
				defer cancel()
				return r.sock.RequestMetadata(ctx, rel.key.publisher, rel.key.msid)
			})
			if err != nil {
				r.log.Info("sfu: not replaying stream the publisher no longer confirms", "client", clientID, "publisher", rel.key.publisher, "stream", rel.out.ID(), "err", err)
				r.notify(Notice{Kind: StreamNotReplayed, Publisher: rel.key.publisher, Stream: rel.out.ID(), MediaStream: rel.key.msid, Client: clientID})
				return
			}
			if err := r.sock.Relay(rel.out, events); err != nil {
				r.log.Warn("sfu: refresh relayed events", "err", err)
				return
			}
			r.sock.SendStream(rel.out, clientID)
			r.notify(Notice{Kind: StreamReplayed, Publisher: rel.key.publisher, Stream: rel.out.ID(), MediaStream: rel.key.msid, Client: clientID, Events: eventNames(events)})
			r.log.Info("sfu: replayed stream", "client", clientID, "publisher", rel.key.publisher, "stream", rel.out.ID(), "events", eventNames(events))
		}()
	}
}

// relayCtrl relays a client's ctrl event to every other client, in order.
func (r *Room) relayCtrl(peerID, name string, raw []json.RawMessage) {
	if r.cfg.ReceiveOnly {
		return
	}
	args := rawArgs(raw)
	for _, id := range r.sock.Peers() {
		if id == peerID {
			continue
		}
		if err := r.sock.Peer(id).Emit(name, args...); err != nil {
			r.log.Debug("sfu: relay ctrl event", "to", id, "event", name, "err", err)
		}
	}
}

// relayChannel relays a broadcast channel frame to every other client.
func (r *Room) relayChannel(peerID, channel string, msg rtcio.ChannelMessage) {
	if r.cfg.ReceiveOnly {
		return
	}
	r.mu.Lock()
	bc := r.channels[channel]
	r.mu.Unlock()
	if bc == nil {
		return
	}
	for _, id := range r.sock.Peers() {
		if id == peerID {
			continue
		}
		c := bc.Peer(id)
		if c == nil {
			continue
		}
		var err error
		if msg.Binary != nil {
			_, err = c.Send(msg.Binary)
		} else {
			err = c.Emit(msg.Name, rawArgs(msg.Raw)...)
		}
		if err != nil {
			r.log.Debug("sfu: relay channel frame", "to", id, "channel", channel, "err", err)
		}
	}
}

// onSignal watches the room's signaling for publishers whose socket left.
func (r *Room) onSignal(event string, args []any) {
	if event != signaling.EventPeerLeft {
		return
	}
	obj, _ := firstObject(args)
	id, _ := obj["id"].(string)
	if id == "" {
		return
	}
	r.mu.Lock()
	r.left[id] = time.Now()
	r.mu.Unlock()
}

// watchDepartures closes the peer of a publisher whose socket left once its
// media stopped too. As in a mesh, media that keeps flowing keeps being
// forwarded; but where a mesh notices a closed page only when the
// connection times out (8 to 10 s), the gateway acts as soon as the socket
// is gone and the media is silent.
func (r *Room) watchDepartures() {
	defer r.loops.Done()
	tick := time.NewTicker(r.cfg.MediaStopGrace / 4)
	defer tick.Stop()
	for {
		select {
		case <-r.ctx.Done():
			return
		case now := <-tick.C:
			for _, id := range r.silentDepartures(now) {
				r.log.Info("sfu: publisher left and its media stopped", "publisher", id)
				r.sock.Peer(id).Close()
			}
			for _, e := range r.expiredOrphans(now) {
				r.retire(e)
			}
		}
	}
}

func (r *Room) silentDepartures(now time.Time) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for id, at := range r.left {
		if now.Sub(at) < r.cfg.MediaStopGrace {
			continue
		}
		silent := true
		for key, rel := range r.streams {
			if key.publisher != id {
				continue
			}
			for _, in := range rel.tracks {
				if in.idleFor(now) < r.cfg.MediaStopGrace {
					silent = false
				}
			}
		}
		if silent {
			out = append(out, id)
			delete(r.left, id)
			r.departing[id] = true
		}
	}
	return out
}

func (r *Room) notify(n Notice) {
	if r.cfg.Notify != nil {
		n.Room = r.id
		r.cfg.Notify(n)
	}
}

// StreamInfo describes one relayed stream.
type StreamInfo struct {
	Publisher   string   `json:"publisher"`
	Stream      string   `json:"stream"`
	MediaStream string   `json:"mediaStream"`
	Events      []string `json:"events"`
	Tracks      int      `json:"tracks"`
	Subscribers int      `json:"subscribers"`
	Untracked   bool     `json:"untracked"`
}

// Streams lists the streams the room relays.
func (r *Room) Streams() []StreamInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []StreamInfo
	for _, rel := range r.streams {
		if rel.out == nil {
			continue
		}
		info := StreamInfo{Publisher: rel.key.publisher, Stream: rel.out.ID(), MediaStream: rel.key.msid,
			Events: rel.events, Tracks: len(rel.tracks), Untracked: rel.untracked}
		for _, in := range rel.tracks {
			info.Subscribers = max(info.Subscribers, len(in.out.downTracks()))
		}
		out = append(out, info)
	}
	slices.SortFunc(out, func(a, b StreamInfo) int { return strings.Compare(a.Stream, b.Stream) })
	return out
}

// Untrack retires a stream for clients that connect from now on, as the
// publisher's own untrackStream would; connected clients keep receiving
// it. by, when not empty, must be the stream's publisher. It reports
// whether the room relays such a stream.
func (r *Room) Untrack(streamID, by string) (bool, error) {
	r.mu.Lock()
	var found *relayed
	for _, rel := range r.streams {
		if rel.out != nil && rel.out.ID() == streamID {
			found = rel
		}
	}
	if found == nil {
		r.mu.Unlock()
		return false, nil
	}
	if by != "" && found.key.publisher != by {
		r.mu.Unlock()
		return true, fmt.Errorf("sfu: only the publisher may untrack stream %s", streamID)
	}
	found.untracked = true
	out := found.out
	r.mu.Unlock()
	r.sock.UntrackStream(out)
	r.log.Info("sfu: stream untracked by the application", "stream", streamID, "by", by)
	return true, nil
}

// dropClient hands a client that left the room to the departure watch
// instead of closing its connection at once: as in a mesh, a publisher
// whose socket.io connection dropped while its media keeps flowing keeps
// being forwarded, and its connection closes once its media is silent
// (after MediaStopGrace for a client that sends nothing).
func (r *Room) dropClient(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.left[id]; !ok {
		r.left[id] = time.Now()
	}
}

// RoomStats is a snapshot of an SFU room's media side.
type RoomStats struct {
	Room string `json:"room"`
	// Peers are the gateway peer's connections, one per client.
	Peers int `json:"peers"`
	// Streams are the relayed streams, Publications their tracks being
	// forwarded, DownTracks the subscriptions to them.
	Streams      int `json:"streams"`
	Publications int `json:"publications"`
	DownTracks   int `json:"downTracks"`
}

// Stats returns a snapshot of the room.
func (r *Room) Stats() RoomStats {
	st := RoomStats{Room: r.id, Peers: len(r.sock.Peers())}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rel := range r.streams {
		st.Streams++
		for _, in := range rel.tracks {
			st.Publications++
			st.DownTracks += len(in.out.downTracks())
		}
		for _, in := range rel.orphans {
			st.Publications++
			st.DownTracks += len(in.out.downTracks())
		}
	}
	return st
}

func rawArgs(raw []json.RawMessage) []any {
	args := make([]any, len(raw))
	for i, a := range raw {
		args[i] = a
	}
	return args
}

func firstObject(args []any) (map[string]any, bool) {
	if len(args) == 0 {
		return nil, false
	}
	m, ok := args[0].(map[string]any)
	return m, ok
}

func eventNames(events map[string][]json.RawMessage) []string {
	names := make([]string, 0, len(events))
	for k := range events {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}
