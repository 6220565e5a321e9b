package loadtest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
)

// Scenarios.
const (
	Fanout    = "fanout"     // P publishers (video and/or audio), S subscribers
	Meeting   = "meeting"    // P participants, each publishes video+audio and receives all others
	AudioRoom = "audio-room" // P speakers publish audio, S listeners
)

// Config is one load-test run.
type Config struct {
	Scenario    string `json:"scenario"`
	Publishers  int    `json:"publishers"`
	Subscribers int    `json:"subscribers"`
	// Video and Audio choose the tracks of a fanout publisher.
	Video bool  `json:"video"`
	Audio bool  `json:"audio"`
	Media Media `json:"media"`
	// Ramp is how many participants join per second.
	Ramp float64 `json:"ramp"`
	// Warmup runs after every participant receives every stream and
	// before the measured window of Duration.
	Warmup   time.Duration `json:"warmup"`
	Duration time.Duration `json:"duration"`
	// Drain is how long receivers keep reading after publishers stop.
	Drain time.Duration `json:"drain"`
	// SettleTimeout bounds each setup step (publishers established,
	// every stream delivered).
	SettleTimeout time.Duration `json:"settleTimeout"`
	// OnWindow, when set, runs at the start of the measured window in
	// its own goroutine (a CPU profile, for example); its context ends
	// with the window.
	OnWindow func(ctx context.Context, window time.Duration) `json:"-"`
}

// Defaults fills zero fields with the values the command line uses.
func (c Config) Defaults() Config {
	if c.Scenario == "" {
		c.Scenario = Fanout
	}
	if c.Media.Source == "" {
		c.Media.Source = "synthetic"
	}
	if c.Media.VideoPPS == 0 {
		c.Media.VideoPPS = 150
	}
	if c.Media.VideoBitrate == 0 {
		c.Media.VideoBitrate = 1_200_000
	}
	if c.Media.FrameRate == 0 {
		c.Media.FrameRate = 30
	}
	if c.Media.KeyframeInterval == 0 {
		c.Media.KeyframeInterval = 2 * time.Second
	}
	if c.Media.AudioBitrate == 0 {
		c.Media.AudioBitrate = 48_000
	}
	if c.Ramp == 0 {
		c.Ramp = 20
	}
	if c.Warmup == 0 {
		c.Warmup = time.Second
	}
	if c.Duration == 0 {
		c.Duration = 10 * time.Second
	}
	if c.Drain == 0 {
		c.Drain = 500 * time.Millisecond
	}
	if c.SettleTimeout == 0 {
		c.SettleTimeout = 30 * time.Second
	}
	return c
}

// Validate reports a configuration that cannot run.
func (c Config) Validate() error {
	switch c.Scenario {
	case Fanout:
		if !c.Video && !c.Audio {
			return errors.New("loadtest: fanout needs video, audio or both")
		}
	case Meeting, AudioRoom:
	default:
		return fmt.Errorf("loadtest: unknown scenario %q (fanout, meeting, audio-room)", c.Scenario)
	}
	if c.Publishers < 1 || c.Publishers > 500 {
		return fmt.Errorf("loadtest: publishers %d out of 1..500", c.Publishers)
	}
	if c.Subscribers < 0 || c.Subscribers > 2000 {
		return fmt.Errorf("loadtest: subscribers %d out of 0..2000", c.Subscribers)
	}
	if c.Scenario != Meeting && c.Subscribers == 0 && c.Publishers < 2 {
		return errors.New("loadtest: nobody would receive anything")
	}
	if c.Ramp <= 0 || c.Duration <= 0 || c.Duration > time.Hour {
		return fmt.Errorf("loadtest: ramp %v and duration %v must be positive (duration at most 1h)", c.Ramp, c.Duration)
	}
	return nil
}

// member is one participant during a run.
type member struct {
	p      *Participant
	tracks []*publishedTrack
	in     *inbox
	conn   Conn
	expect []uint32 // stream ids it should receive
}

// plan builds the run's participants: publishers first, then subscribers.
func plan(cfg Config) ([]*member, []*publishedTrack, error) {
	var members []*member
	var all []*publishedTrack
	add := func(name string, kinds ...Kind) error {
		i := len(members)
		m := &member{p: NewParticipant(i, name)}
		for _, k := range kinds {
			t, err := newPublishedTrack(uint32(len(all)), k, i, cfg.Media)
			if err != nil {
				return err
			}
			all = append(all, t)
			m.tracks = append(m.tracks, t)
			m.p.Tracks = append(m.p.Tracks, t.local)
		}
		members = append(members, m)
		return nil
	}
	var pubKinds []Kind
	switch cfg.Scenario {
	case Fanout:
		if cfg.Video {
			pubKinds = append(pubKinds, Video)
		}
		if cfg.Audio {
			pubKinds = append(pubKinds, Audio)
		}
	case Meeting:
		pubKinds = []Kind{Video, Audio}
	case AudioRoom:
		pubKinds = []Kind{Audio}
	}
	for i := range cfg.Publishers {
		if err := add(fmt.Sprintf("pub-%d", i), pubKinds...); err != nil {
			return nil, nil, err
		}
	}
	if cfg.Scenario != Meeting {
		for i := range cfg.Subscribers {
			if err := add(fmt.Sprintf("sub-%d", i)); err != nil {
				return nil, nil, err
			}
		}
	}
	for _, m := range members {
		for _, t := range all {
			if t.owner != m.p.Index {
				m.expect = append(m.expect, t.stream)
			}
		}
		m.p.Expect = len(m.expect)
	}
	return members, all, nil
}

// Run executes one scenario against target and measures it.
func Run(ctx context.Context, cfg Config, target Target, log *slog.Logger) (*Result, error) {
	cfg = cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log = orDiscard(log)
	members, tracks, err := plan(cfg)
	if err != nil {
		return nil, err
	}
	progress := make(chan struct{}, 1)
	notify := func() {
		select {
		case progress <- struct{}{}:
		default:
		}
	}
	for _, m := range members {
		m.in = newInbox(notify)
		in := m.in
		m.p.OnTrack = func(tr *webrtc.TrackRemote) { in.read(tr, tr.Codec().MimeType) }
		byLocal := map[webrtc.TrackLocal]*publishedTrack{}
		for _, t := range m.tracks {
			byLocal[t.local] = t
		}
		m.p.OnRTCP = func(track webrtc.TrackLocal, pkts []rtcp.Packet) {
			if t := byLocal[track]; t != nil {
				t.onRTCP(pkts)
			}
		}
	}
	res := &Result{Target: target.Name(), Config: cfg}
	senderCtx, stopSenders := context.WithCancel(ctx)
	defer stopSenders()
	snd := startSenders(senderCtx, tracks)
	defer snd.stop()
	// Every connection is closed and every reader has returned before
	// Run does: results read what readers wrote.
	defer func() {
		var wg sync.WaitGroup
		for _, m := range members {
			if m.conn != nil {
				wg.Go(func() { _ = m.conn.Close() })
			}
		}
		wg.Wait()
		for _, m := range members {
			m.in.wg.Wait()
		}
	}()

	pid := target.PID()
	// The baseline is the server before anyone joins, so the delta covers
	// every participant's peer connection(s).
	rssBase, err := ReadRSS(pid)
	if err != nil {
		return nil, err
	}
	pubs, subs := splitMembers(members)
	log.Info("joining publishers", "count", len(pubs))
	if err := joinAll(ctx, target, pubs, cfg.Ramp); err != nil {
		return nil, err
	}
	if err := waitEstablished(ctx, pubs, cfg.SettleTimeout); err != nil {
		return nil, err
	}
	log.Info("joining subscribers", "count", len(subs))
	if err := joinAll(ctx, target, subs, cfg.Ramp); err != nil {
		return nil, err
	}
	if missing := waitDelivered(ctx, members, progress, cfg.SettleTimeout); missing > 0 {
		res.Errors = append(res.Errors, fmt.Sprintf("%d participant streams never arrived within %v", missing, cfg.SettleTimeout))
		log.Warn("not every stream arrived", "missing", missing, "pairs", missingPairs(members, 20))
	}
	if err := pause(ctx, cfg.Warmup); err != nil {
		return nil, err
	}

	log.Info("measuring", "duration", cfg.Duration)
	w := window{seqs: make(map[uint32][2]uint32, len(tracks))}
	cpu0, err := ReadCPU(pid)
	if err != nil {
		return nil, err
	}
	self0, _ := ReadCPU(selfPID())
	w.startNs = time.Now().UnixNano()
	for _, t := range tracks {
		w.seqs[t.stream] = [2]uint32{t.sent.Load(), 0}
	}
	var hook sync.WaitGroup
	if cfg.OnWindow != nil {
		hctx, hcancel := context.WithTimeout(ctx, cfg.Duration)
		defer hcancel()
		hook.Go(func() { cfg.OnWindow(hctx, cfg.Duration) })
	}
	if err := pause(ctx, cfg.Duration); err != nil {
		return nil, err
	}
	w.endNs = time.Now().UnixNano()
	for _, t := range tracks {
		s := w.seqs[t.stream]
		s[1] = t.sent.Load()
		w.seqs[t.stream] = s
	}
	cpu1, err := ReadCPU(pid)
	if err != nil {
		return nil, err
	}
	self1, _ := ReadCPU(selfPID())
	rssEnd, err := ReadRSS(pid)
	if err != nil {
		return nil, err
	}
	hook.Wait()
	stopSenders()
	snd.stop()
	if err := pause(ctx, cfg.Drain); err != nil {
		return nil, err
	}
	var writeErrs int64
	for _, t := range tracks {
		writeErrs += t.writeErrs.Load()
	}
	if writeErrs > 0 {
		res.Errors = append(res.Errors, fmt.Sprintf("%d publisher writes failed", writeErrs))
	}
	res.TargetCPU = cpu1.Total() - cpu0.Total()
	res.TargetUserCPU = cpu1.User - cpu0.User
	res.LoadgenCPU = self1.Total() - self0.Total()
	res.RSSBaseline, res.RSSEnd = rssBase, rssEnd
	countOffers(res, members)
	// The deferred close waits for the readers; only then are the
	// inboxes safe to read.
	closeAll(members)
	res.compute(members, w, len(subs), len(tracks))
	return res, nil
}

// closeAll closes every connection and waits for the readers to return.
func closeAll(members []*member) {
	var wg sync.WaitGroup
	for _, m := range members {
		if m.conn != nil {
			c := m.conn
			m.conn = nil
			wg.Go(func() { _ = c.Close() })
		}
	}
	wg.Wait()
	for _, m := range members {
		m.in.wg.Wait()
	}
}

func splitMembers(ms []*member) (pubs, subs []*member) {
	for _, m := range ms {
		if len(m.tracks) > 0 {
			pubs = append(pubs, m)
		} else {
			subs = append(subs, m)
		}
	}
	return pubs, subs
}

// joinAll joins members at rate per second, each join in its own goroutine
// so that a slow handshake does not slow the ramp.
func joinAll(ctx context.Context, target Target, ms []*member, rate float64) error {
	if len(ms) == 0 {
		return nil
	}
	interval := time.Duration(float64(time.Second) / rate)
	tick := time.NewTicker(max(interval, time.Microsecond))
	defer tick.Stop()
	errs := make(chan error, len(ms))
	var wg sync.WaitGroup
	for i, m := range ms {
		if i > 0 {
			select {
			case <-tick.C:
			case <-ctx.Done():
				wg.Wait()
				return ctx.Err()
			}
		}
		wg.Go(func() {
			c, err := target.Join(ctx, m.p)
			if err != nil {
				errs <- err
				return
			}
			m.conn = c
		})
	}
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	return errors.Join(all...)
}

func waitEstablished(ctx context.Context, ms []*member, limit time.Duration) error {
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	for _, m := range ms {
		select {
		case <-m.p.Established():
		case <-deadline.C:
			return fmt.Errorf("loadtest: %s: the server sent no RTCP for its tracks within %v", m.p.Name, limit)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// waitDelivered waits until every member received every stream it expects,
// and returns how many (member, stream) pairs are still missing at the
// deadline.
func waitDelivered(ctx context.Context, ms []*member, progress <-chan struct{}, limit time.Duration) int {
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	for {
		missing := 0
		for _, m := range ms {
			got := m.in.streamIDs()
			for _, id := range m.expect {
				if !got[id] {
					missing++
				}
			}
		}
		if missing == 0 {
			return 0
		}
		select {
		case <-progress:
		case <-deadline.C:
			return missing
		case <-ctx.Done():
			return missing
		}
	}
}

// missingPairs names up to limit (participant, stream) pairs still
// missing, as "participant<-publisher/stream".
func missingPairs(ms []*member, limit int) []string {
	owner := map[uint32]string{}
	for _, m := range ms {
		for _, t := range m.tracks {
			owner[t.stream] = fmt.Sprintf("%s/%s#%d", m.p.Name, t.kind, t.stream)
		}
	}
	var out []string
	for _, m := range ms {
		got := m.in.streamIDs()
		for _, id := range m.expect {
			if !got[id] && len(out) < limit {
				out = append(out, m.p.Name+"<-"+owner[id])
			}
		}
	}
	return out
}

// pause waits d (a measurement interval, not a synchronisation) unless ctx
// ends first.
func pause(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
