package sfu

import (
	"fmt"
	"slices"
	"strings"

	"github.com/pion/webrtc/v4"
)

// StreamInfo describes one relayed stream.
type StreamInfo struct {
	Publisher   string   `json:"publisher"`
	Stream      string   `json:"stream"`
	MediaStream string   `json:"mediaStream"`
	Events      []string `json:"events"`
	Tracks      int      `json:"tracks"`
	Subscribers int      `json:"subscribers"`
	Untracked   bool     `json:"untracked"`
	// CapBps is the REMB cap the publisher's video is under (absent when
	// uncapped); SubscriberStates each subscriber's paused state and
	// estimate (absent without bandwidth adaptation).
	CapBps           uint64            `json:"capBps,omitempty"`
	SubscriberStates []SubscriberState `json:"subscriberStates,omitempty"`
}

// Streams lists the streams the room relays.
func (r *Room) Streams() []StreamInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []StreamInfo
	for _, rel := range r.streams {
		if rel.out == nil {
			continue
		}
		info := StreamInfo{Publisher: rel.key.publisher, Stream: rel.out.ID(), MediaStream: rel.key.msid,
			Events: rel.events, Tracks: len(rel.tracks), Untracked: rel.untracked}
		for _, in := range rel.tracks {
			info.Subscribers = max(info.Subscribers, len(in.fwd.downTracks()))
		}
		r.adaptView(&info, rel)
		slices.SortFunc(info.SubscriberStates, func(a, b SubscriberState) int { return strings.Compare(a.ID, b.ID) })
		out = append(out, info)
	}
	slices.SortFunc(out, func(a, b StreamInfo) int { return strings.Compare(a.Stream, b.Stream) })
	return out
}

// Untrack retires a stream for clients that connect from now on, as the
// publisher's own untrackStream would; connected clients keep receiving
// it. by, when not empty, must be the stream's publisher. It reports
// whether the room relays such a stream.
func (r *Room) Untrack(streamID, by string) (bool, error) {
	r.mu.Lock()
	var found *relayed
	for _, rel := range r.streams {
		if rel.out != nil && rel.out.ID() == streamID {
			found = rel
		}
	}
	if found == nil {
		r.mu.Unlock()
		return false, nil
	}
	if by != "" && found.key.publisher != by {
		r.mu.Unlock()
		return true, fmt.Errorf("sfu: only the publisher may untrack stream %s", streamID)
	}
	found.untracked = true
	out := found.out
	r.mu.Unlock()
	r.sock.UntrackStream(out)
	r.log.Info("sfu: stream untracked by the application", "stream", streamID, "by", by)
	return true, nil
}

// RoomStats is a snapshot of an SFU room's media side.
type RoomStats struct {
	Room string `json:"room"`
	// Peers are the gateway peer's connections, one per client.
	Peers int `json:"peers"`
	// Streams are the relayed streams, Publications their tracks being
	// forwarded, DownTracks the subscriptions to them.
	Streams      int `json:"streams"`
	Publications int `json:"publications"`
	DownTracks   int `json:"downTracks"`
	// Bandwidth adaptation at the last decision: subscribers congested,
	// subscribers' videos paused, publisher videos capped.
	Congested        int `json:"congested"`
	PausedVideos     int `json:"pausedVideos"`
	CappedPublishers int `json:"cappedPublishers"`
	// Links are the gateway peer's connections to other gateway peers of
	// a cascaded room (counted in Peers too).
	Links []LinkStats `json:"links,omitempty"`
}

// LinkStats is one link of a cascaded room: the other gateway peer, and
// the bytes its connection's transport carried each way.
type LinkStats struct {
	Peer          string `json:"peer"`
	BytesSent     uint64 `json:"bytesSent"`
	BytesReceived uint64 `json:"bytesReceived"`
}

// Links reads the room's links' transport counters (one stats read per
// link).
func (r *Room) Links() []LinkStats {
	var out []LinkStats
	for _, id := range r.sock.Peers() {
		if !r.cfg.isLink(id) {
			continue
		}
		ls := LinkStats{Peer: id}
		if report, err := r.sock.Peer(id).Stats(); err == nil {
			for _, st := range report {
				if t, ok := st.(webrtc.TransportStats); ok {
					ls.BytesSent += t.BytesSent
					ls.BytesReceived += t.BytesReceived
				}
			}
		}
		out = append(out, ls)
	}
	return out
}

// Stats returns a snapshot of the room.
func (r *Room) Stats() RoomStats {
	st := RoomStats{Room: r.id, Peers: len(r.sock.Peers()), Links: r.Links()}
	st.Congested, st.PausedVideos, st.CappedPublishers = r.adapt.counts()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rel := range r.streams {
		st.Streams++
		for _, in := range rel.tracks {
			st.Publications++
			st.DownTracks += len(in.fwd.downTracks())
		}
		for _, in := range rel.orphans {
			st.Publications++
			st.DownTracks += len(in.fwd.downTracks())
		}
	}
	return st
}
