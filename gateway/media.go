package gateway

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"

	"github.com/rtcio-gateway/rtcio-gateway/config"
	"github.com/rtcio-gateway/rtcio-gateway/gateway/sfu"
)

// mediaStack is the network side of the gateway's own peers: the pion API
// and, when configured, the one UDP socket every peer connection shares.
type mediaStack struct {
	api    *webrtc.API
	router *sfu.RTCPRouter
	udpMux ice.UDPMux
}

func newMediaStack(cfg config.Media) (*mediaStack, error) {
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

	m := &mediaStack{router: sfu.NewRTCPRouter()}
	if cfg.UDPPort != 0 {
		mux, err := ice.NewMultiUDPMuxFromPort(cfg.UDPPort,
			ice.UDPMuxFromPortWithIPFilter(ipAllowed),
			ice.UDPMuxFromPortWithLoopback(),
		)
		if err != nil {
			return nil, fmt.Errorf("media.udp_port %d: %w", cfg.UDPPort, err)
		}
		m.udpMux = mux
	}
	api, err := sfu.NewAPI(m.router, func(se *webrtc.SettingEngine) {
		// A server has no use for mDNS candidates, and obfuscating its own
		// addresses would only cost clients a lookup.
		se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
		se.SetIPFilter(ipAllowed)
		se.SetIncludeLoopbackCandidate(loopback)
		if m.udpMux != nil {
			se.SetICEUDPMux(m.udpMux)
		}
	})
	if err != nil {
		m.close()
		return nil, err
	}
	m.api = api
	return m, nil
}

func (m *mediaStack) close() {
	if m.udpMux != nil {
		_ = m.udpMux.Close()
	}
}
