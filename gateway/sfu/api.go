package sfu

import (
	"errors"
	"fmt"
	"sync"

	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/report"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// NewAPI builds the pion API of the gateway's peers. It registers the
// default codecs (with NACK, PLI, FIR and RTX), receiver reports and
// transport-wide congestion feedback towards publishers, and the RTCP
// routing the forwarding plane needs. It deliberately leaves out pion's NACK
// generator and responder and its sender reports: forwarding answers NACKs
// from its own history, NACKs upstream itself and writes sender reports
// that map the publisher's clock (registering pion's too would double all
// three). tune adjusts the SettingEngine (network types, UDP mux, ...).
func NewAPI(router *RTCPRouter, tune ...func(*webrtc.SettingEngine)) (*webrtc.API, error) {
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		return nil, fmt.Errorf("sfu: register codecs: %w", err)
	}
	reg := &interceptor.Registry{}
	rr, err := report.NewReceiverInterceptor()
	if err != nil {
		return nil, fmt.Errorf("sfu: receiver reports: %w", err)
	}
	reg.Add(rr)
	if err := webrtc.ConfigureTWCCSender(m, reg); err != nil {
		return nil, fmt.Errorf("sfu: transport-cc: %w", err)
	}
	reg.Add(router)
	var se webrtc.SettingEngine
	for _, f := range tune {
		f(&se)
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(reg), webrtc.WithSettingEngine(se)), nil
}

// RTCPRouter finds the RTCP writer of the peer connection that sends a
// given SSRC. A pion TrackLocal learns its SSRC when bound but not its peer
// connection, and a down-track needs that connection to send its sender
// reports; this interceptor sees both and joins them.
type RTCPRouter struct {
	mu      sync.Mutex
	writers map[uint32]interceptor.RTCPWriter
	pending map[uint32]*streamWriter // RTP writers waiting for pion to bind their stream
	bound   map[uint32]interceptor.RTPWriter
}

// NewRTCPRouter makes an empty router.
func NewRTCPRouter() *RTCPRouter {
	return &RTCPRouter{
		writers: make(map[uint32]interceptor.RTCPWriter),
		pending: make(map[uint32]*streamWriter),
		bound:   make(map[uint32]interceptor.RTPWriter),
	}
}

// rtpWriter returns the RTP writer a TrackLocal bound to the local stream
// ssrc should use instead of its context's WriteStream. pion connects that
// WriteStream only after Bind returned and silently drops (n == 0, nil
// error) what is written before; a down-track's writer goroutine, started
// in Bind, could lose the keyframe cache replay that way, and a late
// joiner then waited for the publisher's next keyframe. The router's
// interceptor sees pion bind the stream, so these writes wait for it. A
// track bound again to a stream pion already bound (ReplaceTrack on a
// sender that was sending) writes at once.
func (r *RTCPRouter) rtpWriter(ssrc uint32) *streamWriter {
	w := &streamWriter{ready: make(chan struct{}), abort: make(chan struct{})}
	r.mu.Lock()
	defer r.mu.Unlock()
	if bound := r.bound[ssrc]; bound != nil {
		w.w = bound
		close(w.ready)
		return w
	}
	r.pending[ssrc] = w
	return w
}

// forget drops w if pion never bound its stream, and unblocks its writes.
func (r *RTCPRouter) forget(ssrc uint32, w *streamWriter) {
	r.mu.Lock()
	if r.pending[ssrc] == w {
		delete(r.pending, ssrc)
	}
	r.mu.Unlock()
	w.abortOnce.Do(func() { close(w.abort) })
}

var errStreamUnbound = errors.New("sfu: local stream unbound before pion connected it")

// streamWriter writes to a local stream's interceptor chain once pion has
// bound it; until then writes wait.
type streamWriter struct {
	ready     chan struct{}
	abort     chan struct{}
	abortOnce sync.Once
	w         interceptor.RTPWriter // set before ready is closed
}

// WriteRTP implements forwarding.RTPWriter.
func (s *streamWriter) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	select {
	case <-s.ready:
		return s.w.Write(h, payload, nil)
	case <-s.abort:
		return 0, errStreamUnbound
	}
}

// NewInterceptor implements interceptor.Factory: one per peer connection.
func (r *RTCPRouter) NewInterceptor(string) (interceptor.Interceptor, error) {
	return &routerInterceptor{router: r}, nil
}

// Writer returns an RTCP writer for the local stream with this SSRC. It
// resolves the peer connection at each write, since pion may bind the
// interceptor after the track.
func (r *RTCPRouter) Writer(ssrc uint32) RTCPWriterFunc {
	return func(pkts []rtcp.Packet) error {
		r.mu.Lock()
		w := r.writers[ssrc]
		r.mu.Unlock()
		if w == nil {
			return nil
		}
		_, err := w.Write(pkts, nil)
		return err
	}
}

// RTCPWriterFunc adapts a function to forwarding.RTCPWriter.
type RTCPWriterFunc func([]rtcp.Packet) error

// WriteRTCP implements forwarding.RTCPWriter.
func (f RTCPWriterFunc) WriteRTCP(pkts []rtcp.Packet) error { return f(pkts) }

type routerInterceptor struct {
	interceptor.NoOp
	router *RTCPRouter

	mu     sync.Mutex
	writer interceptor.RTCPWriter
	ssrcs  []uint32
}

func (i *routerInterceptor) BindRTCPWriter(w interceptor.RTCPWriter) interceptor.RTCPWriter {
	i.mu.Lock()
	i.writer = w
	pending := i.ssrcs
	i.mu.Unlock()
	i.router.mu.Lock()
	for _, ssrc := range pending {
		i.router.writers[ssrc] = w
	}
	i.router.mu.Unlock()
	return w
}

func (i *routerInterceptor) BindLocalStream(info *interceptor.StreamInfo, w interceptor.RTPWriter) interceptor.RTPWriter {
	// The router is the last interceptor, so w is the writer pion is about
	// to connect the track's WriteStream to.
	i.router.mu.Lock()
	i.router.bound[info.SSRC] = w
	if sw := i.router.pending[info.SSRC]; sw != nil {
		delete(i.router.pending, info.SSRC)
		sw.w = w
		close(sw.ready)
	}
	i.router.mu.Unlock()
	i.mu.Lock()
	i.ssrcs = append(i.ssrcs, info.SSRC)
	writer := i.writer
	i.mu.Unlock()
	if writer != nil {
		i.router.mu.Lock()
		i.router.writers[info.SSRC] = writer
		i.router.mu.Unlock()
	}
	return w
}

func (i *routerInterceptor) UnbindLocalStream(info *interceptor.StreamInfo) {
	i.router.mu.Lock()
	delete(i.router.writers, info.SSRC)
	delete(i.router.bound, info.SSRC)
	i.router.mu.Unlock()
}

func (i *routerInterceptor) Close() error {
	i.mu.Lock()
	ssrcs := i.ssrcs
	i.mu.Unlock()
	i.router.mu.Lock()
	for _, ssrc := range ssrcs {
		delete(i.router.writers, ssrc)
		delete(i.router.bound, ssrc)
	}
	i.router.mu.Unlock()
	return nil
}
