package rtcio

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/pion/webrtc/v4"
)

// Channel event names fired on a Channel by the library itself.
const (
	ChannelEventOpen  = "open"
	ChannelEventClose = "close"
	ChannelEventDrain = "drain"
	ChannelEventData  = "data"
)

// Backpressure defaults for custom channels.
const (
	DefaultHighWatermark = 1 << 20
	DefaultLowWatermark  = 256 << 10
	DefaultQueueBudget   = 1 << 20
)

// ChannelOptions map to the DataChannel init (docs/PROTOCOL.md section 5) plus
// send-side backpressure settings.
type ChannelOptions struct {
	Ordered           *bool
	MaxRetransmits    *uint16
	MaxPacketLifeTime *uint16
	// HighWatermark: Send reports false once this many bytes are buffered.
	HighWatermark uint64
	// LowWatermark: the "drain" event fires when the buffer falls to it.
	LowWatermark uint64
	// QueueBudget bounds the bytes queued before the channel opens.
	QueueBudget int
}

func (o ChannelOptions) withDefaults() ChannelOptions {
	if o.HighWatermark == 0 {
		o.HighWatermark = DefaultHighWatermark
	}
	if o.LowWatermark == 0 || o.LowWatermark > o.HighWatermark {
		o.LowWatermark = min(DefaultLowWatermark, o.HighWatermark/2)
	}
	if o.QueueBudget <= 0 {
		o.QueueBudget = DefaultQueueBudget
	}
	return o
}

var (
	// ErrChannelClosed is returned by sends on a closed channel.
	ErrChannelClosed = errors.New("rtcio: channel closed")
	// ErrQueueFull is returned when a send before open exceeds QueueBudget.
	ErrQueueFull = errors.New("rtcio: channel pre-open queue budget exceeded")
	// ErrHashCollision is returned when two channel names map to one id.
	ErrHashCollision = errors.New("rtcio: channel name hash collision")
)

type frame struct {
	text bool
	b    []byte
}

// Channel is one named custom data channel to one peer. Text frames are
// {e, d} envelopes dispatched as events; binary frames are "data" events
// (Event.Args[0] is the []byte).
type Channel struct {
	name   string
	peerID string
	id     uint16
	opts   ChannelOptions
	s      *Socket
	parent *BroadcastChannel
	ls     listeners

	mu     sync.Mutex
	dc     *webrtc.DataChannel
	open   bool
	closed bool
	queue  []frame
	queued int
	drain  chan struct{} // closed when the buffer is at or below low water
}

func newChannel(s *Socket, peerID, name string, opts ChannelOptions) *Channel {
	d := make(chan struct{})
	close(d)
	return &Channel{name: name, peerID: peerID, id: ChannelID(name), opts: opts.withDefaults(), s: s, drain: d}
}

// Name is the channel name; PeerID the remote peer.
func (c *Channel) Name() string   { return c.name }
func (c *Channel) PeerID() string { return c.peerID }

// ID is the negotiated SCTP stream id.
func (c *Channel) ID() uint16 { return c.id }

// attach binds a pion data channel right after its creation. The message
// handler goes first: a negotiated channel created while SCTP is up is
// already open, and pion drops what arrives before a handler is set.
func (c *Channel) attach(dc *webrtc.DataChannel) {
	dc.OnMessage(c.onMessage)
	c.mu.Lock()
	c.dc = dc
	c.mu.Unlock()
	dc.SetBufferedAmountLowThreshold(c.opts.LowWatermark)
	dc.OnBufferedAmountLow(func() {
		c.mu.Lock()
		fire := c.releaseDrainLocked()
		c.mu.Unlock()
		if fire {
			c.fire(&Event{Name: ChannelEventDrain, PeerID: c.peerID})
		}
	})
	dc.OnOpen(func() {
		c.mu.Lock()
		if c.closed || c.open {
			c.mu.Unlock()
			return
		}
		c.open = true
		q := c.queue
		c.queue, c.queued = nil, 0
		for i, f := range q {
			if err := c.writeLocked(f); err != nil {
				c.s.log.Warn("rtcio: channel flush failed; dropping the rest of the pre-open queue",
					"channel", c.name, "peer", c.peerID, "dropped", len(q)-i, "err", err)
				break
			}
		}
		// The queue may have held the channel above low water (Send said
		// so); if what is left in pion's buffer is already below it, no
		// buffered-amount-low callback will come, so release here.
		fire := false
		if c.dc.BufferedAmount() <= c.opts.LowWatermark {
			fire = c.releaseDrainLocked()
		}
		c.mu.Unlock()
		c.fire(&Event{Name: ChannelEventOpen, PeerID: c.peerID})
		if fire {
			c.fire(&Event{Name: ChannelEventDrain, PeerID: c.peerID})
		}
	})
	dc.OnClose(c.detach)
}

// holdDrainLocked marks the channel as above low water: Drain blocks until
// releaseDrainLocked. c.mu must be held.
func (c *Channel) holdDrainLocked() {
	select {
	case <-c.drain:
		c.drain = make(chan struct{})
	default:
	}
}

// releaseDrainLocked unblocks Drain and reports whether it was held (so a
// "drain" event is due). c.mu must be held.
func (c *Channel) releaseDrainLocked() bool {
	select {
	case <-c.drain:
		return false
	default:
		close(c.drain)
		return true
	}
}

// detach marks the channel closed (its data channel or its peer went away,
// or Close) and wakes WaitDrain callers, whose next send then fails.
func (c *Channel) detach() {
	c.mu.Lock()
	was := c.closed
	c.closed, c.open = true, false
	c.queue, c.queued = nil, 0
	c.releaseDrainLocked()
	c.mu.Unlock()
	if !was {
		c.fire(&Event{Name: ChannelEventClose, PeerID: c.peerID})
	}
}

func (c *Channel) onMessage(msg webrtc.DataChannelMessage) {
	hook := c.s.getHooks().ChannelMessage
	if !msg.IsString {
		b := append([]byte(nil), msg.Data...)
		if hook != nil {
			c.s.disp.post(func() { hook(c.peerID, c.name, ChannelMessage{Binary: b}) })
		}
		c.fire(&Event{Name: ChannelEventData, PeerID: c.peerID, Args: []any{b}})
		return
	}
	name, raw, err := decodeEnvelope(msg.Data)
	if err == nil && isChannelEvent(name) {
		err = fmt.Errorf("%w %q", errReserved, name)
	}
	if err != nil {
		c.s.log.Warn("rtcio: channel: dropping frame", "channel", c.name, "peer", c.peerID, "bytes", len(msg.Data), "err", err)
		return
	}
	if hook != nil {
		c.s.disp.post(func() { hook(c.peerID, c.name, ChannelMessage{Name: name, Raw: raw}) })
	}
	c.fire(&Event{Name: name, PeerID: c.peerID, Args: decodeArgs(raw, nil), Raw: raw})
}

func isChannelEvent(name string) bool {
	switch name {
	case ChannelEventOpen, ChannelEventClose, ChannelEventDrain, ChannelEventData:
		return true
	}
	return false
}

// fire delivers to this channel's listeners and its broadcast parent's.
func (c *Channel) fire(ev *Event) {
	c.mu.Lock()
	parent := c.parent
	c.mu.Unlock()
	c.s.disp.post(func() {
		for _, h := range c.ls.take(ev.Name) {
			h(ev)
		}
		if parent != nil {
			for _, h := range parent.ls.take(ev.Name) {
				h(ev)
			}
		}
	})
}

// On registers h for an event on this channel.
func (c *Channel) On(name string, h Handler) ListenerID { return c.ls.register(c.s, name, h, false) }

// Once is On for a single delivery.
func (c *Channel) Once(name string, h Handler) ListenerID { return c.ls.register(c.s, name, h, true) }

// Off removes a handler (all for name when id is 0).
func (c *Channel) Off(name string, id ListenerID) { c.ls.off(name, id) }

// Emit sends an {e, d} text envelope.
func (c *Channel) Emit(name string, args ...any) error {
	b, err := encodeEnvelope(name, c.s.stripAck(name, args))
	if err != nil {
		return err
	}
	_, err = c.send(frame{text: true, b: b})
	return err
}

// Send sends a binary frame. It reports false when the buffered amount is
// above the high watermark: wait for Drain (or the "drain" event) before
// sending more.
func (c *Channel) Send(b []byte) (bool, error) {
	return c.send(frame{b: append([]byte(nil), b...)})
}

func (c *Channel) send(f frame) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false, ErrChannelClosed
	}
	if !c.open {
		if c.queued+len(f.b) > c.opts.QueueBudget {
			return false, ErrQueueFull
		}
		c.queue = append(c.queue, f)
		c.queued += len(f.b)
		if uint64(c.queued) > c.opts.LowWatermark {
			// Queued bytes count like buffered ones: a sender told to
			// wait must find Drain blocked until the flush lets it go.
			c.holdDrainLocked()
		}
		return uint64(c.queued) < c.opts.HighWatermark, nil
	}
	if err := c.writeLocked(f); err != nil {
		return false, err
	}
	return c.dc.BufferedAmount() < c.opts.HighWatermark, nil
}

func (c *Channel) writeLocked(f frame) error {
	var err error
	if f.text {
		err = c.dc.SendText(string(f.b))
	} else {
		err = c.dc.Send(f.b)
	}
	if err != nil {
		return fmt.Errorf("rtcio: channel %q send: %w", c.name, err)
	}
	if c.dc.BufferedAmount() > c.opts.LowWatermark {
		c.holdDrainLocked()
	}
	return nil
}

// BufferedAmount is the number of bytes queued in the data channel.
func (c *Channel) BufferedAmount() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dc == nil || !c.open {
		return uint64(c.queued)
	}
	return c.dc.BufferedAmount()
}

// Drain returns a channel that is closed once the buffered amount is at or
// below the low watermark.
func (c *Channel) Drain() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.drain
}

// WaitDrain blocks until Drain fires, the channel closes, or ctx ends.
func (c *Channel) WaitDrain(ctx context.Context) error {
	select {
	case <-c.Drain():
		return nil
	case <-ctx.Done():
		return fmt.Errorf("rtcio: channel %q drain: %w", c.name, ctx.Err())
	}
}

// IsOpen reports whether the channel is open.
func (c *Channel) IsOpen() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.open
}

// Close closes the channel.
func (c *Channel) Close() error {
	c.mu.Lock()
	dc := c.dc
	c.mu.Unlock()
	if dc != nil {
		if err := dc.Close(); err != nil {
			return fmt.Errorf("rtcio: close channel %q: %w", c.name, err)
		}
	}
	c.detach()
	return nil
}

// channel returns (creating if needed) the named channel to this peer. Two
// names with one id on one peer is an error.
//
// The negotiated data channel is created before channel returns, not later
// on the actor: once SCTP is up, a frame the remote sends on a stream id we
// have no channel for yet is taken by pion's in-band channel acceptor and
// lost. So when both ends have returned from CreateChannel, every later
// message arrives; a message sent before the receiving end created its
// channel can still be lost, as between two browsers.
func (p *peer) channel(name string, opts ChannelOptions) (*Channel, error) {
	p.mu.Lock()
	if c := p.channels[name]; c != nil {
		p.mu.Unlock()
		return c, nil
	}
	id := ChannelID(name)
	if taken, ok := p.channelIDs[id]; ok && taken != name {
		p.mu.Unlock()
		return nil, fmt.Errorf("%w: %q and %q both hash to SCTP id %d on peer %s; pick another name", ErrHashCollision, name, taken, id, p.id)
	}
	if p.closed {
		p.mu.Unlock()
		return nil, fmt.Errorf("rtcio: channel %q: %w", name, errNoPeer)
	}
	c := newChannel(p.s, p.id, name, opts)
	p.channelIDs[id] = name
	p.channels[name] = c
	p.mu.Unlock()
	// Outside p.mu: pion may call back into handlers that take it. A
	// concurrent shutdown either saw c in p.channels and detaches it, or
	// closed the connection first and the creation below fails.
	p.openChannel(c)
	return c, nil
}

// openChannel creates the negotiated data channel and binds it to c.
func (p *peer) openChannel(c *Channel) {
	negotiated := true
	id := c.id
	init := &webrtc.DataChannelInit{
		ID: &id, Negotiated: &negotiated, Ordered: c.opts.Ordered,
		MaxRetransmits: c.opts.MaxRetransmits, MaxPacketLifeTime: c.opts.MaxPacketLifeTime,
	}
	dc, err := p.pc.CreateDataChannel(ChannelLabelPrefix+c.name, init)
	if err != nil {
		p.log.Error("rtcio: create channel", "channel", c.name, "err", err)
		c.detach()
		return
	}
	c.attach(dc)
}

// replayChannels opens every broadcast channel on this peer; actor only.
func (p *peer) replayChannels() {
	p.s.mu.Lock()
	defs := append([]chanDef(nil), p.s.chanDefs...)
	p.s.mu.Unlock()
	for _, d := range defs {
		c, err := p.channel(d.name, d.opts)
		if err != nil {
			p.log.Error("rtcio: replay channel", "channel", d.name, "err", err)
			continue
		}
		p.s.mu.Lock()
		b := p.s.bchans[d.name]
		p.s.mu.Unlock()
		if b != nil {
			b.addPeer(p.id, c)
		}
	}
}

// BroadcastChannel is a named channel opened on every current and future
// peer. Its listeners receive the events of every peer's channel.
type BroadcastChannel struct {
	name string
	s    *Socket
	ls   listeners
	mu   sync.Mutex
	per  map[string]*Channel
}

// CreateChannel opens (or returns) the broadcast channel name on every peer
// now and later. Both ends must create it.
func (s *Socket) CreateChannel(name string, opts ChannelOptions) (*BroadcastChannel, error) {
	s.mu.Lock()
	b := s.bchans[name]
	if b == nil {
		b = &BroadcastChannel{name: name, s: s, per: make(map[string]*Channel)}
		s.bchans[name] = b
		s.chanDefs = append(s.chanDefs, chanDef{name: name, opts: opts})
	}
	peers := s.peerList()
	s.mu.Unlock()
	var errs []error
	for _, p := range peers {
		c, err := p.channel(name, opts)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		b.addPeer(p.id, c)
	}
	return b, errors.Join(errs...)
}

func (b *BroadcastChannel) addPeer(id string, c *Channel) {
	c.mu.Lock()
	c.parent = b
	c.mu.Unlock()
	b.mu.Lock()
	defer b.mu.Unlock()
	b.per[id] = c
}

func (b *BroadcastChannel) removePeer(id string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.per, id)
}

// Name is the channel name.
func (b *BroadcastChannel) Name() string { return b.name }

// Peer returns the channel to one peer, or nil.
func (b *BroadcastChannel) Peer(id string) *Channel {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.per[id]
}

func (b *BroadcastChannel) channels() []*Channel {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]*Channel, 0, len(b.per))
	for _, c := range b.per {
		out = append(out, c)
	}
	return out
}

// Emit sends an envelope on every peer's channel.
func (b *BroadcastChannel) Emit(name string, args ...any) error {
	var errs []error
	for _, c := range b.channels() {
		if err := c.Emit(name, args...); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Send sends a binary frame to every peer; false if any is above its high
// watermark.
func (b *BroadcastChannel) Send(data []byte) (bool, error) {
	ok := true
	var errs []error
	for _, c := range b.channels() {
		w, err := c.Send(data)
		if err != nil {
			errs = append(errs, err)
		}
		ok = ok && w
	}
	return ok, errors.Join(errs...)
}

// On registers h for an event from any peer's channel.
func (b *BroadcastChannel) On(name string, h Handler) ListenerID {
	return b.ls.register(b.s, name, h, false)
}

// Off removes a handler (all for name when id is 0).
func (b *BroadcastChannel) Off(name string, id ListenerID) { b.ls.off(name, id) }
