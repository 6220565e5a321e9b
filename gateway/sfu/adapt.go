package sfu

import (
	"fmt"
	"sync"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"

	"github.com/rtcio-gateway/rtcio-gateway/forwarding"
	"github.com/rtcio-gateway/rtcio-gateway/forwarding/bwe"
	"github.com/rtcio-gateway/rtcio-gateway/internal/defaults"
)

// Bandwidth adaptation. rtc.io clients send one encoding per track, so a
// room has two levers: the publisher's send rate, which the gateway caps
// with REMB, and pausing a video for a subscriber that cannot take it.
// Each subscriber's estimate (bwe.Estimator) is fed by what its browser
// already sends about the gateway's down-tracks (REMB and the loss in its
// receiver reports, delivered through the Binder) and by the bytes its
// down-tracks sent; once per interval the room's policy (bwe.Policy)
// turns the estimates into a cap per publisher video and into pauses and
// resumes, which the subscriber's app hears as media-paused and
// media-resumed. A congested subscriber's retransmissions get a budget, a
// share of its estimate, so NACK answers cannot bury its link further.

// Server events of the adaptation, sent to the subscriber concerned.
const (
	EventMediaPaused  = "media-paused"
	EventMediaResumed = "media-resumed"
)

// ReasonBandwidth is the reason of a pause or resume the estimate decided.
const ReasonBandwidth = "bandwidth"

// AdaptConfig configures bandwidth adaptation in SFU rooms. The zero value
// leaves it off.
type AdaptConfig struct {
	Enabled bool
	// Interval between two decisions of a room. Default 500 ms.
	Interval time.Duration
	// Estimator and Policy tune the estimate and the decisions (see
	// package bwe for their defaults).
	Estimator bwe.EstimatorConfig
	Policy    bwe.PolicyConfig
	// RetransmitShare is the share of a congested subscriber's estimate
	// its retransmissions may use, kept for the policy's Memory after its
	// last congestion. Default 0.1.
	RetransmitShare float64
}

func (c *AdaptConfig) setDefaults() {
	defaults.Positive(&c.Interval, 500*time.Millisecond)
	defaults.Positive(&c.RetransmitShare, 0.1)
}

// AdaptObserver sees the adaptation for metrics. Its methods must not
// block.
type AdaptObserver interface {
	// Estimate reports one subscriber's estimate at a decision, in bit/s.
	Estimate(bps uint64)
	// REMBSent reports a cap sent to a publisher.
	REMBSent(bps uint64)
	// VideoPaused and VideoResumed report one subscriber's video paused or
	// resumed.
	VideoPaused()
	VideoResumed()
	// SpeakerChanged reports a room's active speaker changing.
	SpeakerChanged()
}

// adapter is one room's adaptation state.
type adapter struct {
	cfg AdaptConfig
	obs AdaptObserver

	mu sync.Mutex
	// conns names the client of each of the gateway peer's connections,
	// by pion's peer connection id, which the Binder sees.
	conns map[string]connOwner
	subs  map[string]*subscriberBW // by client id
	// policy is used by the room's loop only; caps and paused are its
	// results, kept for the admin views.
	policy *bwe.Policy
	caps   map[string]uint64
	paused map[bwe.Change]bool
	// received is, per publisher video (bwe.Video.Key), the bytes its
	// publication had received at the last decision: the policy needs
	// each video's rate. Used by the room's loop only.
	received map[string]uint64
}

type connOwner struct {
	client string
	since  time.Time
}

// subscriberBW is one subscriber's estimate. Its lock is taken by the RTCP
// readers of the subscriber's senders (feedback) and by the room's loop.
type subscriberBW struct {
	mu   sync.Mutex
	est  *bwe.Estimator
	sent map[*forwarding.DownTrack]uint64 // bytes each down-track had sent at the last decision
	// At the last decision, for the admin views.
	estimate  uint64
	congested bool
	sentRate  uint64
	// congestedAt is the last decision that found it congested (zero:
	// never); its retransmissions stay budgeted for the policy's memory
	// after it.
	congestedAt time.Time
}

func newAdapter(cfg AdaptConfig, obs AdaptObserver) *adapter {
	return &adapter{
		cfg: cfg, obs: obs,
		conns:    make(map[string]connOwner),
		subs:     make(map[string]*subscriberBW),
		policy:   bwe.NewPolicy(cfg.Policy),
		caps:     make(map[string]uint64),
		paused:   make(map[bwe.Change]bool),
		received: make(map[string]uint64),
	}
}

// rates measures what each publisher video in bySub received since the
// last decision, in bit/s (absent: not known yet).
func (a *adapter) rates(bySub map[string][]subscription, elapsed time.Duration) map[string]uint64 {
	now := make(map[string]uint64)
	for _, list := range bySub {
		for _, l := range list {
			if _, done := now[l.key]; l.video && !done {
				now[l.key] = l.src.pub.Load().Stats().BytesIn
			}
		}
	}
	rates := make(map[string]uint64, len(now))
	for k, total := range now {
		// A publication replaced (an adopted stream) restarts its count.
		if prev, ok := a.received[k]; ok && total >= prev && elapsed > 0 {
			rates[k] = uint64(float64((total-prev)*8) / elapsed.Seconds())
		}
	}
	a.received = now
	return rates
}

// connected records that pion connection pc is client's.
func (a *adapter) connected(pc, client string) {
	a.mu.Lock()
	a.conns[pc] = connOwner{client: client, since: time.Now()}
	a.mu.Unlock()
}

// subscriber returns client's estimate, made on first use.
func (a *adapter) subscriber(client string) *subscriberBW {
	s := a.subs[client]
	if s == nil {
		s = &subscriberBW{est: bwe.NewEstimator(a.cfg.Estimator), sent: make(map[*forwarding.DownTrack]uint64)}
		a.subs[client] = s
	}
	return s
}

// feedback takes the RTCP a subscriber sent about one of its down-tracks
// (ssrc) on connection pc: its REMB and its receiver report's loss.
func (a *adapter) feedback(pc string, ssrc uint32, pkts []rtcp.Packet) {
	a.mu.Lock()
	owner, ok := a.conns[pc]
	var s *subscriberBW
	if ok {
		s = a.subscriber(owner.client)
	}
	a.mu.Unlock()
	if s == nil {
		return
	}
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range pkts {
		switch p := p.(type) {
		case *rtcp.ReceiverEstimatedMaximumBitrate:
			if p.Bitrate >= 0 {
				s.est.OnREMB(uint64(p.Bitrate), now)
			}
		case *rtcp.ReceiverReport:
			for _, rep := range p.Reports {
				if rep.SSRC == ssrc {
					s.est.OnLoss(rep.FractionLost, now)
				}
			}
		}
	}
}

// subscription is one down-track of the room, as a decision sees it.
type subscription struct {
	client string
	down   *forwarding.DownTrack
	video  bool
	key    string // the publisher's track (bwe.Video.Key)
	src    *inbound
	rel    *relayed
}

// subscriptions lists the room's down-tracks by subscriber.
func (r *Room) subscriptions() map[string][]subscription {
	a := r.adapt
	a.mu.Lock()
	owners := make(map[string]string, len(a.conns))
	for pc, o := range a.conns {
		owners[pc] = o.client
	}
	a.mu.Unlock()
	out := make(map[string][]subscription)
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rel := range r.streams {
		if rel.out == nil {
			continue
		}
		for _, in := range rel.tracks {
			video := in.track.Kind() == webrtc.RTPCodecTypeVideo
			key := trackKey(rel.key, in.fwd.id)
			for _, b := range in.fwd.subscriptions() {
				client, ok := owners[b.sender.conn.pc]
				if !ok || r.cfg.isLink(client) {
					// A link is a trunk to another gateway peer, which
					// adapts to its own clients: its feedback never pauses
					// or caps a video here (link.go).
					continue
				}
				out[client] = append(out[client], subscription{client: client, down: b.down, video: video, key: key, src: in, rel: rel})
			}
		}
	}
	return out
}

func trackKey(k streamKey, trackID string) string {
	return fmt.Sprintf("%s/%s/%s", k.publisher, k.msid, trackID)
}

// decide runs one round of the room's adaptation.
func (r *Room) decide(now time.Time, elapsed time.Duration) {
	a := r.adapt
	bySub := r.subscriptions()
	speaker := r.speakerPublisher()
	rates := a.rates(bySub, elapsed)
	subs := make([]bwe.Subscriber, 0, len(bySub))
	byKey := make(map[string]*inbound)
	linked := make(map[string]bool)
	downs := make(map[bwe.Change]subscription)
	a.mu.Lock()
	states := make(map[string]*subscriberBW, len(bySub))
	for client := range bySub {
		states[client] = a.subscriber(client)
	}
	// Forget subscribers without down-tracks, and connections of clients
	// that left.
	for client := range a.subs {
		if _, ok := bySub[client]; !ok {
			delete(a.subs, client)
		}
	}
	a.mu.Unlock()
	for client, list := range bySub {
		s := states[client]
		sub := bwe.Subscriber{ID: client}
		var audioBytes uint64
		s.mu.Lock()
		seen := make(map[*forwarding.DownTrack]uint64, len(list))
		var sent uint64
		for _, l := range list {
			st := l.down.Stats()
			total := st.BytesOut + st.RetransmitBytes
			if prev, ok := s.sent[l.down]; ok && total >= prev {
				sent += total - prev
				if !l.video {
					audioBytes += total - prev
				}
			}
			seen[l.down] = total
			if l.video {
				prio := 0
				if l.rel.key.publisher == speaker {
					prio = 1
				}
				linkedVideo := r.cfg.isLink(l.rel.key.publisher)
				sub.Videos = append(sub.Videos, bwe.Video{Key: l.key, Priority: prio, Rate: rates[l.key], Uncapped: linkedVideo})
				downs[bwe.Change{Subscriber: client, Video: l.key}] = l
				byKey[l.key] = l.src
				if linkedVideo {
					linked[l.key] = true
				}
			}
		}
		s.sent = seen
		s.est.OnSent(int(sent), now)
		// A subscriber whose every video is paused gets audio alone: its
		// feedback says nothing of what video it could take (see Hold).
		allPaused := len(sub.Videos) > 0
		for _, v := range sub.Videos {
			allPaused = allPaused && a.policy.Paused(client, v.Key)
		}
		if allPaused {
			s.est.Hold(now)
		} else {
			s.est.Release()
		}
		sub.Estimate, sub.Congested = s.est.Estimate(now), s.est.Congested(now)
		s.estimate, s.congested = sub.Estimate, sub.Congested
		if sub.Congested {
			s.congestedAt = now
		}
		recentlyCongested := !s.congestedAt.IsZero() && now.Sub(s.congestedAt) < a.policy.Memory()
		sentRate := s.est.SentRate(now)
		s.sentRate = sentRate
		s.mu.Unlock()
		if sub.Congested {
			r.log.Debug("sfu: subscriber congested", "subscriber", client, "estimate", sub.Estimate, "sent", sentRate)
		}
		if elapsed > 0 {
			sub.Audio = uint64(float64(audioBytes*8) / elapsed.Seconds())
		}
		if a.obs != nil {
			a.obs.Estimate(sub.Estimate)
		}
		// Retransmissions: a share of the estimate while congested, and
		// for the policy's memory after. "Congested" needs loss in the
		// latest receiver report, so it flickers off as soon as the cap
		// bites; an unbudgeted subscriber then gets every NACK of the
		// overload answered at once (measured at 700 kbit/s: 4.3 Mbit/s
		// of retransmissions for 2 s), which buries its link again, its
		// REMB collapses, and the publisher's cap follows it to the floor.
		var budget int64
		if recentlyCongested && len(sub.Videos) > 0 {
			budget = max(int64(float64(sub.Estimate)*a.cfg.RetransmitShare/8/float64(len(sub.Videos))), 1)
		}
		for _, l := range list {
			if l.video {
				l.down.SetRetransmitBudget(budget)
			}
		}
		subs = append(subs, sub)
	}
	d := a.policy.Decide(subs, now)
	a.mu.Lock()
	clear(a.caps)
	for k := range byKey {
		if c := a.policy.Cap(k); c < maxCap(a.cfg.Policy) {
			a.caps[k] = c
		}
	}
	for _, c := range d.Paused {
		a.paused[c] = true
	}
	for _, c := range d.Resumed {
		delete(a.paused, c)
	}
	for c := range a.paused {
		if _, ok := downs[c]; !ok {
			delete(a.paused, c)
		}
	}
	a.mu.Unlock()
	for k, c := range d.Caps {
		// A video that comes over a link is not capped: its publisher is
		// another node's, and the link carries it for that node's other
		// subscribers too. The policy pauses it (bwe.Video.Uncapped) for a
		// subscriber here that cannot take it instead.
		if in := byKey[k]; in != nil && !linked[k] {
			r.sendREMB(in, c)
		}
	}
	for _, c := range d.Paused {
		if l, ok := downs[c]; ok && l.down.SetPaused(true) {
			r.tellMedia(l, EventMediaPaused, MediaPaused)
			if a.obs != nil {
				a.obs.VideoPaused()
			}
		}
	}
	for _, c := range d.Resumed {
		if l, ok := downs[c]; ok && l.down.SetPaused(false) {
			r.tellMedia(l, EventMediaResumed, MediaResumed)
			if a.obs != nil {
				a.obs.VideoResumed()
			}
		}
		// A resumed video starts afresh, as the policy's memory does: the
		// losses of its keyframe are answered without the budget of the
		// congestion that paused it (a small budget would let the
		// keyframe's gaps go unrepaired, and the subscriber ask for
		// another).
		s := states[c.Subscriber]
		if s == nil {
			continue
		}
		s.mu.Lock()
		still := s.congested
		if !still {
			s.congestedAt = time.Time{}
		}
		s.mu.Unlock()
		if !still {
			for _, l := range bySub[c.Subscriber] {
				if l.video {
					l.down.SetRetransmitBudget(0)
				}
			}
		}
	}
}

func maxCap(c bwe.PolicyConfig) uint64 {
	if c.Max > 0 {
		return c.Max
	}
	return 3_000_000
}

// sendREMB caps the publisher of in: a REMB about its track's SSRC, on the
// transport it arrives on.
func (r *Room) sendREMB(in *inbound, bps uint64) {
	ssrc := in.pub.Load().SSRC()
	if ssrc == 0 {
		return
	}
	remb := &rtcp.ReceiverEstimatedMaximumBitrate{Bitrate: float32(bps), SSRCs: []uint32{ssrc}}
	if _, err := in.up.transport.Load().WriteRTCP([]rtcp.Packet{remb}); err != nil {
		r.log.Debug("sfu: REMB not sent", "track", in.fwd.id, "err", err)
		return
	}
	if r.adapt.obs != nil {
		r.adapt.obs.REMBSent(bps)
	}
}

// MediaPayload is the payload of media-paused and media-resumed.
type MediaPayload struct {
	RoomID        string `json:"roomId"`
	StreamID      string `json:"streamId"`
	MediaStreamID string `json:"mediaStreamId"`
	Kind          string `json:"kind"`
	Publisher     string `json:"publisher"`
	Reason        string `json:"reason"`
}

// tellMedia tells the subscriber of l that its video paused or resumed.
func (r *Room) tellMedia(l subscription, event string, kind NoticeKind) {
	p := MediaPayload{RoomID: r.id, MediaStreamID: l.rel.key.msid, Kind: "video", Publisher: l.rel.key.publisher, Reason: ReasonBandwidth}
	if l.rel.out != nil {
		p.StreamID = l.rel.out.ID()
	}
	r.log.Info("sfu: "+event, "subscriber", l.client, "publisher", p.Publisher, "stream", p.StreamID)
	if r.cfg.Tell != nil {
		r.cfg.Tell(l.client, event, p)
	}
	n := l.rel.key.notice(kind, l.rel.out)
	n.Client, n.Reason = l.client, ReasonBandwidth
	r.notify(n)
}

// SubscriberState is one subscriber of a stream in the admin view.
type SubscriberState struct {
	ID string `json:"id"`
	// Paused: its video of the stream is paused (bandwidth).
	Paused bool `json:"paused"`
	// EstimateBps and Congested are its estimate at the last decision.
	EstimateBps uint64 `json:"estimateBps"`
	Congested   bool   `json:"congested"`
	// SentBps is what the gateway sent it (all its tracks, retransmissions
	// included) over the estimate's window.
	SentBps uint64 `json:"sentBps"`
}

// adaptView fills a stream's adaptation fields of the admin view; r.mu
// held.
func (r *Room) adaptView(info *StreamInfo, rel *relayed) {
	a := r.adapt
	if a == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	owners := make(map[string]string, len(a.conns))
	for pc, o := range a.conns {
		owners[pc] = o.client
	}
	states := make(map[string]*SubscriberState)
	for _, in := range rel.tracks {
		key := trackKey(rel.key, in.fwd.id)
		if c, ok := a.caps[key]; ok && in.track.Kind() == webrtc.RTPCodecTypeVideo {
			info.CapBps = c
		}
		for _, b := range in.fwd.subscriptions() {
			client, ok := owners[b.sender.conn.pc]
			if !ok {
				continue
			}
			st := states[client]
			if st == nil {
				st = &SubscriberState{ID: client}
				if s := a.subs[client]; s != nil {
					s.mu.Lock()
					st.EstimateBps, st.Congested, st.SentBps = s.estimate, s.congested, s.sentRate
					s.mu.Unlock()
				}
				states[client] = st
			}
			st.Paused = st.Paused || a.paused[bwe.Change{Subscriber: client, Video: key}]
		}
	}
	for _, st := range states {
		info.SubscriberStates = append(info.SubscriberStates, *st)
	}
}

// forgetConns drops the connections of clients no longer connected.
func (a *adapter) forgetConns(peers []string, now time.Time) {
	live := make(map[string]bool, len(peers))
	for _, p := range peers {
		live[p] = true
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for pc, o := range a.conns {
		// A connection is made just before its client shows among the
		// peers: give it time.
		if !live[o.client] && now.Sub(o.since) > 30*time.Second {
			delete(a.conns, pc)
		}
	}
}

// counts reports the subscribers congested, videos paused and publisher
// videos capped at the last decision (zeros when a is nil: adaptation off).
func (a *adapter) counts() (congested, paused, capped int) {
	if a == nil {
		return 0, 0, 0
	}
	a.mu.Lock()
	subs := make([]*subscriberBW, 0, len(a.subs))
	for _, s := range a.subs {
		subs = append(subs, s)
	}
	paused, capped = len(a.paused), len(a.caps)
	a.mu.Unlock()
	for _, s := range subs {
		s.mu.Lock()
		if s.congested {
			congested++
		}
		s.mu.Unlock()
	}
	return congested, paused, capped
}
