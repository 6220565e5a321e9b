package loadtest

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"

	"github.com/rtcio-gateway/rtcio-gateway/rtcio"
)

// Target is the server under test: something participants join, that
// relays every published track to every other participant.
type Target interface {
	// Name is "gateway" or "bare", as reports print it.
	Name() string
	// PID is the server's process, whose CPU and memory are measured.
	PID() int
	// Join connects one participant: it publishes p.Tracks and hands every
	// received track to p.OnTrack. It records the join instant in
	// p.JoinNs and returns once the join request is sent; media arrives
	// later.
	Join(ctx context.Context, p *Participant) (Conn, error)
}

// Conn is one participant's connection to a Target.
type Conn interface {
	Close() error
}

// Participant is one simulated client.
type Participant struct {
	Index int
	Name  string
	// Tracks to publish (none for a pure subscriber).
	Tracks []*webrtc.TrackLocalStaticRTP
	// Expect is how many tracks the participant should receive.
	Expect int
	// OnTrack receives every remote track; the target calls it once per
	// track, from any goroutine.
	OnTrack func(*webrtc.TrackRemote)
	// OnRTCP, when set, receives the RTCP the server sent about one of
	// the participant's tracks (keyframe requests, reports).
	OnRTCP func(track webrtc.TrackLocal, pkts []rtcp.Packet)
	// JoinNs is set by Join: the Unix ns at which the participant asked
	// to join.
	JoinNs int64

	establishedOnce sync.Once
	established     chan struct{}
}

// Established is closed when the server sent RTCP about one of the
// participant's published tracks: proof that its media reaches the server.
func (p *Participant) Established() <-chan struct{} { return p.established }

// HandleRTCP is what a Target calls with RTCP about a published track: it
// marks the participant established and passes the packets on.
func (p *Participant) HandleRTCP(track webrtc.TrackLocal, pkts []rtcp.Packet) {
	p.establishedOnce.Do(func() { close(p.established) })
	if p.OnRTCP != nil {
		p.OnRTCP(track, pkts)
	}
}

// NewParticipant makes a participant; Run does this for its scenarios.
func NewParticipant(index int, name string) *Participant {
	return &Participant{Index: index, Name: name, established: make(chan struct{})}
}

// GatewayTarget joins participants to an rtcio-gateway room with Go rtc.io
// clients, exactly as a browser would: one socket.io connection and one peer
// connection (to the room's gateway peer) each.
type GatewayTarget struct {
	URL string
	// URLs, when set, are the gateways of one cluster (URL is then
	// ignored): participant i connects to URLs[i mod len(URLs)], so a
	// room's participants are spread over the nodes round-robin.
	URLs []string
	Pid  int
	Room string
	// API builds the clients' peer connections; nil means
	// rtcio.LoopbackAPI() with pion's default interceptors.
	API *webrtc.API
	// Logger receives the clients' logs; nil discards them.
	Logger *slog.Logger
}

// Name implements Target.
func (g *GatewayTarget) Name() string { return "gateway" }

// PID implements Target.
func (g *GatewayTarget) PID() int { return g.Pid }

// Join implements Target.
func (g *GatewayTarget) Join(ctx context.Context, p *Participant) (Conn, error) {
	api := g.API
	if api == nil {
		var err error
		if api, err = rtcio.LoopbackAPI(); err != nil {
			return nil, err
		}
	}
	url := g.urlFor(p.Index)
	s, err := rtcio.Dial(ctx, url, rtcio.Options{API: api, Logger: orDiscard(g.Logger)})
	if err != nil {
		return nil, fmt.Errorf("loadtest: %s dial %s: %w", p.Name, url, err)
	}
	s.SetHooks(rtcio.Hooks{RemoteTrack: func(_ string, _ *rtcio.RemoteStream, tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		p.OnTrack(tr)
	}})
	if len(p.Tracks) > 0 {
		locals := make([]webrtc.TrackLocal, len(p.Tracks))
		for i, t := range p.Tracks {
			locals[i] = t
		}
		st, err := rtcio.NewStream(locals...)
		if err != nil {
			_ = s.Close()
			return nil, fmt.Errorf("loadtest: %s stream: %w", p.Name, err)
		}
		st.OnRTCP(func(_ string, t webrtc.TrackLocal, pkts []rtcp.Packet) { p.HandleRTCP(t, pkts) })
		// Publishing before joining puts the stream in the replay
		// registry, so the first offer to the gateway peer carries it.
		if err := s.Emit("camera", map[string]any{"stream": st, "name": p.Name}); err != nil {
			_ = s.Close()
			return nil, fmt.Errorf("loadtest: %s publish: %w", p.Name, err)
		}
	}
	p.JoinNs = time.Now().UnixNano()
	if err := s.Server().Emit("join-room", map[string]any{"roomId": g.Room, "name": p.Name}); err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("loadtest: %s join: %w", p.Name, err)
	}
	return s, nil
}

// urlFor is the gateway participant index connects to.
func (g *GatewayTarget) urlFor(index int) string {
	if len(g.URLs) == 0 {
		return g.URL
	}
	return g.URLs[index%len(g.URLs)]
}

// countOffers fills res.Offers from the gateway participants' peer states.
func countOffers(res *Result, ms []*member) {
	var per []float64
	sum := 0.0
	for _, m := range ms {
		s, ok := m.conn.(*rtcio.Socket)
		if !ok {
			return
		}
		n := 0
		for _, id := range s.Peers() {
			if st, ok := s.Peer(id).State(); ok {
				n += st.OffersSent + st.OffersReceived
			}
		}
		per = append(per, float64(n))
		sum += float64(n)
	}
	if len(per) == 0 {
		return
	}
	res.Offers = distOf(per)
	res.OffersPerJoin = sum / float64(len(per)) / float64(len(per))
}

func orDiscard(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}
