package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/transport/v5/udp"
	"github.com/pion/webrtc/v4"
)

// maxSDP bounds a signaling body; a real SDP of a few dozen tracks is far
// smaller.
const maxSDP = 1 << 20

// waitLimit bounds how long a subscribe request waits for publishers.
const waitLimit = 30 * time.Second

// published is one publisher track and its fan-out track.
type published struct {
	owner string
	local *webrtc.TrackLocalStaticRTP
}

// forwarder holds every peer connection and published track.
type forwarder struct {
	api    *webrtc.API
	udpMux ice.UDPMux
	log    *slog.Logger

	mu       sync.Mutex
	tracks   []published
	changed  chan struct{} // closed and replaced when tracks changes
	pcs      []*webrtc.PeerConnection
	sessions map[string]*webrtc.PeerConnection
	closed   bool
	wg       sync.WaitGroup
}

func newForwarder(udpPort, batch int, batchInterval time.Duration, log *slog.Logger) (*forwarder, error) {
	var se webrtc.SettingEngine
	// Loopback only: the baseline never reaches beyond this machine.
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetInterfaceFilter(func(name string) bool { return name == "lo" || name == "lo0" })
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	f := &forwarder{log: log, changed: make(chan struct{}), sessions: map[string]*webrtc.PeerConnection{}}
	if udpPort != 0 && batch > 0 {
		conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: udpPort})
		if err != nil {
			return nil, fmt.Errorf("udp port %d: %w", udpPort, err)
		}
		mux := ice.NewUDPMuxDefault(ice.UDPMuxParams{UDPConn: udp.NewBatchConn(conn, batch, batchInterval)})
		f.udpMux = mux
		se.SetICEUDPMux(mux)
	} else if udpPort != 0 {
		mux, err := ice.NewMultiUDPMuxFromPort(udpPort,
			ice.UDPMuxFromPortWithIPFilter(func(ip net.IP) bool { return ip.IsLoopback() }),
			ice.UDPMuxFromPortWithLoopback())
		if err != nil {
			return nil, fmt.Errorf("udp port %d: %w", udpPort, err)
		}
		f.udpMux = mux
		se.SetICEUDPMux(mux)
	}
	// No MediaEngine and no interceptor registry: pion's defaults.
	f.api = webrtc.NewAPI(webrtc.WithSettingEngine(se))
	return f, nil
}

func (f *forwarder) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	mux.HandleFunc("POST /publish", func(w http.ResponseWriter, r *http.Request) {
		offer, err := readSDP(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		answer, err := f.publish(r.URL.Query().Get("participant"), offer)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		writeJSON(w, answer)
	})
	mux.HandleFunc("POST /subscribe", func(w http.ResponseWriter, r *http.Request) {
		want, err := strconv.Atoi(r.URL.Query().Get("want"))
		if err != nil || want < 0 || want > 100000 {
			http.Error(w, "want: a track count is required", http.StatusBadRequest)
			return
		}
		wctx, cancel := context.WithTimeout(r.Context(), waitLimit)
		defer cancel()
		session, offer, err := f.subscribe(wctx, r.URL.Query().Get("participant"), want)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		writeJSON(w, map[string]any{"session": session, "offer": offer})
	})
	mux.HandleFunc("POST /answer", func(w http.ResponseWriter, r *http.Request) {
		answer, err := readSDP(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if err := f.answer(r.URL.Query().Get("session"), answer); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	return mux
}

func readSDP(r *http.Request) (webrtc.SessionDescription, error) {
	var sd webrtc.SessionDescription
	b, err := io.ReadAll(io.LimitReader(r.Body, maxSDP+1))
	if err != nil {
		return sd, fmt.Errorf("read body: %w", err)
	}
	if len(b) > maxSDP {
		return sd, errors.New("body too large")
	}
	if err := json.Unmarshal(b, &sd); err != nil {
		return sd, fmt.Errorf("session description: %w", err)
	}
	return sd, nil
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func (f *forwarder) newPC() (*webrtc.PeerConnection, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil, errors.New("shutting down")
	}
	pc, err := f.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, fmt.Errorf("peer connection: %w", err)
	}
	f.pcs = append(f.pcs, pc)
	return pc, nil
}

// publish answers a publisher's offer; each track it sends becomes a local
// track that subscribers get.
func (f *forwarder) publish(owner string, offer webrtc.SessionDescription) (*webrtc.SessionDescription, error) {
	pc, err := f.newPC()
	if err != nil {
		return nil, err
	}
	pc.OnTrack(func(remote *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		local, err := webrtc.NewTrackLocalStaticRTP(remote.Codec().RTPCodecCapability, remote.ID(), remote.StreamID())
		if err != nil {
			f.log.Warn("fan-out track", "error", err)
			return
		}
		f.mu.Lock()
		f.tracks = append(f.tracks, published{owner: owner, local: local})
		close(f.changed)
		f.changed = make(chan struct{})
		f.mu.Unlock()
		for {
			pkt, _, err := remote.ReadRTP()
			if err != nil {
				return
			}
			if err := local.WriteRTP(pkt); err != nil && !errors.Is(err, io.ErrClosedPipe) {
				f.log.Debug("write", "error", err)
			}
		}
	})
	return negotiate(pc, offer)
}

// negotiate applies a remote offer and returns the complete answer.
func negotiate(pc *webrtc.PeerConnection, offer webrtc.SessionDescription) (*webrtc.SessionDescription, error) {
	if err := pc.SetRemoteDescription(offer); err != nil {
		return nil, fmt.Errorf("set offer: %w", err)
	}
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		return nil, fmt.Errorf("create answer: %w", err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(answer); err != nil {
		return nil, fmt.Errorf("set answer: %w", err)
	}
	<-gathered
	return pc.LocalDescription(), nil
}

// subscribe waits for want tracks not owned by owner, then offers them.
func (f *forwarder) subscribe(ctx context.Context, owner string, want int) (string, *webrtc.SessionDescription, error) {
	var tracks []*webrtc.TrackLocalStaticRTP
	for {
		f.mu.Lock()
		tracks = tracks[:0]
		for _, t := range f.tracks {
			if t.owner != owner {
				tracks = append(tracks, t.local)
			}
		}
		changed := f.changed
		f.mu.Unlock()
		if len(tracks) >= want {
			break
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return "", nil, fmt.Errorf("%d of %d tracks published: %w", len(tracks), want, ctx.Err())
		}
	}
	pc, err := f.newPC()
	if err != nil {
		return "", nil, err
	}
	for _, t := range tracks {
		sender, err := pc.AddTrack(t)
		if err != nil {
			return "", nil, fmt.Errorf("add track: %w", err)
		}
		// RTCP must be read for the interceptors (NACK responder,
		// reports) to see it.
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			buf := make([]byte, 1500)
			for {
				if _, _, err := sender.Read(buf); err != nil {
					return
				}
			}
		}()
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return "", nil, fmt.Errorf("create offer: %w", err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		return "", nil, fmt.Errorf("set offer: %w", err)
	}
	<-gathered
	var id [8]byte
	_, _ = rand.Read(id[:])
	session := hex.EncodeToString(id[:])
	f.mu.Lock()
	f.sessions[session] = pc
	f.mu.Unlock()
	return session, pc.LocalDescription(), nil
}

func (f *forwarder) answer(session string, answer webrtc.SessionDescription) error {
	f.mu.Lock()
	pc := f.sessions[session]
	delete(f.sessions, session)
	f.mu.Unlock()
	if pc == nil {
		return fmt.Errorf("unknown session %q", session)
	}
	if err := pc.SetRemoteDescription(answer); err != nil {
		return fmt.Errorf("set answer: %w", err)
	}
	return nil
}

func (f *forwarder) close() {
	f.mu.Lock()
	f.closed = true
	pcs := f.pcs
	f.pcs = nil
	f.mu.Unlock()
	for _, pc := range pcs {
		_ = pc.Close()
	}
	f.wg.Wait()
	if f.udpMux != nil {
		_ = f.udpMux.Close()
	}
}
