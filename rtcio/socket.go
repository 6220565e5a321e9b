package rtcio

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"reflect"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v4"
)

// Socket is a Go rtc.io peer: it joins the mesh of whatever room its
// signaling connection is in, negotiates one peer connection per remote
// peer, and mirrors the JavaScript client's API.
type Socket struct {
	sig      Signaling
	opts     Options
	api      *webrtc.API
	log      *slog.Logger
	disp     *dispatcher
	ids      atomic.Uint64
	global   listeners // every event, as the JavaScript Socket's emitter
	server   listeners // signaling events only (Server().On)
	unsub    func()
	closeSig func()
	wg       sync.WaitGroup // peer actors
	ctx      context.Context
	cancel   context.CancelFunc

	mu            sync.Mutex
	closed        bool
	peers         map[string]*peer
	registry      map[string]*published // by Stream.ID()
	regOrder      []string
	chanDefs      []chanDef
	bchans        map[string]*BroadcastChannel
	peerListeners map[string]*listeners
	metaWaiters   map[metaKey][]chan map[string][]json.RawMessage
	hooks         Hooks
}

// Hooks are Go-only callbacks for code that relays media (the gateway).
// They run on the dispatch goroutine like event handlers.
type Hooks struct {
	// RemoteTrack fires for every received track, including the first
	// track of a new stream (which fires no track-added event).
	RemoteTrack func(peerID string, stream *RemoteStream, track *webrtc.TrackRemote, receiver *webrtc.RTPReceiver)
	// RemoteTrackEnded fires when a received track went inactive or away, or
	// its peer closed; streamEnded is true when the stream has no tracks left.
	RemoteTrackEnded func(peerID string, stream *RemoteStream, track *webrtc.TrackRemote, streamEnded bool)
	// RemoteStreamEvents fires when the first metadata answer for a
	// received stream arrives, with its events verbatim (stream
	// placeholders included), whatever their names.
	RemoteStreamEvents func(peerID string, stream *RemoteStream, events map[string][]json.RawMessage)
	// Ctrl fires for every ctrl-channel event a peer sends that passed the
	// receive filters, whatever its name, before its listeners run.
	Ctrl func(peerID, name string, raw []json.RawMessage)
	// ChannelMessage fires for every frame a custom channel receives that
	// passed the receive filters: a text envelope (Name, Raw) or binary
	// data (Binary).
	ChannelMessage func(peerID, channel string, msg ChannelMessage)
	// ChannelAcceptFailed fires when data arrived on an SCTP stream of a
	// peer that no channel of ours is open on. rtc.io opens every custom
	// channel as a negotiated channel and sends no DCEP OPEN, so pion
	// takes the first message for an OPEN, fails, and accepts no further
	// stream on that connection: the message is lost, and the stream's
	// later data stays unread in the connection's SCTP receive buffer.
	// pion does not say which stream it was.
	ChannelAcceptFailed func(peerID string, err error)
	// RelayedMetadata, when set, may take over the answer to a peer's
	// metadata request ({mid}) for a stream registered with Relay: a
	// relay of relays must ask the stream's owner again rather than
	// answer from what it stored. It runs on the peer's goroutine and
	// must not block. Returning false answers from the stored events as
	// without the hook; returning true leaves the answer to the hook,
	// which calls answer at most once, from any goroutine, with the
	// events to send, or never: no answer is what a peer that stopped
	// tracking a stream gives.
	RelayedMetadata func(peerID string, st *Stream, answer func(events map[string][]json.RawMessage)) bool
}

// ChannelMessage is one frame received on a custom channel.
type ChannelMessage struct {
	Name   string
	Raw    []json.RawMessage
	Binary []byte
}

type published struct {
	stream *Stream
	events map[string][]any
	// relayed, when set, are events copied verbatim from another owner
	// (see Relay); such a stream is never replayed automatically.
	relayed map[string][]json.RawMessage
}

type chanDef struct {
	name string
	opts ChannelOptions
}

type metaKey struct{ peer, msid string }

// New attaches a Socket to an already connected Signaling. Every later
// "connect" the Signaling reports is treated as a reconnect.
func New(sig Signaling, opts Options) (*Socket, error) {
	if sig == nil {
		return nil, fmt.Errorf("rtcio: New: nil Signaling")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	opts.Watchdog = opts.Watchdog.withDefaults()
	if opts.MetadataTimeout <= 0 {
		opts.MetadataTimeout = 5 * time.Second
	}
	api := opts.API
	if api == nil {
		api = webrtc.NewAPI()
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Socket{
		sig:           sig,
		opts:          opts,
		api:           api,
		log:           opts.Logger.With("rtcio", sig.ID()),
		ctx:           ctx,
		cancel:        cancel,
		peers:         make(map[string]*peer),
		registry:      make(map[string]*published),
		bchans:        make(map[string]*BroadcastChannel),
		peerListeners: make(map[string]*listeners),
		metaWaiters:   make(map[metaKey][]chan map[string][]json.RawMessage),
	}
	s.disp = newDispatcher(s.log)
	s.unsub = sig.Subscribe(s.onSignal)
	return s, nil
}

// ID is the signaling id other peers know this Socket by.
func (s *Socket) ID() string { return s.sig.ID() }

// SetHooks installs the Go-only media hooks.
func (s *Socket) SetHooks(h Hooks) {
	s.mu.Lock()
	s.hooks = h
	s.mu.Unlock()
}

func (s *Socket) getHooks() Hooks {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hooks
}

// Close tears down every peer (firing peer-disconnect where peer-connect
// fired), stops listening to signaling, disconnects a Dial'ed connection and
// waits for every goroutine the Socket started.
func (s *Socket) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	peers := make([]*peer, 0, len(s.peers))
	for _, p := range s.peers {
		peers = append(peers, p)
	}
	s.peers = make(map[string]*peer)
	waiters := s.metaWaiters
	s.metaWaiters = nil
	s.mu.Unlock()
	s.unsub()
	for _, p := range peers {
		p.cancel()
	}
	s.wg.Wait()
	for _, ws := range waiters {
		for _, w := range ws {
			close(w)
		}
	}
	s.cancel()
	s.disp.close()
	if s.closeSig != nil {
		s.closeSig()
	}
	return nil
}

func (s *Socket) nextID() ListenerID { return ListenerID(s.ids.Add(1)) }

// On registers h for event name: ctrl events from any peer, stream events
// (metadata answers), lifecycle events, and, as in the JavaScript client
// whose Socket is also the socket.io emitter, server events.
func (s *Socket) On(name string, h Handler) ListenerID { return s.global.register(s, name, h, false) }

// Once is On for a single delivery.
func (s *Socket) Once(name string, h Handler) ListenerID { return s.global.register(s, name, h, true) }

// Off removes one handler, or every handler for name when id is 0.
func (s *Socket) Off(name string, id ListenerID) { s.global.off(name, id) }

// fire queues delivery of ev to the global listeners and, for ctrl events,
// the per-peer listeners of ev.PeerID.
func (s *Socket) fire(ev *Event, perPeer bool) {
	s.disp.post(func() {
		for _, h := range s.global.take(ev.Name) {
			h(ev)
		}
		if perPeer {
			s.mu.Lock()
			pl := s.peerListeners[ev.PeerID]
			s.mu.Unlock()
			if pl != nil {
				for _, h := range pl.take(ev.Name) {
					h(ev)
				}
			}
		}
	})
}

// stripAck drops a trailing func argument: there is no ack over a data
// channel, as in the JavaScript client.
func (s *Socket) stripAck(ev string, args []any) []any {
	if n := len(args); n > 0 && args[n-1] != nil && reflect.TypeOf(args[n-1]).Kind() == reflect.Func {
		s.log.Warn("rtcio: ack callbacks are not supported over peer transport; dropping it", "event", ev)
		return args[:n-1]
	}
	return args
}

// Emit sends an event the way the JavaScript client's emit does:
//   - if some argument holds a *Stream, the stream is published: args are
//     recorded in the replay registry under (stream, name) and the stream's
//     tracks are added to every peer (and every later peer);
//   - names starting with "#rtcio:" go to the signaling server;
//   - anything else is broadcast as a ctrl envelope to every peer.
func (s *Socket) Emit(name string, args ...any) error {
	if st := findStream(args); st != nil {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return errClosed
		}
		pub := s.registered(st)
		if pub.events == nil {
			pub.events = make(map[string][]any)
		}
		pub.relayed = nil
		pub.events[name] = append([]any(nil), args...)
		peers := s.peerList()
		s.mu.Unlock()
		for _, p := range peers {
			p.post(func() { p.attachStream(st) })
		}
		return nil
	}
	if strings.HasPrefix(name, InternalPrefix) {
		return s.sig.Emit(name, args...)
	}
	args = s.stripAck(name, args)
	b, err := encodeEnvelope(name, args)
	if err != nil {
		return err
	}
	s.mu.Lock()
	peers := s.peerList()
	s.mu.Unlock()
	for _, p := range peers {
		p.sendCtrl(b)
	}
	return nil
}

// peerList snapshots the peers; s.mu must be held.
// peersByID returns the peers with these ids that exist.
func (s *Socket) peersByID(ids []string) []*peer {
	s.mu.Lock()
	defer s.mu.Unlock()
	var peers []*peer
	for _, id := range ids {
		if p := s.peers[id]; p != nil {
			peers = append(peers, p)
		}
	}
	return peers
}

// registered returns st's replay-registry entry, adding it (last in
// replay order) when new. s.mu must be held.
func (s *Socket) registered(st *Stream) *published {
	pub := s.registry[st.id]
	if pub == nil {
		pub = &published{stream: st}
		s.registry[st.id] = pub
		s.regOrder = append(s.regOrder, st.id)
	}
	return pub
}

func (s *Socket) peerList() []*peer {
	ps := make([]*peer, 0, len(s.peers))
	for _, p := range s.peers {
		ps = append(ps, p)
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].id < ps[j].id })
	return ps
}

// Peers returns the ids of the current peers, sorted.
func (s *Socket) Peers() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]string, 0, len(s.peers))
	for id := range s.peers {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// UntrackStream drops a stream from the replay registry: peers connected
// later will not receive it and the Socket stops answering metadata
// requests for it. Connected peers keep receiving it.
func (s *Socket) UntrackStream(st *Stream) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.registry[st.id]; !ok {
		return
	}
	delete(s.registry, st.id)
	for i, id := range s.regOrder {
		if id == st.id {
			s.regOrder = append(s.regOrder[:i:i], s.regOrder[i+1:]...)
			break
		}
	}
}

// RemoveStream stops sending st to the given peers (every peer when none is
// given): each of its senders stops and its transceiver goes inactive, so
// the receivers fire track-removed. It does not touch the replay registry;
// pair it with UntrackStream to retire a stream completely.
func (s *Socket) RemoveStream(st *Stream, peerIDs ...string) {
	peers := s.peersByID(peerIDs)
	if len(peerIDs) == 0 {
		s.mu.Lock()
		peers = s.peerList()
		s.mu.Unlock()
	}
	for _, p := range peers {
		p.post(func() { p.detachStream(st) })
	}
}

// registeredStreams returns the replay registry's streams in publish order.
func (s *Socket) registeredStreams() []*Stream {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*Stream, 0, len(s.regOrder))
	for _, id := range s.regOrder {
		if pub := s.registry[id]; pub.relayed == nil {
			out = append(out, pub.stream)
		}
	}
	return out
}

// streamEvents serialises the registry entry of a stream for a metadata
// answer; nil when the stream is not (or no longer) registered.
func (s *Socket) streamEvents(st *Stream) (map[string][]json.RawMessage, error) {
	if raw, ok := s.RelayedEvents(st); ok {
		return raw, nil
	}
	s.mu.Lock()
	pub := s.registry[st.id]
	var events map[string][]any
	if pub != nil {
		events = make(map[string][]any, len(pub.events))
		for k, v := range pub.events {
			events[k] = v
		}
	}
	s.mu.Unlock()
	if len(events) == 0 {
		return nil, nil
	}
	out := make(map[string][]json.RawMessage, len(events))
	for name, args := range events {
		raws := make([]json.RawMessage, len(args))
		for i, a := range args {
			b, err := json.Marshal(a)
			if err != nil {
				return nil, fmt.Errorf("rtcio: serialise %q arg %d: %w", name, i, err)
			}
			raws[i] = b
		}
		out[name] = raws
	}
	return out, nil
}

// RequestMetadata asks peerID again for the events of the stream it sends
// under MediaStream id msid and returns the fresh answer. The owner stays
// silent for a stream it no longer tracks, so that case ends in a timeout
// (ctx's deadline, or Options.MetadataTimeout). An answer that a waiter
// takes does not fire the stream's event listeners again.
func (s *Socket) RequestMetadata(ctx context.Context, peerID, msid string) (map[string][]json.RawMessage, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.opts.MetadataTimeout)
		defer cancel()
	}
	ch := make(chan map[string][]json.RawMessage, 1)
	k := metaKey{peerID, msid}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, errClosed
	}
	s.metaWaiters[k] = append(s.metaWaiters[k], ch)
	s.mu.Unlock()
	defer s.dropWaiter(k, ch)
	if err := s.sendMessage(peerID, map[string]any{"mid": msid}); err != nil {
		return nil, err
	}
	select {
	case ev, ok := <-ch:
		if !ok {
			return nil, errClosed
		}
		return ev, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("rtcio: metadata of %s from %s: %w", msid, peerID, ctx.Err())
	}
}

func (s *Socket) dropWaiter(k metaKey, ch chan map[string][]json.RawMessage) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ws := s.metaWaiters[k]
	for i, w := range ws {
		if w == ch {
			s.metaWaiters[k] = append(ws[:i:i], ws[i+1:]...)
			break
		}
	}
	if len(s.metaWaiters[k]) == 0 {
		delete(s.metaWaiters, k)
	}
}

// deliverMeta hands an answer to waiters; it reports whether any took it.
func (s *Socket) deliverMeta(peerID, msid string, ev map[string][]json.RawMessage) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := metaKey{peerID, msid}
	ws := s.metaWaiters[k]
	delete(s.metaWaiters, k)
	for _, w := range ws {
		w <- ev
	}
	return len(ws) > 0
}

// sendMessage emits one #rtcio:message to target.
func (s *Socket) sendMessage(target string, data any) error {
	return s.sig.Emit(EventMessage, map[string]any{"source": s.sig.ID(), "target": target, "data": data})
}

// Server is the socket.io escape hatch: events that go straight through the
// signaling server, bypassing the data channels.
func (s *Socket) Server() *ServerHandle { return &ServerHandle{s: s} }

// ServerHandle emits to and listens on the signaling server directly.
type ServerHandle struct{ s *Socket }

// Emit sends an event to the signaling server.
func (h *ServerHandle) Emit(name string, args ...any) error { return h.s.sig.Emit(name, args...) }

// On registers h for a server event.
func (h *ServerHandle) On(name string, fn Handler) ListenerID {
	return h.s.server.register(h.s, name, fn, false)
}

// Once is On for a single delivery.
func (h *ServerHandle) Once(name string, fn Handler) ListenerID {
	return h.s.server.register(h.s, name, fn, true)
}

// Off removes a server handler (all for name when id is 0).
func (h *ServerHandle) Off(name string, id ListenerID) { h.s.server.off(name, id) }
