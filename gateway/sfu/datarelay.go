package sfu

// The room's data relay: ctrl events and broadcast-channel messages from
// one client go to every other client of the room, in order, within each
// sender's rate bound; channels the room cannot relay are refused loudly.

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/rtcio-gateway/rtcio-gateway/rtcio"
)

// relayCtrl relays a client's ctrl event to every other client, in order.
func (r *Room) relayCtrl(peerID, name string, raw []json.RawMessage) {
	if !r.mayRelay(peerID) {
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
	r.mu.Lock()
	bc := r.channels[channel]
	r.mu.Unlock()
	if bc == nil || !r.mayRelay(peerID) {
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

func rawArgs(raw []json.RawMessage) []any {
	args := make([]any, len(raw))
	for i, a := range raw {
		args[i] = a
	}
	return args
}

// EventChannelNotRelayed is the code of the gateway-error event a client
// gets when it sent data on a custom channel the room does not relay.
const EventChannelNotRelayed = "channel-not-relayed"

// channelRefused handles a client that sent data on a custom channel the
// gateway has not opened. rtc.io opens custom channels as negotiated
// channels without any in-band announcement, so the gateway can only open,
// and relay, channels it knows by name (Config.Channels). pion's SCTP
// transport takes data on any other stream for an in-band OPEN, fails and
// from then on accepts no stream of that connection; it does not report
// which stream it was, and offers no way to read or reset a stream it did
// not open. So the gateway can only make the refusal visible: a
// gateway-error event to the client, a log line and a counter.
func (r *Room) channelRefused(peerID string, err error) {
	relayed := slices.Clone(r.cfg.Channels)
	if r.cfg.Observer != nil {
		r.cfg.Observer.ChannelRefused()
	}
	r.log.Warn("sfu: client sent data on a custom channel this gateway does not relay; add its name to media.relay_channels",
		"client", peerID, "relayed_channels", relayed, "err", err)
	if r.cfg.Tell != nil {
		r.cfg.Tell(peerID, "gateway-error", map[string]any{
			"code":  EventChannelNotRelayed,
			"event": "datachannel",
			"message": fmt.Sprintf("a custom channel of this client is not relayed in SFU room %q: only %v are (media.relay_channels); "+
				"its messages are dropped, and more than about 1 MiB sent on it blocks this client's ctrl channel", r.id, relayed),
		})
	}
}
