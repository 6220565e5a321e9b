package forwarding

import "time"

// RequestKeyframe asks the publisher for a keyframe. Requests are aggregated
// and throttled to one per KeyframeRequestInterval; a request still pending
// when a keyframe arrives is dropped.
func (p *Publication) RequestKeyframe() {
	p.stats.kfRequests.Add(1)
	p.kfRequestedAt.Store(p.clock())
	wake(p.kfWake)
}

func wake(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// run owns the publication's timers: keyframe request throttling and the
// upstream NACK schedule.
func (p *Publication) run() {
	defer close(p.done)
	defer p.teardown()

	kfTimer := time.NewTimer(time.Hour)
	kfTimer.Stop()
	defer kfTimer.Stop()
	nackTimer := time.NewTimer(time.Hour)
	nackTimer.Stop()
	defer nackTimer.Stop()

	var (
		sentOnce  bool
		lastSent  int64
		pending   bool
		nackArmed bool
	)
	interval := p.cfg.KeyframeRequestInterval
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-p.kfWake:
			if pending {
				continue // aggregated into the scheduled request
			}
			now := p.clock()
			if wait := time.Duration(lastSent-now) + interval; sentOnce && wait > 0 {
				pending = true
				kfTimer.Reset(wait)
				continue
			}
			if p.sendKeyframeRequest() {
				sentOnce, lastSent = true, now
			}
		case <-kfTimer.C:
			pending = false
			if p.sendKeyframeRequest() {
				lastSent = p.clock()
			}
		case <-p.nackWake:
			if !nackArmed {
				nackArmed = true
				nackTimer.Reset(p.cfg.NackInterval)
			}
		case <-nackTimer.C:
			nackArmed = p.sendNacks()
			if nackArmed {
				nackTimer.Reset(p.cfg.NackInterval)
			}
		}
	}
}

// sendKeyframeRequest asks the publisher for a keyframe unless one arrived
// after the latest request, and reports whether it asked.
func (p *Publication) sendKeyframeRequest() bool {
	if p.lastKeyframe.Load() > p.kfRequestedAt.Load() {
		p.stats.kfSatisfied.Add(1)
		return false
	}
	ssrc := p.curSSRC.Load()
	if p.cfg.Keyframes == nil || ssrc == 0 {
		return false
	}
	p.stats.kfSent.Add(1)
	if err := p.cfg.Keyframes.RequestKeyframe(ssrc); err != nil {
		p.log.Debug("forwarding: keyframe request failed", "ssrc", ssrc, "err", err)
	}
	return true
}

// sendNacks NACKs the upstream packets that are due and reports whether any
// are still being tracked.
func (p *Publication) sendNacks() bool {
	p.mu.Lock()
	if p.closed || p.loss == nil {
		p.mu.Unlock()
		return false
	}
	var gaveUp int
	p.nackBuf, gaveUp = p.loss.due(p.nackBuf[:0], p.clock())
	ssrc := p.ssrc
	still := p.loss.pending()
	p.mu.Unlock()

	p.stats.giveUps.Add(uint64(gaveUp))
	if len(p.nackBuf) > 0 {
		p.stats.nacksSent.Add(uint64(len(p.nackBuf)))
		if err := p.cfg.Nacks.SendNack(ssrc, p.nackBuf); err != nil {
			p.log.Debug("forwarding: upstream NACK failed", "ssrc", ssrc, "err", err)
		}
	}
	return still
}
