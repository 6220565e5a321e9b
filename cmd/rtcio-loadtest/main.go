// Command rtcio-loadtest measures an rtcio-gateway with Go WebRTC clients
// over loopback, optionally beside a bare pion forwarder (cmd/bare-forwarder)
// driven with the same workload in the same invocation.
//
//	rtcio-loadtest --scenario fanout --publishers 1 --subscribers 100 --baseline
//	rtcio-loadtest --scenario meeting --publishers 6
//	rtcio-loadtest --scenario audio-room --publishers 3 --subscribers 50
//	rtcio-loadtest --sweep 10,25,50,100 --baseline --plot sweep.png
//	rtcio-loadtest --scenario meeting --max --max-start 8 --baseline
//
// By default it builds ./cmd/rtcio-gateway (and ./cmd/bare-forwarder with
// --baseline) from the repository it runs in and starts a fresh server for
// every run, serving all peer connections on one UDP port. --url and --pid
// use a running gateway instead; several --url (or a comma list) spread the
// participants over the nodes of a cluster, round-robin. It prints a table
// and, with --json, writes every result as JSON. Everything stays on
// 127.0.0.1 and every run ends by itself (--timeout bounds the whole
// invocation).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rtcio-gateway/rtcio-gateway/internal/loadtest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, " ") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// urlList is --url: repeatable, each value a comma-separated list.
type urlList []string

func (u *urlList) String() string { return strings.Join(*u, ",") }
func (u *urlList) Set(v string) error {
	for _, part := range strings.Split(v, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			return fmt.Errorf("empty URL in %q", v)
		}
		*u = append(*u, strings.TrimSuffix(part, "/"))
	}
	return nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("rtcio-loadtest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg loadtest.Config
	fs.StringVar(&cfg.Scenario, "scenario", loadtest.Fanout, "fanout, meeting or audio-room")
	fs.IntVar(&cfg.Publishers, "publishers", 1, "publishers (meeting: participants; audio-room: speakers)")
	fs.IntVar(&cfg.Subscribers, "subscribers", 10, "subscribers (listeners); unused by meeting")
	fs.BoolVar(&cfg.Video, "video", true, "fanout publishers send video")
	fs.BoolVar(&cfg.Audio, "audio", false, "fanout publishers send audio")
	fs.StringVar(&cfg.Media.Source, "media", "synthetic", "synthetic (rates below) or fixture (the repository's VP8/Opus files)")
	fs.IntVar(&cfg.Media.VideoPPS, "video-pps", 150, "synthetic video packets per second per track")
	fs.IntVar(&cfg.Media.VideoBitrate, "video-bitrate", 1_200_000, "synthetic video bit/s per track (sets the packet size)")
	fs.IntVar(&cfg.Media.FrameRate, "frame-rate", 30, "synthetic video frames per second")
	fs.DurationVar(&cfg.Media.KeyframeInterval, "keyframe-interval", 2*time.Second, "synthetic video keyframe interval")
	fs.IntVar(&cfg.Media.AudioBitrate, "audio-bitrate", 48_000, "synthetic audio bit/s per track")
	fs.IntVar(&cfg.Media.AudioPPS, "audio-pps", 50, "synthetic audio packets per second per track")
	fs.Float64Var(&cfg.Ramp, "ramp", 20, "participants joining per second")
	fs.DurationVar(&cfg.Warmup, "warmup", time.Second, "wait after every stream arrived, before measuring")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "measured window")
	fs.DurationVar(&cfg.Drain, "drain", 500*time.Millisecond, "receive time after publishers stop")
	fs.DurationVar(&cfg.SettleTimeout, "settle-timeout", 30*time.Second, "bound on each setup step")
	var setup loadtest.Setup
	var urls urlList
	fs.Var(&urls, "url", "use this running gateway (with --pid) instead of starting one; repeat it or give a comma-separated list for the nodes of one cluster: participants are spread over them round-robin")
	fs.IntVar(&setup.GatewayPID, "pid", 0, "process id of the gateway given by --url (with several, the one measured)")
	fs.StringVar(&setup.GatewayBin, "gateway-bin", "", "gateway binary (default: build ./cmd/rtcio-gateway)")
	fs.StringVar(&setup.BareBin, "bare-bin", "", "bare forwarder binary (default: build ./cmd/bare-forwarder)")
	fs.StringVar(&setup.GatewayCPUs, "gateway-cpus", "", "pin the gateway to these CPUs (taskset list, e.g. 0)")
	fs.StringVar(&setup.BareCPUs, "bare-cpus", "", "pin the bare forwarder to these CPUs")
	fs.BoolVar(&setup.BareUDPPort, "bare-udp-mux", false, "bare forwarder on one UDP port (ICE UDP mux) instead of pion's port per connection")
	var gwArgs stringList
	fs.Var(&gwArgs, "gateway-arg", "extra gateway serve argument (repeatable), e.g. --gateway-arg=--set --gateway-arg=key=value")
	var bareArgs stringList
	fs.Var(&bareArgs, "bare-arg", "extra bare forwarder argument (repeatable), for experiments such as --bare-arg=--batch-write=64")
	fs.StringVar(&setup.Pprof, "pprof", "", "gateway pprof address (127.0.0.1:PORT)")
	fs.StringVar(&setup.CPUProfile, "cpuprofile", "", "save a gateway CPU profile of the measured window (needs --pprof)")
	baseline := fs.Bool("baseline", false, "also run the workload through the bare pion forwarder and print ratios")
	sweep := fs.String("sweep", "", "comma-separated subscriber counts to sweep (fanout)")
	plotPath := fs.String("plot", "", "PNG of the sweep")
	jsonPath := fs.String("json", "", "write results as JSON to this file (- for stdout)")
	var maxOpts loadtest.MaxOptions
	search := fs.Bool("max", false, "search the largest size each server completes (meeting: participants, otherwise subscribers): every stream within --max-within of joining, loss under --max-loss; sizes double from --max-start, then a binary search")
	fs.IntVar(&maxOpts.Start, "max-start", 4, "with --max, the first size tried")
	fs.IntVar(&maxOpts.Limit, "max-limit", 200, "with --max, the largest size tried")
	fs.IntVar(&maxOpts.Resolution, "max-resolution", 1, "with --max, stop when the largest complete and the smallest failed size are this close")
	fs.DurationVar(&maxOpts.TrialTimeout, "max-trial-timeout", 4*time.Minute, "with --max, a size whose run (joins included) takes longer is incomplete")
	maxOpts.Criterion = loadtest.DefaultCriterion()
	fs.DurationVar(&maxOpts.Criterion.Within, "max-within", maxOpts.Criterion.Within, "with --max, every stream must arrive this soon after its participant joined")
	fs.Float64Var(&maxOpts.Criterion.MaxLossPercent, "max-loss", maxOpts.Criterion.MaxLossPercent, "with --max, the loss (percent) a complete run stays under")
	repeat := fs.Int("repeat", 1, "run each comparison this many times")
	timeout := fs.Duration("timeout", 30*time.Minute, "bound on the whole invocation")
	verbose := fs.Bool("v", false, "progress logs")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	setup.GatewayURLs = urls
	setup.GatewayArgs = gwArgs
	setup.BareArgs = bareArgs
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	setup.Log = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	cfg.SettleTimeout = max(cfg.SettleTimeout, time.Second)
	if cfg.Media.Source == "fixture" {
		dir, err := fixtureDir()
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		cfg.Media.FixtureDir = dir
	}
	counts, err := parseCounts(*sweep)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	if *search {
		if len(counts) > 0 {
			fmt.Fprintln(stderr, "--max and --sweep do not go together")
			return 2
		}
		if err := maxOpts.Validate(); err != nil {
			fmt.Fprintln(stderr, err)
			return 2
		}
		if err := loadtest.SearchSize(cfg, maxOpts.Start).Defaults().Validate(); err != nil {
			fmt.Fprintln(stderr, err)
			return 2
		}
	} else if err := cfg.Defaults().Validate(); err != nil && len(counts) == 0 {
		fmt.Fprintln(stderr, err)
		return 2
	}
	if (len(setup.GatewayURLs) == 0) != (setup.GatewayPID == 0) {
		fmt.Fprintln(stderr, "--url and --pid go together")
		return 2
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	tmp, err := os.MkdirTemp("", "rtcio-loadtest-")
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)
	if len(setup.GatewayURLs) == 0 && setup.GatewayBin == "" {
		if setup.GatewayBin, err = loadtest.Build(ctx, "./cmd/rtcio-gateway", tmp); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
	}
	if *baseline && setup.BareBin == "" {
		if setup.BareBin, err = loadtest.Build(ctx, "./cmd/bare-forwarder", tmp); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
	}
	if !*baseline {
		setup.BareBin = ""
	}

	var out any
	if *search {
		maxOpts.OnTrial = func(server string, t loadtest.Trial) { writeTrial(stdout, server, t) }
		results, err := setup.Max(ctx, cfg, maxOpts)
		writeMax(stdout, results)
		out = results
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
	} else if len(counts) > 0 {
		cfg.Scenario = loadtest.Fanout
		points, err := setup.Sweep(ctx, cfg, counts)
		for _, p := range points {
			rs := []*loadtest.Result{p.Gateway}
			if p.Bare != nil {
				rs = append(rs, p.Bare)
			}
			_ = loadtest.WriteTable(stdout, rs...)
			fmt.Fprintln(stdout)
		}
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		if *plotPath != "" {
			if err := loadtest.Plot(*plotPath, points); err != nil {
				fmt.Fprintln(stderr, err)
				return 1
			}
		}
		out = points
	} else {
		var all [][]*loadtest.Result
		for i := range max(1, *repeat) {
			rs, err := setup.Compare(ctx, cfg)
			if len(rs) > 0 {
				if *repeat > 1 {
					fmt.Fprintf(stdout, "run %d of %d\n", i+1, *repeat)
				}
				_ = loadtest.WriteTable(stdout, rs...)
				fmt.Fprintln(stdout)
				all = append(all, rs)
			}
			if err != nil {
				fmt.Fprintln(stderr, err)
				return 1
			}
		}
		if len(all) > 1 {
			fmt.Fprintf(stdout, "median of %d runs\n", len(all))
			_ = loadtest.WriteTable(stdout, loadtest.Medians(all)...)
		}
		out = all
	}
	if *jsonPath != "" {
		if err := writeJSON(*jsonPath, out, stdout); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
	}
	return 0
}

func parseCounts(s string) ([]int, error) {
	if s == "" {
		return nil, nil
	}
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 2000 {
			return nil, fmt.Errorf("--sweep: %q is not a subscriber count in 1..2000", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func writeJSON(path string, v any, stdout io.Writer) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("json: %w", err)
	}
	b = append(b, '\n')
	if path == "-" {
		_, err = stdout.Write(b)
		return err
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("json: %w", err)
	}
	return nil
}

// fixtureDir finds internal/testdata/media in the repository.
func fixtureDir() (string, error) {
	root, err := loadtest.ModuleRoot()
	if err != nil {
		return "", err
	}
	return root + "/internal/testdata/media", nil
}

// writeTrial prints one line per size a --max search tried.
func writeTrial(w io.Writer, server string, t loadtest.Trial) {
	verdict := "complete"
	if !t.Complete {
		verdict = "incomplete: " + t.Reason
	}
	if r := t.Result; r != nil {
		fmt.Fprintf(w, "%-8s size %4d  loss %.3f%%  first packet max %.0f ms  last joiner keyframe %.0f ms  %.2f us/packet  %s\n",
			server, t.Size, r.LossTotal, r.JoinFirstMs.Max, r.LastJoinKeyMs, r.CPUPerPacket, verdict)
		return
	}
	fmt.Fprintf(w, "%-8s size %4d  %s\n", server, t.Size, verdict)
}

// writeMax prints each server's largest complete size, its run, and the
// gateway/bare ratio of the sizes.
func writeMax(w io.Writer, results []loadtest.MaxResult) {
	var rs []*loadtest.Result
	for _, m := range results {
		fmt.Fprintf(w, "largest complete (%s): %d\n", m.Server, m.Best)
		if r := m.BestResult(); r != nil {
			rs = append(rs, r)
		}
	}
	if len(results) == 2 && results[1].Best > 0 {
		fmt.Fprintf(w, "gateway/bare: %.2f\n", float64(results[0].Best)/float64(results[1].Best))
	}
	if len(rs) > 0 {
		fmt.Fprintln(w, "runs at the largest complete sizes:")
		_ = loadtest.WriteTable(w, rs...)
	}
}
