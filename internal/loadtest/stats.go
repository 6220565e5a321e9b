package loadtest

import (
	"os"
	"slices"
	"sort"
	"time"
)

// window is the measured interval: send times [startNs, endNs), and per
// stream the trailer sequence numbers [from, to) sent in it.
type window struct {
	startNs, endNs int64
	seqs           map[uint32][2]uint32
}

// Dist summarises a distribution. Values are in the unit its field name
// says (microseconds for latency, milliseconds for join times).
type Dist struct {
	Count int     `json:"count"`
	P50   float64 `json:"p50"`
	P99   float64 `json:"p99"`
	Max   float64 `json:"max"`
}

func distOf(vals []float64) Dist {
	if len(vals) == 0 {
		return Dist{}
	}
	slices.Sort(vals)
	at := func(q float64) float64 {
		i := int(q * float64(len(vals)-1))
		return vals[i]
	}
	return Dist{Count: len(vals), P50: at(0.50), P99: at(0.99), Max: vals[len(vals)-1]}
}

// SubscriberLoss is one participant's loss over the window.
type SubscriberLoss struct {
	Name     string  `json:"name"`
	Expected int64   `json:"expected"`
	Received int64   `json:"received"`
	Percent  float64 `json:"lossPercent"`
	// MissingStreams counts expected streams that never arrived.
	MissingStreams int `json:"missingStreams"`
}

// Result is what one run measured.
type Result struct {
	Target string `json:"target"`
	Config Config `json:"config"`

	Participants int `json:"participants"`
	Subscribers  int `json:"subscribers"`
	Streams      int `json:"streams"`

	Window time.Duration `json:"windowNs"`
	// Forwarded counts packets received by all participants with a send
	// time inside the window (duplicates included: each cost the server
	// a write).
	Forwarded        int64   `json:"forwardedPackets"`
	PacketsPerSecond float64 `json:"packetsPerSecond"`
	Mbps             float64 `json:"mbps"`

	TargetCPU  time.Duration `json:"targetCpuNs"`
	LoadgenCPU time.Duration `json:"loadgenCpuNs"`
	// CPUPerPacket is the server's user+system CPU in the window divided
	// by Forwarded, in microseconds.
	CPUPerPacket float64 `json:"cpuPerPacketUs"`
	// UserPerPacket and SystemPerPacket split CPUPerPacket into the
	// process's own code and the kernel working for it (syscalls).
	UserPerPacket   float64       `json:"userCpuPerPacketUs"`
	SystemPerPacket float64       `json:"systemCpuPerPacketUs"`
	TargetUserCPU   time.Duration `json:"targetUserCpuNs"`
	TargetCPUCores  float64       `json:"targetCpuCores"`
	LoadgenCores    float64       `json:"loadgenCpuCores"`

	Loss        []SubscriberLoss `json:"loss"`
	LossMean    float64          `json:"lossMeanPercent"`
	LossMax     float64          `json:"lossMaxPercent"`
	LossTotal   float64          `json:"lossTotalPercent"`
	Missing     int              `json:"missingStreams"`
	BadPackets  int64            `json:"badPackets"`
	LatencyUs   Dist             `json:"latencyUs"`
	JoinFirstMs Dist             `json:"joinToFirstPacketMs"`
	JoinKeyMs   Dist             `json:"joinToFirstKeyframeMs"`
	// LastJoinKeyMs is the participant that joined last: its join to the
	// first keyframe of the last of its video streams to show one (0 when
	// it expects no video or got no keyframe).
	LastJoinKeyMs float64 `json:"lastJoinerToFirstKeyframeMs"`

	RSSBaseline int64 `json:"rssBaselineBytes"`
	RSSEnd      int64 `json:"rssEndBytes"`
	// RSSPerParticipant is the server's RSS growth from before the first
	// join to the end of the window, divided by the participants (each has
	// one peer connection to the gateway; two to the bare forwarder when
	// it both publishes and receives).
	RSSPerParticipant float64 `json:"rssPerParticipantBytes"`

	// Offers is, per participant, the offers exchanged on its connections
	// to the server (either side's; a burst of changes coalesced into one
	// offer counts once); OffersPerJoin is their mean divided by the
	// participants, the renegotiation a join costs each client. Gateway
	// runs only.
	Offers        Dist    `json:"offersPerClient"`
	OffersPerJoin float64 `json:"offersPerClientPerJoin"`

	// KeyframeRequests lists, per published video track (and any other
	// track that was asked for one), when its publisher received keyframe
	// requests, over the whole run: joins, window and drain. The times are
	// the publisher's RTCP callback's: a load generator busy with many
	// peer connections sees a request up to hundreds of milliseconds after
	// it reached its socket, and two of them closer than they were sent.
	KeyframeRequests []KeyframeRequests `json:"keyframeRequests,omitempty"`

	// Refused is the gateway's signaling refusals after the run, by reason
	// ("payload_too_large", ...; "descriptions" for refused offers and
	// answers). Empty for the bare forwarder.
	Refused map[string]float64 `json:"refused,omitempty"`

	Errors []string `json:"errors,omitempty"`
}

// KeyframeRequests is what one published track was asked for: the arrival
// times (Unix ns, in order) of every PLI and FIR its publisher received.
type KeyframeRequests struct {
	Publisher string  `json:"publisher"`
	Stream    uint32  `json:"stream"`
	AtNs      []int64 `json:"atNs"`
}

// MinGap is the shortest time between two consecutive requests; ok is
// false with fewer than two requests (no gap to measure).
func (k KeyframeRequests) MinGap() (gap time.Duration, ok bool) {
	for i := 1; i < len(k.AtNs); i++ {
		if d := time.Duration(k.AtNs[i] - k.AtNs[i-1]); !ok || d < gap {
			gap, ok = d, true
		}
	}
	return gap, ok
}

// compute fills the derived figures from the members' inboxes, which no
// reader touches any more.
func (r *Result) compute(members []*member, w window, subscribers, streams int) {
	r.Participants = len(members)
	r.Subscribers = subscribers
	r.Streams = streams
	r.Window = time.Duration(w.endNs - w.startNs)
	var lat, joinFirst, joinKey []float64
	var last *member // the last participant to join that expects streams
	var bytes int64
	var expectedAll, receivedAll int64
	video := map[uint32]bool{}
	for _, m := range members {
		for _, t := range m.tracks {
			if t.kind == Video {
				video[t.stream] = true
			}
			if at := t.keyRequestTimes(); t.kind == Video || len(at) > 0 {
				r.KeyframeRequests = append(r.KeyframeRequests, KeyframeRequests{Publisher: m.p.Name, Stream: t.stream, AtNs: at})
			}
		}
	}
	// Publishers' tracks are known to every member through expect; the
	// kind comes from the run's tracks.
	for _, m := range members {
		if len(m.expect) == 0 {
			continue // a publisher alone with subscribers receives nothing
		}
		if last == nil || m.p.JoinNs > last.p.JoinNs {
			last = m
			r.LastJoinKeyMs = 0
		}
		byStream := map[uint32][]*streamRx{}
		m.in.mu.Lock()
		for _, s := range m.in.streams {
			byStream[s.stream] = append(byStream[s.stream], s)
		}
		r.BadPackets += m.in.bad
		m.in.mu.Unlock()
		loss := SubscriberLoss{Name: m.p.Name}
		for _, id := range m.expect {
			rxs := byStream[id]
			seq := w.seqs[id]
			expected := int64(seq[1] - seq[0])
			loss.Expected += expected
			if len(rxs) == 0 {
				loss.MissingStreams++
				continue
			}
			merged := mergeRx(rxs)
			loss.Received += int64(min(merged.countRange(seq[0], seq[1]), int(expected)))
			joinFirst = append(joinFirst, float64(merged.firstNs-m.p.JoinNs)/1e6)
			if video[id] {
				if merged.firstKeyNs > 0 {
					ms := float64(merged.firstKeyNs-m.p.JoinNs) / 1e6
					joinKey = append(joinKey, ms)
					if m == last {
						r.LastJoinKeyMs = max(r.LastJoinKeyMs, ms)
					}
				}
			}
			for _, rx := range rxs {
				for _, s := range rx.samples {
					if s.sendNs >= w.startNs && s.sendNs < w.endNs {
						r.Forwarded++
						bytes += int64(s.size)
						lat = append(lat, float64(s.latNs)/1e3)
					}
				}
			}
		}
		if loss.Expected > 0 {
			loss.Percent = 100 * float64(loss.Expected-loss.Received) / float64(loss.Expected)
		}
		expectedAll += loss.Expected
		receivedAll += loss.Received
		r.Missing += loss.MissingStreams
		r.Loss = append(r.Loss, loss)
	}
	sort.SliceStable(r.Loss, func(i, j int) bool { return r.Loss[i].Percent > r.Loss[j].Percent })
	if n := len(r.Loss); n > 0 {
		var sum float64
		for _, l := range r.Loss {
			sum += l.Percent
		}
		r.LossMean = sum / float64(n)
		r.LossMax = r.Loss[0].Percent
	}
	if expectedAll > 0 {
		r.LossTotal = 100 * float64(expectedAll-receivedAll) / float64(expectedAll)
	}
	secs := r.Window.Seconds()
	if secs > 0 {
		r.PacketsPerSecond = float64(r.Forwarded) / secs
		r.Mbps = float64(bytes) * 8 / secs / 1e6
		r.TargetCPUCores = r.TargetCPU.Seconds() / secs
		r.LoadgenCores = r.LoadgenCPU.Seconds() / secs
	}
	if r.Forwarded > 0 {
		r.CPUPerPacket = float64(r.TargetCPU.Microseconds()) / float64(r.Forwarded)
		r.UserPerPacket = float64(r.TargetUserCPU.Microseconds()) / float64(r.Forwarded)
		r.SystemPerPacket = r.CPUPerPacket - r.UserPerPacket
	}
	if len(members) > 0 {
		r.RSSPerParticipant = float64(r.RSSEnd-r.RSSBaseline) / float64(len(members))
	}
	r.LatencyUs = distOf(lat)
	r.JoinFirstMs = distOf(joinFirst)
	r.JoinKeyMs = distOf(joinKey)
}

// mergeRx joins what several readers saw of one stream (a stream can reach
// a participant on more than one track, e.g. after a renegotiation).
func mergeRx(rxs []*streamRx) *streamRx {
	if len(rxs) == 1 {
		return rxs[0]
	}
	out := &streamRx{stream: rxs[0].stream}
	for _, rx := range rxs {
		if len(rx.seen) > len(out.seen) {
			out.seen = append(out.seen, make([]uint64, len(rx.seen)-len(out.seen))...)
		}
		for i, w := range rx.seen {
			out.seen[i] |= w
		}
		if out.firstNs == 0 || rx.firstNs < out.firstNs {
			out.firstNs = rx.firstNs
		}
		if rx.firstKeyNs != 0 && (out.firstKeyNs == 0 || rx.firstKeyNs < out.firstKeyNs) {
			out.firstKeyNs = rx.firstKeyNs
		}
	}
	return out
}

func selfPID() int { return os.Getpid() }
