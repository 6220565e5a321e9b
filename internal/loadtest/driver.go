package loadtest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"time"
)

// Setup says which servers a run uses and how to start them.
type Setup struct {
	// GatewayBin and BareBin are the binaries started for each run (see
	// Build).
	GatewayBin, BareBin string
	// GatewayURLs and GatewayPID name already running gateways instead of
	// GatewayBin; they must serve SFU rooms with media on loopback. More
	// than one URL: the nodes of one cluster, participants spread over
	// them round-robin; GatewayPID is the one process measured (CPU,
	// memory).
	GatewayURLs []string
	GatewayPID  int
	// GatewayCPUs and BareCPUs pin the servers with taskset ("0").
	GatewayCPUs, BareCPUs string
	// GatewayArgs are appended to the gateway's serve flags.
	GatewayArgs []string
	// BareUDPPort, when set, makes the bare forwarder use one UDP port
	// too; 0 keeps pion's default of a port per connection.
	BareUDPPort bool
	// BareArgs are appended to the bare forwarder's flags (experiments
	// such as --batch-write; the baseline uses none).
	BareArgs []string
	// Pprof is the gateway's pprof address; CPUProfile, when set, saves a
	// CPU profile of the measured window there (needs Pprof).
	Pprof      string
	CPUProfile string
	Log        *slog.Logger
}

// RunGateway starts a gateway (unless one is given), runs cfg against it in
// a fresh room and stops it.
func (s Setup) RunGateway(ctx context.Context, cfg Config) (*Result, error) {
	log := orDiscard(s.Log)
	urls, pid := s.GatewayURLs, s.GatewayPID
	var proc *Process
	if len(urls) == 0 {
		httpPort, err := FreePort("tcp4")
		if err != nil {
			return nil, err
		}
		udpPort, err := FreePort("udp4")
		if err != nil {
			return nil, err
		}
		url := fmt.Sprintf("http://127.0.0.1:%d", httpPort)
		urls = []string{url}
		p, err := Start(ctx, ProcessOptions{
			Bin: s.GatewayBin, Args: GatewayArgs(httpPort, udpPort, s.Pprof, s.GatewayArgs...),
			CPUList: s.GatewayCPUs, URL: url, ReadyPath: "/readyz",
		})
		if err != nil {
			return nil, err
		}
		defer func() {
			if err := p.Stop(); err != nil {
				log.Warn("gateway stop", "error", err)
			}
		}()
		pid, proc = p.PID, p
		log.Info("gateway started", "url", url, "pid", pid, "udpPort", udpPort)
	}
	if s.CPUProfile != "" && s.Pprof != "" {
		cfg.OnWindow = func(ctx context.Context, d time.Duration) {
			if err := fetchProfile(ctx, s.Pprof, d, s.CPUProfile); err != nil {
				log.Warn("cpu profile", "error", err)
			}
		}
	}
	target := &GatewayTarget{URLs: urls, Pid: pid, Room: "loadtest-" + strconv.FormatInt(time.Now().UnixNano(), 36)}
	res, err := Run(ctx, cfg, target, log)
	if err == nil {
		if res.Refused, err = refusalsOf(ctx, urls); err != nil {
			res.Errors = append(res.Errors, err.Error())
			err = nil
		}
		if n := res.Refused["descriptions"]; n > 0 {
			res.Errors = append(res.Errors, fmt.Sprintf("the gateway refused %.0f session descriptions", n))
		}
	}
	if proc != nil && (err != nil || len(res.Errors) > 0) {
		log.Warn("gateway output", "tail", proc.Logs())
	}
	return res, err
}

// RunBare starts the bare forwarder, runs cfg against it and stops it.
func (s Setup) RunBare(ctx context.Context, cfg Config) (*Result, error) {
	log := orDiscard(s.Log)
	httpPort, err := FreePort("tcp4")
	if err != nil {
		return nil, err
	}
	args := []string{"--listen", fmt.Sprintf("127.0.0.1:%d", httpPort)}
	if s.BareUDPPort {
		udpPort, err := FreePort("udp4")
		if err != nil {
			return nil, err
		}
		args = append(args, "--udp-port", strconv.Itoa(udpPort))
	}
	args = append(args, s.BareArgs...)
	url := fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	p, err := Start(ctx, ProcessOptions{Bin: s.BareBin, Args: args, CPUList: s.BareCPUs, URL: url, ReadyPath: "/readyz"})
	if err != nil {
		return nil, err
	}
	defer func() {
		if err := p.Stop(); err != nil {
			log.Warn("bare forwarder stop", "error", err)
		}
	}()
	log.Info("bare forwarder started", "url", url, "pid", p.PID)
	return Run(ctx, cfg, &BareTarget{URL: url, Pid: p.PID}, log)
}

// Compare runs cfg through the gateway and then through the bare forwarder
// (when BareBin is set), so that their ratio comes from one invocation.
func (s Setup) Compare(ctx context.Context, cfg Config) ([]*Result, error) {
	g, err := s.RunGateway(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("gateway run: %w", err)
	}
	out := []*Result{g}
	if s.BareBin == "" {
		return out, nil
	}
	s.CPUProfile = ""
	b, err := s.RunBare(ctx, cfg)
	if err != nil {
		return out, fmt.Errorf("bare run: %w", err)
	}
	return append(out, b), nil
}

// Sweep runs cfg once per subscriber count (gateway, and bare when BareBin
// is set), each on freshly started servers.
func (s Setup) Sweep(ctx context.Context, cfg Config, counts []int) ([]SweepPoint, error) {
	var points []SweepPoint
	for _, n := range counts {
		c := cfg
		c.Subscribers = n
		rs, err := s.Compare(ctx, c)
		if err != nil {
			return points, fmt.Errorf("%d subscribers: %w", n, err)
		}
		pt := SweepPoint{Subscribers: n, Gateway: rs[0]}
		if len(rs) > 1 {
			pt.Bare = rs[1]
		}
		points = append(points, pt)
	}
	return points, nil
}

// fetchProfile saves a CPU profile of d from a pprof endpoint.
func fetchProfile(ctx context.Context, addr string, d time.Duration, path string) error {
	secs := max(1, int(d/time.Second)-1)
	url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, secs)
	req, err := http.NewRequestWithContext(context.WithoutCancel(ctx), http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("profile request: %w", err)
	}
	resp, err := oneShotClient().Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("profile file: %w", err)
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return fmt.Errorf("profile %s: %w", path, err)
	}
	return f.Close()
}
