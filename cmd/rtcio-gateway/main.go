// Command rtcio-gateway runs the rtcio-gateway server.
//
//	rtcio-gateway serve [flags]          serve signaling, admin API and probes
//	rtcio-gateway join --url U --room R [--record DIR]
//	                                     join any rtc.io room as a peer, record it
//	rtcio-gateway compose DIR/ROOM [-o out.mp4]
//	                                     one playable file of a recorded meeting
//	rtcio-gateway config check [flags]   load and validate the configuration
//	rtcio-gateway version                print the build's version
//
// Configuration comes from defaults, then a YAML file (--config), then
// RTCIO_* environment variables, then flags, each overriding the last.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/rtcio-gateway/rtcio-gateway/config"
	"github.com/rtcio-gateway/rtcio-gateway/gateway"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	// After the first signal, a second one kills at once: stop() restores
	// the default handling.
	go func() {
		<-ctx.Done()
		stop()
	}()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Environ()))
}

const usage = `usage:
  rtcio-gateway serve [flags]          serve signaling, admin API and probes
  rtcio-gateway join --url U --room R [--record DIR] [flags]
                                       join a room of any rtc.io server and record it
  rtcio-gateway compose DIR/ROOM [-o out.mp4|out.webm]
                                       one playable file of a recorded meeting (needs ffmpeg)
  rtcio-gateway config check [flags]   load and validate the configuration
  rtcio-gateway version                print the build's version
Run a command with -h for its flags.`

// run is the whole program behind main, so tests can call it.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, environ []string) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], stderr, environ)
	case "join":
		return join(ctx, args[1:], stderr, environ)
	case "compose":
		return composeMeeting(ctx, args[1:], stdout, stderr)
	case "config":
		if len(args) < 2 || args[1] != "check" {
			fmt.Fprintln(stderr, usage)
			return 2
		}
		return configCheck(args[2:], stdout, stderr, environ)
	case "version":
		fmt.Fprintln(stdout, version())
		return 0
	case "-h", "-help", "--help", "help":
		fmt.Fprintln(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "unknown command %q\n%s\n", args[0], usage)
	return 2
}

// loadConfig parses a command's flags and loads the configuration.
func loadConfig(name string, args []string, stderr io.Writer, environ []string) (config.Config, int) {
	fs := flag.NewFlagSet("rtcio-gateway "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	loader := config.NewLoader()
	loader.RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return config.Config{}, 0
		}
		return config.Config{}, 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "unexpected arguments: %v\n", fs.Args())
		return config.Config{}, 2
	}
	cfg, err := loader.Load(environ)
	for _, w := range loader.Warnings() {
		fmt.Fprintln(stderr, "warning:", w)
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return config.Config{}, 1
	}
	return cfg, -1
}

func configCheck(args []string, stdout, stderr io.Writer, environ []string) int {
	cfg, code := loadConfig("config check", args, stderr, environ)
	if code >= 0 {
		return code
	}
	fmt.Fprintln(stdout, cfg.String())
	fmt.Fprintln(stdout, "configuration OK")
	return 0
}

func serve(ctx context.Context, args []string, stderr io.Writer, environ []string) int {
	cfg, code := loadConfig("serve", args, stderr, environ)
	if code >= 0 {
		return code
	}
	log := newLogger(cfg.Log, stderr)
	log.Info("starting rtcio-gateway", "version", version(), "config", cfg)
	srv, err := gateway.New(cfg, log)
	if err != nil {
		log.Error("cannot build the server", "error", err)
		return 1
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		log.Error("cannot listen", "addr", cfg.Listen, "error", err)
		return 1
	}
	if err := srv.Serve(ctx, ln); err != nil {
		log.Error("server stopped with an error", "error", err)
		return 1
	}
	return 0
}

func newLogger(cfg config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.Level)); err != nil {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// version reports the module version and VCS revision the binary was built
// from, as the Go toolchain recorded them.
func version() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "rtcio-gateway (unknown build)"
	}
	v := "rtcio-gateway " + info.Main.Version
	var rev, modified string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = "+dirty"
			}
		}
	}
	if rev != "" {
		v += " (" + rev + modified + ")"
	}
	return v + " " + info.GoVersion
}
