package rtcio

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"
)

// maxPendingCandidates bounds candidates parked before a remote description.
const maxPendingCandidates = 512

// peer is one remote participant and its peer connection. Everything that
// touches the connection's negotiation runs on the peer's actor goroutine,
// one task at a time, which gives the strict per-peer ordering of signaling
// that docs/PROTOCOL.md section 4 requires.
type peer struct {
	s      *Socket
	id     string
	polite bool
	log    *slog.Logger
	pc     *webrtc.PeerConnection
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	rtcpWG sync.WaitGroup
	// rtcpSenders are the senders readRTCP reads; shutdown stops them all,
	// since a sender swapped out of its transceiver is not stopped by the
	// peer connection's Close and its Read would block for ever.
	rtcpSenders []*webrtc.RTPSender

	qmu   sync.Mutex
	queue []func()
	wake  chan struct{}

	// Actor-only state.
	ignoreOffer   bool
	negPending    bool
	forceNeg      bool
	restartICEReq bool
	firstDesc     bool
	// pendingOffer is the polite side's sent but not yet applied offer
	// (see negotiate.go); pendingRestart says it restarts ICE.
	pendingOffer   *webrtc.SessionDescription
	pendingRestart bool
	midSeq         int
	pendingCands   []webrtc.ICECandidateInit
	senders        map[*Stream][]*webrtc.RTPTransceiver
	local          map[string]*Stream // by MediaStream id
	recv           map[string]*recvInfo
	wdTimer        *time.Timer
	hintAt         time.Time

	mu           sync.Mutex
	closed       bool
	ctrl         *webrtc.DataChannel
	ctrlOpen     bool
	ctrlClosed   bool
	ctrlQueue    [][]byte
	connectFired bool
	offerOut     bool // an offer of ours awaits its answer
	rollbacks    int  // colliding offers taken by dropping ours (polite)
	ignored      int  // colliding offers ignored (impolite)
	offersSent   int  // offers this side sent
	offersRecvd  int  // offers the remote side sent (applied or not)
	channels     map[string]*Channel
	channelIDs   map[uint16]string
	remote       map[string]*RemoteStream // by MediaStream id
}

// recvInfo remembers a received track by transceiver mid.
type recvInfo struct {
	receiver *webrtc.RTPReceiver
	track    *webrtc.TrackRemote
	stream   *RemoteStream
}

// newPeer creates the connection and its ctrl channel and starts the actor.
// first, when set, is the actor's first task: it runs before the
// negotiation that creating the ctrl channel asks for, so what it adds goes
// into the first offer. s.mu must be held.
func (s *Socket) newPeer(id string, polite bool, first func(*peer)) (*peer, error) {
	newPC := func(id string, c webrtc.Configuration) (*webrtc.PeerConnection, error) {
		return s.api.NewPeerConnection(c)
	}
	if s.opts.NewPeerConnection != nil {
		newPC = s.opts.NewPeerConnection
	}
	pc, err := newPC(id, webrtc.Configuration{ICEServers: s.opts.ICEServers})
	if err != nil {
		return nil, fmt.Errorf("rtcio: new peer connection for %s: %w", id, err)
	}
	ctx, cancel := context.WithCancel(s.ctx)
	p := &peer{
		s: s, id: id, polite: polite, pc: pc, ctx: ctx, cancel: cancel,
		log:        s.log.With("peer", id, "polite", polite),
		done:       make(chan struct{}),
		wake:       make(chan struct{}, 1),
		senders:    make(map[*Stream][]*webrtc.RTPTransceiver),
		local:      make(map[string]*Stream),
		recv:       make(map[string]*recvInfo),
		channels:   make(map[string]*Channel),
		channelIDs: make(map[uint16]string),
		remote:     make(map[string]*RemoteStream),
	}
	if first != nil {
		p.queue = append(p.queue, func() { first(p) })
		p.wake <- struct{}{}
	}
	pc.OnNegotiationNeeded(func() { p.post(p.requestNegotiation) })
	pc.OnICECandidate(func(c *webrtc.ICECandidate) {
		if c == nil {
			return
		}
		init := c.ToJSON()
		// Through the actor, so a candidate never overtakes the offer or
		// answer whose SetLocalDescription produced it.
		p.post(func() {
			if err := s.sendMessage(p.id, map[string]any{"candidate": init}); err != nil {
				p.log.Warn("rtcio: send candidate", "err", err)
			}
		})
	})
	pc.OnTrack(func(t *webrtc.TrackRemote, r *webrtc.RTPReceiver) { p.post(func() { p.handleTrack(t, r) }) })
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) { p.post(func() { p.handleState(st) }) })
	pc.OnDataChannel(func(dc *webrtc.DataChannel) {
		// Every rtc.io channel is negotiated; anything announced in-band
		// comes from a non-rtc.io peer.
		p.log.Warn("rtcio: closing unexpected in-band data channel", "label", dc.Label())
		_ = dc.Close()
	})
	pc.SCTP().OnError(func(err error) {
		if hook := s.getHooks().ChannelAcceptFailed; hook != nil {
			s.disp.post(func() { hook(id, err) })
		}
	})
	if err := p.createCtrl(); err != nil {
		_ = pc.Close()
		cancel()
		return nil, err
	}
	s.peers[id] = p
	s.wg.Add(1)
	go p.run()
	p.log.Debug("rtcio: peer created")
	return p, nil
}

// post queues a task for the actor; it never blocks, and tasks queued after
// the peer closed are dropped.
func (p *peer) post(fn func()) {
	p.qmu.Lock()
	if p.ctx.Err() != nil {
		p.qmu.Unlock()
		return
	}
	p.queue = append(p.queue, fn)
	p.qmu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

func (p *peer) run() {
	defer p.s.wg.Done()
	defer close(p.done)
	defer p.shutdown()
	for {
		var wd <-chan time.Time
		if p.wdTimer != nil {
			wd = p.wdTimer.C
		}
		select {
		case <-p.ctx.Done():
			return
		case <-wd:
			p.wdTimer = nil
			p.watchdogExpired()
		case <-p.wake:
			p.qmu.Lock()
			q := p.queue
			p.queue = nil
			p.qmu.Unlock()
			for _, fn := range q {
				if p.ctx.Err() != nil {
					return
				}
				fn()
			}
		}
	}
}

// shutdown runs on the actor once the peer is cancelled.
func (p *peer) shutdown() {
	p.s.removePeer(p, "shutdown")
	if p.wdTimer != nil {
		p.wdTimer.Stop()
	}
	p.mu.Lock()
	p.closed = true
	p.ctrlQueue = nil
	chans := make([]*Channel, 0, len(p.channels))
	for _, c := range p.channels {
		chans = append(chans, c)
	}
	fired := p.connectFired
	remote := make([]*RemoteStream, 0, len(p.remote))
	for _, r := range p.remote {
		remote = append(remote, r)
	}
	p.mu.Unlock()
	for st := range p.senders {
		st.unwatch(p)
	}
	if err := p.pc.Close(); err != nil {
		p.log.Debug("rtcio: close peer connection", "err", err)
	}
	for _, s := range p.rtcpSenders {
		_ = s.Stop()
	}
	p.rtcpWG.Wait()
	for _, c := range chans {
		c.detach()
	}
	p.s.forgetPeer(p.id)
	hooks := p.s.getHooks()
	for mid, ri := range p.recv {
		delete(p.recv, mid)
		ended := ri.stream.dropTrack(ri.track)
		if hooks.RemoteTrackEnded != nil {
			ri, ended := ri, ended
			p.s.disp.post(func() { hooks.RemoteTrackEnded(p.id, ri.stream, ri.track, ended) })
		}
	}
	for _, r := range remote {
		r.mu.Lock()
		r.ended = true
		r.mu.Unlock()
	}
	if fired {
		p.s.fire(&Event{Name: EventPeerDisconnect, PeerID: p.id, Args: []any{map[string]any{"id": p.id}}}, false)
	}
	p.log.Debug("rtcio: peer closed")
}

// forgetPeer drops per-peer state kept on the Socket.
func (s *Socket) forgetPeer(id string) {
	s.mu.Lock()
	bchans := make([]*BroadcastChannel, 0, len(s.bchans))
	for _, b := range s.bchans {
		bchans = append(bchans, b)
	}
	if s.peers[id] == nil {
		delete(s.peerListeners, id)
	}
	s.mu.Unlock()
	for _, b := range bchans {
		b.removePeer(id)
	}
}

// handleState drives the liveness watchdog (docs/PROTOCOL.md section 7).
func (p *peer) handleState(st webrtc.PeerConnectionState) {
	p.log.Debug("rtcio: connection state", "state", st.String())
	switch st {
	case webrtc.PeerConnectionStateConnected:
		p.disarmWatchdog()
	case webrtc.PeerConnectionStateDisconnected:
		p.armWatchdog("ICE consent lost")
	case webrtc.PeerConnectionStateFailed:
		p.restartICE()
		p.armWatchdog("ICE restart did not recover")
	case webrtc.PeerConnectionStateClosed:
		p.s.removePeer(p, "connection closed")
	}
}

func (p *peer) armWatchdog(reason string) {
	d := p.s.opts.Watchdog.Timeout
	if p.s.hintFresh(p.hintAt) {
		d = p.s.opts.Watchdog.HintTimeout
	}
	if p.wdTimer != nil {
		p.wdTimer.Stop()
	}
	p.wdTimer = time.NewTimer(d)
	p.log.Debug("rtcio: watchdog armed", "reason", reason, "after", d)
}

func (p *peer) disarmWatchdog() {
	if p.wdTimer != nil {
		p.wdTimer.Stop()
		p.wdTimer = nil
	}
}

func (p *peer) watchdogExpired() {
	switch p.pc.ConnectionState() {
	case webrtc.PeerConnectionStateConnected, webrtc.PeerConnectionStateClosed:
		return
	}
	p.log.Warn("rtcio: liveness watchdog closing peer", "state", p.pc.ConnectionState().String())
	p.s.removePeer(p, "watchdog")
}

// peerLeftHint records the server's hint; with an unhealthy connection it
// closes the peer at once, otherwise it only shortens a later watchdog.
func (p *peer) peerLeftHint() {
	p.hintAt = time.Now()
	switch p.pc.ConnectionState() {
	case webrtc.PeerConnectionStateDisconnected, webrtc.PeerConnectionStateFailed:
		p.s.removePeer(p, "peer-left hint on an unhealthy connection")
	case webrtc.PeerConnectionStateClosed:
	default:
		if p.wdTimer != nil {
			// Already counting down: switch to the shortened window.
			p.armWatchdog("peer-left hint")
		}
	}
}

var errNoPeer = errors.New("rtcio: no such peer")
