package gateway

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"

	"github.com/pion/ice/v4"
	"github.com/pion/transport/v5/stdnet"
	"github.com/pion/webrtc/v4"

	"github.com/rtcio-gateway/rtcio-gateway/config"
	"github.com/rtcio-gateway/rtcio-gateway/gateway/sfu"
	"github.com/rtcio-gateway/rtcio-gateway/internal/pionlog"
)

// mediaStack is the network side of the gateway's own peers: the pion API
// and, when configured, the one UDP socket every peer connection shares.
type mediaStack struct {
	api    *webrtc.API
	binder *sfu.Binder
	guard  *sfu.SSRCGuard
	udpMux ice.UDPMux
	tcpMux *ice.TCPMuxDefault
	tcpLn  net.Listener
}

func newMediaStack(cfg config.Media, log *slog.Logger) (*mediaStack, error) {
	var allowed []netip.Prefix
	for i, s := range cfg.AllowedIPs {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("media.allowed_ips[%d]: %w", i, err)
		}
		allowed = append(allowed, p)
	}
	ipAllowed := func(ip net.IP) bool {
		if len(allowed) == 0 {
			return true
		}
		addr, ok := netip.AddrFromSlice(ip)
		if !ok {
			return false
		}
		addr = addr.Unmap()
		for _, p := range allowed {
			if p.Contains(addr) {
				return true
			}
		}
		return false
	}
	loopback := false
	for _, p := range allowed {
		if p.Contains(netip.MustParseAddr("127.0.0.1")) || p.Contains(netip.IPv6Loopback()) {
			loopback = true
		}
	}

	m := &mediaStack{binder: sfu.NewBinder(), guard: sfu.NewSSRCGuard(cfg.MaxUnknownSSRCs)}
	if cfg.UDPPort != 0 {
		opts := []ice.UDPMuxFromPortOption{
			ice.UDPMuxFromPortWithIPFilter(ipAllowed),
			ice.UDPMuxFromPortWithLoopback(),
		}
		if cfg.UDPReadBufferBytes > 0 {
			opts = append(opts, ice.UDPMuxFromPortWithReadBufferSize(cfg.UDPReadBufferBytes))
		}
		if cfg.UDPBatchSize > 0 {
			std, err := stdnet.NewNet()
			if err != nil {
				return nil, fmt.Errorf("media.udp_batch_size: %w", err)
			}
			opts = append(opts, ice.UDPMuxFromPortWithNet(batchNet{Net: std, size: cfg.UDPBatchSize, interval: cfg.UDPBatchInterval}))
		}
		mux, err := ice.NewMultiUDPMuxFromPort(cfg.UDPPort, opts...)
		if err != nil {
			return nil, fmt.Errorf("media.udp_port %d: %w", cfg.UDPPort, err)
		}
		m.udpMux = mux
	}
	if cfg.TCPPort != 0 {
		host := ""
		if onlyLoopback(allowed) {
			host = "127.0.0.1"
		}
		ln, err := net.Listen("tcp", net.JoinHostPort(host, fmt.Sprint(cfg.TCPPort)))
		if err != nil {
			m.close()
			return nil, fmt.Errorf("media.tcp_port %d: %w", cfg.TCPPort, err)
		}
		m.tcpLn = ln
		m.tcpMux = ice.NewTCPMuxDefault(ice.TCPMuxParams{Listener: ln, ReadBufferSize: 64, WriteBufferSize: 4 << 20})
	}
	pionLogs := pionlog.New(log.With("component", "pion"))
	pionLogs.Watch = m.guard.Watch
	api, err := sfu.NewAPI(m.binder, func(se *webrtc.SettingEngine) {
		se.LoggerFactory = pionLogs
		// A server has no use for mDNS candidates, and obfuscating its own
		// addresses would only cost clients a lookup.
		se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
		se.SetIPFilter(ipAllowed)
		se.SetIncludeLoopbackCandidate(loopback)
		if m.udpMux != nil {
			se.SetICEUDPMux(m.udpMux)
		}
		networks := []webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6}
		if m.tcpMux != nil {
			se.SetICETCPMux(m.tcpMux)
			networks = append(networks, webrtc.NetworkTypeTCP4, webrtc.NetworkTypeTCP6)
		}
		se.SetNetworkTypes(networks)
		if len(cfg.PublicIPs) > 0 {
			se.SetNAT1To1IPs(cfg.PublicIPs, webrtc.ICECandidateTypeHost)
		}
	})
	if err != nil {
		m.close()
		return nil, err
	}
	m.api = api
	return m, nil
}

// MediaAPI is the gateway's media stack for a peer outside a gateway
// (rtcio-gateway join): the pion API with the forwarding plane's RTCP
// routing, per the media configuration. Call closeFn when done.
type MediaAPIs struct {
	API    *webrtc.API
	Binder *sfu.Binder
	Guard  *sfu.SSRCGuard
}

// MediaAPI builds the media stack described by cfg; pion logs to log.
func MediaAPI(cfg config.Media, log *slog.Logger) (MediaAPIs, func(), error) {
	m, err := newMediaStack(cfg, log)
	if err != nil {
		return MediaAPIs{}, nil, err
	}
	return MediaAPIs{API: m.api, Binder: m.binder, Guard: m.guard}, m.close, nil
}

func (m *mediaStack) close() {
	if m.udpMux != nil {
		_ = m.udpMux.Close()
	}
	if m.tcpMux != nil {
		_ = m.tcpMux.Close()
	}
	if m.tcpLn != nil {
		_ = m.tcpLn.Close()
	}
}

func onlyLoopback(allowed []netip.Prefix) bool {
	if len(allowed) == 0 {
		return false
	}
	for _, p := range allowed {
		if !p.Addr().IsLoopback() {
			return false
		}
	}
	return true
}

// iceServers turns configured URLs into the gateway peers' ICE servers.
func iceServers(urls []string) []webrtc.ICEServer {
	if len(urls) == 0 {
		return nil
	}
	return []webrtc.ICEServer{{URLs: urls}}
}
