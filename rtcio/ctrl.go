package rtcio

import (
	"errors"
	"fmt"

	"github.com/pion/webrtc/v4"
)

// createCtrl opens the negotiated ctrl channel (id 0) that both sides create
// at connection creation.
func (p *peer) createCtrl() error {
	id := uint16(0)
	negotiated := true
	ordered := true
	dc, err := p.pc.CreateDataChannel(CtrlLabel, &webrtc.DataChannelInit{ID: &id, Negotiated: &negotiated, Ordered: &ordered})
	if err != nil {
		return fmt.Errorf("rtcio: ctrl channel for %s: %w", p.id, err)
	}
	p.ctrl = dc
	dc.OnOpen(func() {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return
		}
		p.ctrlOpen = true
		q := p.ctrlQueue
		p.ctrlQueue = nil
		for i, b := range q {
			if err := dc.SendText(string(b)); err != nil {
				p.log.Warn("rtcio: ctrl flush failed; requeueing", "err", err)
				p.ctrlQueue = append(p.ctrlQueue, q[i:]...)
				break
			}
		}
		p.connectFired = true
		p.mu.Unlock()
		p.log.Debug("rtcio: ctrl channel open")
		p.s.fire(&Event{Name: EventPeerConnect, PeerID: p.id, Args: []any{map[string]any{"id": p.id}}}, false)
	})
	dc.OnClose(func() {
		p.mu.Lock()
		p.ctrlOpen = false
		p.ctrlClosed = true
		p.ctrlQueue = nil
		p.mu.Unlock()
	})
	dc.OnMessage(func(msg webrtc.DataChannelMessage) { p.onCtrlMessage(msg) })
	return nil
}

// onCtrlMessage applies the receive rules of docs/PROTOCOL.md section 5 and
// dispatches the event to global and per-peer listeners.
func (p *peer) onCtrlMessage(msg webrtc.DataChannelMessage) {
	if !msg.IsString {
		p.log.Debug("rtcio: ctrl: dropping binary frame", "bytes", len(msg.Data))
		return
	}
	name, raw, err := decodeEnvelope(msg.Data)
	if err != nil {
		if errors.Is(err, errReserved) {
			p.log.Warn("rtcio: ctrl: dropped reserved event from peer", "event", name)
		} else {
			p.log.Warn("rtcio: ctrl: dropping frame", "bytes", len(msg.Data), "err", err)
		}
		return
	}
	if hook := p.s.getHooks().Ctrl; hook != nil {
		p.s.disp.post(func() { hook(p.id, name, raw) })
	}
	p.s.fire(&Event{Name: name, PeerID: p.id, Args: decodeArgs(raw, nil), Raw: raw}, true)
}

// sendCtrl sends an encoded envelope, queueing it (bounded, oldest dropped)
// until the channel opens.
func (p *peer) sendCtrl(b []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.ctrlClosed {
		// The channel is gone: buffering would be a leak with no recipient.
		return
	}
	if p.ctrlOpen {
		if err := p.ctrl.SendText(string(b)); err == nil {
			return
		} else {
			p.log.Warn("rtcio: ctrl send failed; queueing", "err", err)
		}
	}
	if len(p.ctrlQueue) >= MaxCtrlQueue {
		p.ctrlQueue = p.ctrlQueue[1:]
		p.log.Warn("rtcio: ctrl queue full, dropped oldest")
	}
	p.ctrlQueue = append(p.ctrlQueue, b)
}
