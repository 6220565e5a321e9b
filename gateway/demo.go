package gateway

import (
	"fmt"

	"github.com/rtcio-gateway/rtcio-gateway/config"
	"github.com/rtcio-gateway/rtcio-gateway/gateway/demo"
)

// mountDemo serves the demo room page at "/".
func (s *Server) mountDemo(cfg config.Config) error {
	if !cfg.Demo.Enabled {
		return nil
	}
	opts := demo.Options{ClientURL: cfg.Demo.ClientURL, SignalingPath: cfg.Signaling.Path}
	if cfg.TURN.Secret != "" {
		opts.ICEServersURL = TURNPath
	}
	h, err := demo.Handler(opts)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	s.mux.Handle("/", h)
	return nil
}
