package clusterrooms

import (
	"context"
	"encoding/json"
	"time"

	"github.com/rtcio-gateway/rtcio-gateway/gateway/cluster"
	"github.com/rtcio-gateway/rtcio-gateway/gateway/signaling"
)

// Bus envelope kinds: kindEmit carries an event for sockets of the
// receiving node (its payload is an emission); kindKick asks the receiving
// node to disconnect one of its sockets (its payload is the socket id);
// kindHost tells it an SFU room was placed on it (a hostRequest); kindEdge
// and kindInvite are cascading's (cascade.go).
const (
	kindEmit = "emit"
	kindKick = "kick"
	kindHost = "host" // see place.go
)

// KickRemote implements signaling.RemoteKicker: the node holding socket id
// disconnects it (asynchronously, through its inbox).
func (r *Rooms) KickRemote(ctx context.Context, id string) (bool, error) {
	node, err := r.c.NodeOf(ctx, id)
	if err != nil {
		return false, err
	}
	if node == "" || node == r.c.NodeID() {
		// Not here (the caller looked) and not anywhere else.
		return false, nil
	}
	if r.bus == nil {
		return false, errUnavailable
	}
	if err := r.bus.Send(node, kindKick, []byte(id)); err != nil {
		return false, err
	}
	return true, nil
}

// emission is one event for some sockets of one node.
type emission struct {
	To    []string `json:"to"`
	Event string   `json:"e"`
	Args  []any    `json:"a"`
}

// Send implements signaling.Directory: members of this node get the event
// at once, those of other nodes through their node's inbox. One node's
// envelopes to another arrive in the order they were sent, so the events
// one socket causes reach each receiver in order.
func (r *Rooms) Send(to []signaling.Member, event string, args ...any) {
	if len(to) == 0 {
		return
	}
	self := r.c.NodeID()
	var local []string
	remote := make(map[string][]string)
	var order []string
	for _, m := range to {
		switch m.Node {
		case self, "":
			local = append(local, m.ID)
		default:
			if _, ok := remote[m.Node]; !ok {
				order = append(order, m.Node)
			}
			remote[m.Node] = append(remote[m.Node], m.ID)
		}
	}
	if len(local) > 0 {
		r.env.Emit(local, event, args)
	}
	for _, node := range order {
		r.sendTo(node, remote[node], event, args)
	}
}

// SendIDs implements signaling.Directory for sockets known only by id:
// each one's node is looked up in Redis unless it is connected here.
func (r *Rooms) SendIDs(ids []string, event string, args ...any) {
	to := make([]signaling.Member, 0, len(ids))
	for _, id := range ids {
		r.mu.Lock()
		_, here := r.local[id]
		r.mu.Unlock()
		if here {
			to = append(to, signaling.Member{ID: id, Node: r.c.NodeID()})
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		node, err := r.c.NodeOf(ctx, id)
		cancel()
		if err != nil || node == "" {
			// Not connected anywhere (or Redis away): skipped, as an
			// event for a socket that is gone is on one node.
			r.undeliverable.Add(1)
			continue
		}
		to = append(to, signaling.Member{ID: id, Node: node})
	}
	r.Send(to, event, args...)
}

func (r *Rooms) sendTo(node string, ids []string, event string, args []any) {
	b, err := json.Marshal(emission{To: ids, Event: event, Args: args})
	if err != nil {
		r.log.Error("event for another node is not JSON, dropped", "event", event, "error", err)
		r.sendFailed.Add(1)
		return
	}
	if r.bus == nil {
		r.sendFailed.Add(1)
		return
	}
	if err := r.bus.Send(node, kindEmit, b); err != nil {
		r.sendFailed.Add(1)
		r.log.Warn("event for another node dropped", "node", node, "event", event, "error", err)
	}
}

// deliver runs on the inbox reader for every envelope, in order.
func (r *Rooms) deliver(env cluster.Envelope) {
	switch env.Kind {
	case kindEmit:
	case kindKick:
		if r.srv != nil {
			id := string(env.Payload)
			if found, err := r.srv.Kick(id); found && err == nil {
				r.log.Info("socket kicked at another node's request", "socket", id, "from", env.From)
			}
		}
		return
	case kindHost:
		r.hostPlaced(env)
		return
	case kindEdge:
		r.edgePlaced(env)
		return
	case kindInvite:
		r.invited(env)
		return
	default:
		r.log.Warn("unknown envelope kind, dropped", "kind", env.Kind, "from", env.From)
		return
	}
	var em emission
	if err := json.Unmarshal(env.Payload, &em); err != nil || em.Event == "" {
		r.log.Warn("malformed envelope, dropped", "from", env.From, "error", err)
		return
	}
	r.env.Emit(em.To, em.Event, em.Args)
}
