package sfu

import (
	"fmt"
	"slices"
)

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
	if r.cfg.ReceiveOnly {
		return
	}
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
