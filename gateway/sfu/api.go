package sfu

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/report"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/rtcio-gateway/rtcio-gateway/forwarding"
)

// NewAPI builds the pion API of the gateway's peers. It registers the
// default codecs (with NACK, PLI, FIR and RTX), receiver reports and
// transport-wide congestion feedback towards publishers, and the RTCP
// routing the forwarding plane needs. It deliberately leaves out pion's NACK
// generator and responder and its sender reports: forwarding answers NACKs
// from its own history, NACKs upstream itself and writes sender reports
// that map the publisher's clock (registering pion's too would double all
// three). tune adjusts the SettingEngine (network types, UDP mux, ...).
func NewAPI(binder *Binder, tune ...func(*webrtc.SettingEngine)) (*webrtc.API, error) {
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		return nil, fmt.Errorf("sfu: register codecs: %w", err)
	}
	// The audio level (RFC 6464) is what the active speaker is found from.
	if err := m.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: sdp.AudioLevelURI}, webrtc.RTPCodecTypeAudio); err != nil {
		return nil, fmt.Errorf("sfu: audio level extension: %w", err)
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
	reg.Add(binder)
	var se webrtc.SettingEngine
	for _, f := range tune {
		f(&se)
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(reg), webrtc.WithSettingEngine(se)), nil
}

// Binder joins each forwarded track to the peer connection that sends
// it. A pion TrackLocal is bound to a sender without learning its peer
// connection, and a down-track needs that connection: its RTP goes through
// the connection's interceptor chain, its sender reports through the
// connection's RTCP writer, and the subscriber's feedback about it must
// reach it and no other. The binder's interceptor (one per peer
// connection) sees the sender's RTCP reader, its local stream and the
// connection's RTCP writer, and joins them by the sender itself: the RTCP
// reader object a TrackLocalContext carries and the sender id pion gives
// both the context and the stream. No binding is keyed by SSRC, which is
// random per sender and unique only within one connection: two connections
// sending on the same SSRC can never be crossed.
type Binder struct {
	// The binder holds no state, but bind checks a connection belongs to
	// this binder by pointer, and pointers to distinct zero-size values
	// may compare equal.
	_ byte
}

// NewBinder makes a binder.
func NewBinder() *Binder { return &Binder{} }

// NewInterceptor implements interceptor.Factory: one per peer connection.
// The connection's down-tracks share one writer goroutine (a
// forwarding.WriterGroup), closed with the connection.
func (r *Binder) NewInterceptor(pc string) (interceptor.Interceptor, error) {
	return &binderInterceptor{
		binder:  r,
		pc:      pc,
		pending: make(map[string]*streamWriter),
		bound:   make(map[string]interceptor.RTPWriter),
		writers: forwarding.NewWriterGroup(context.Background(), forwarding.WriterGroupConfig{}),
	}, nil
}

var (
	errStreamUnbound = errors.New("sfu: local stream unbound before pion connected it")
	errNotRouted     = errors.New("sfu: the sender's peer connection was not built by this binder's API")
)

// senderBinding is what a forwardTrack gets when it is bound to a sender:
// where its RTP, its sender reports and its subscriber's feedback go.
type senderBinding struct {
	rtp     *streamWriter
	rtcp    RTCPWriterFunc
	reader  *senderRTCP
	conn    *binderInterceptor
	id      string
	writers *forwarding.WriterGroup // the connection's down-track writer
}

// bind finds the peer connection of the sender behind ctx and returns
// where a down-track for it writes (deliver then routes the subscriber's
// feedback to it). It fails when ctx's sender does not belong to a
// connection of this binder (its API was built without it).
func (r *Binder) bind(ctx webrtc.TrackLocalContext) (*senderBinding, error) {
	reader, ok := ctx.RTCPReader().(*senderRTCP)
	if !ok || reader.conn.binder != r {
		return nil, errNotRouted
	}
	conn := reader.conn
	return &senderBinding{
		rtp:     conn.rtpWriter(ctx.ID()),
		rtcp:    conn.writeRTCP,
		reader:  reader,
		conn:    conn,
		id:      ctx.ID(),
		writers: conn.writers,
	}, nil
}

// deliver sets who gets the subscriber's feedback about ssrc (nil: nobody).
func (b *senderBinding) deliver(ssrc uint32, f func([]rtcp.Packet)) {
	b.reader.set(ssrc, f)
}

// release undoes bind: feedback is no longer delivered, and a write still
// waiting for pion to connect the stream returns.
func (b *senderBinding) release() {
	b.reader.set(0, nil)
	b.conn.forget(b.id, b.rtp)
}

// streamWriter writes to a local stream's interceptor chain once pion has
// bound it; until then writes wait. pion connects a TrackLocal's
// WriteStream only after Bind returned and silently drops (n == 0, nil
// error) what is written before; a down-track's writer goroutine, started
// in Bind, could lose the keyframe cache replay that way, and a late
// joiner then waited for the publisher's next keyframe.
type streamWriter struct {
	ready      chan struct{}
	abort      chan struct{}
	abortOnce  sync.Once
	settled    chan struct{} // closed with ready or abort, whichever first
	settleOnce sync.Once
	w          interceptor.RTPWriter // set before ready is closed
}

// Ready implements forwarding.ReadyWriter: the connection's shared writer
// goroutine does not write to a stream pion has not bound yet (the write
// would wait, holding up the connection's other tracks).
func (s *streamWriter) Ready() <-chan struct{} { return s.settled }

func (s *streamWriter) settle() { s.settleOnce.Do(func() { close(s.settled) }) }

// WriteRTP implements forwarding.RTPWriter.
func (s *streamWriter) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	select {
	case <-s.ready:
		return s.w.Write(h, payload, nil)
	case <-s.abort:
		return 0, errStreamUnbound
	}
}

// RTCPWriterFunc adapts a function to forwarding.RTCPWriter.
type RTCPWriterFunc func([]rtcp.Packet) error

// WriteRTCP implements forwarding.RTCPWriter.
func (f RTCPWriterFunc) WriteRTCP(pkts []rtcp.Packet) error { return f(pkts) }

// binderInterceptor is the binder's part of one peer connection. Its maps
// are keyed by pion's sender id, which the TrackLocalContext (ID) and the
// local stream (StreamInfo.ID) share.
type binderInterceptor struct {
	interceptor.NoOp
	binder *Binder
	// pc is pion's id of the peer connection (PeerConnection.ID), by which
	// the room knows whose feedback a down-track gets.
	pc string

	writers *forwarding.WriterGroup

	mu      sync.Mutex
	writer  interceptor.RTCPWriter
	pending map[string]*streamWriter // RTP writers waiting for pion to bind their stream
	bound   map[string]interceptor.RTPWriter
}

// rtpWriter returns the RTP writer of the track bound to sender id. A track
// bound again to a sender pion already connected (ReplaceTrack on a sender
// that was sending) writes at once.
func (i *binderInterceptor) rtpWriter(id string) *streamWriter {
	w := &streamWriter{ready: make(chan struct{}), abort: make(chan struct{}), settled: make(chan struct{})}
	i.mu.Lock()
	defer i.mu.Unlock()
	if bound := i.bound[id]; bound != nil {
		w.w = bound
		close(w.ready)
		w.settle()
		return w
	}
	i.pending[id] = w
	return w
}

// forget drops w if pion never bound its stream, and unblocks its writes.
func (i *binderInterceptor) forget(id string, w *streamWriter) {
	i.mu.Lock()
	if i.pending[id] == w {
		delete(i.pending, id)
	}
	i.mu.Unlock()
	w.abortOnce.Do(func() { close(w.abort) })
	w.settle()
}

// writeRTCP writes on the connection's RTCP writer, which pion may bind
// after the first tracks; until then reports are dropped.
func (i *binderInterceptor) writeRTCP(pkts []rtcp.Packet) error {
	i.mu.Lock()
	w := i.writer
	i.mu.Unlock()
	if w == nil {
		return nil
	}
	_, err := w.Write(pkts, nil)
	return err
}

func (i *binderInterceptor) BindRTCPWriter(w interceptor.RTCPWriter) interceptor.RTCPWriter {
	i.mu.Lock()
	i.writer = w
	i.mu.Unlock()
	return w
}

// BindRTCPReader wraps the RTCP reader of one sender (pion binds one per
// sender, before it binds the sender's track). The binder is the last
// interceptor, so the wrapper is the reader pion hands the track in its
// TrackLocalContext: the track finds the connection through it, and its
// down-track gets the feedback the sender reads without another lookup.
func (i *binderInterceptor) BindRTCPReader(r interceptor.RTCPReader) interceptor.RTCPReader {
	return &senderRTCP{conn: i, next: r}
}

func (i *binderInterceptor) BindLocalStream(info *interceptor.StreamInfo, w interceptor.RTPWriter) interceptor.RTPWriter {
	// The binder is the last interceptor, so w is the writer pion is about
	// to connect the track's WriteStream to.
	i.mu.Lock()
	defer i.mu.Unlock()
	i.bound[info.ID] = w
	if sw := i.pending[info.ID]; sw != nil {
		delete(i.pending, info.ID)
		sw.w = w
		close(sw.ready)
		sw.settle()
	}
	return w
}

func (i *binderInterceptor) UnbindLocalStream(info *interceptor.StreamInfo) {
	i.mu.Lock()
	delete(i.bound, info.ID)
	i.mu.Unlock()
}

func (i *binderInterceptor) Close() error {
	i.mu.Lock()
	clear(i.bound)
	i.writer = nil
	i.mu.Unlock()
	// Every down-track of this connection stops with it (pion unbinds
	// them too; whichever comes first stops them).
	i.writers.Close()
	return nil
}

// senderRTCP is one sender's RTCP reader. Whoever reads the sender's RTCP
// (rtc.io's peer reads every sender's) drives it; each read is handed to
// the bound down-track, filtered to the packets about its stream.
type senderRTCP struct {
	conn *binderInterceptor
	next interceptor.RTCPReader

	mu      sync.Mutex
	ssrc    uint32
	deliver func([]rtcp.Packet)
}

func (s *senderRTCP) set(ssrc uint32, f func([]rtcp.Packet)) {
	s.mu.Lock()
	s.ssrc, s.deliver = ssrc, f
	s.mu.Unlock()
}

// Read implements interceptor.RTCPReader.
func (s *senderRTCP) Read(b []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
	n, a, err := s.next.Read(b, a)
	if err != nil || n == 0 {
		return n, a, err
	}
	s.mu.Lock()
	ssrc, deliver := s.ssrc, s.deliver
	s.mu.Unlock()
	if deliver == nil {
		return n, a, err
	}
	pkts, uerr := rtcp.Unmarshal(b[:n])
	if uerr != nil {
		return n, a, err
	}
	mine := pkts[:0]
	for _, p := range pkts {
		if slices.Contains(p.DestinationSSRC(), ssrc) {
			mine = append(mine, p)
		}
	}
	if len(mine) > 0 {
		deliver(mine)
	}
	return n, a, err
}
