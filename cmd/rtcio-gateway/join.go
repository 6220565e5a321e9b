package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/rtcio-gateway/rtcio-gateway/config"
	"github.com/rtcio-gateway/rtcio-gateway/gateway"
	"github.com/rtcio-gateway/rtcio-gateway/gateway/sfu"
	"github.com/rtcio-gateway/rtcio-gateway/rtcio"
)

// dialedConn is a socket.io connection to another server as a sfu.Conn.
type dialedConn struct {
	rtcio.Signaling
	close func()
}

func (d dialedConn) Close() { d.close() }

// join joins a room of any rtc.io signaling server (ours or
// rtc.io-server) as a participant and records what it receives.
func join(ctx context.Context, args []string, stderr io.Writer, environ []string) int {
	fs := flag.NewFlagSet("rtcio-gateway join", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", "", "signaling server URL (http:// or https://)")
	room := fs.String("room", "", "room to join")
	name := fs.String("name", "rtcio-gateway", "name announced in the room")
	dir := fs.String("record", "", "record every stream received into this directory")
	loader := config.NewLoader()
	loader.RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *url == "" || *room == "" {
		fmt.Fprintln(stderr, "join needs --url and --room")
		return 2
	}
	cfg, err := loader.Load(environ)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	log := newLogger(cfg.Log, stderr)
	api, closeMedia, err := gateway.MediaAPI(cfg.Media, log)
	if err != nil {
		log.Error("media", "error", err)
		return 1
	}
	defer closeMedia()
	cfg.Recording.Dir = *dir
	rec, err := gateway.NewRecorder(cfg.Recording, log)
	if err != nil {
		log.Error("recorder", "error", err)
		return 1
	}
	if rec != nil {
		defer rec.Close()
	}
	dialCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
	sig, closeSig, err := rtcio.DialSignaling(dialCtx, *url, nil)
	cancel()
	if err != nil {
		log.Error("cannot connect", "url", *url, "error", err)
		return 1
	}
	room2, err := sfu.Join(dialedConn{sig, closeSig}, *room, *name, sfu.Config{
		API: api.API, Binder: api.Binder, SSRCGuard: api.Guard, ReceiveOnly: true, Recorder: rec,
		RecordRoom:   func(string) bool { return rec != nil },
		MetadataWait: cfg.Media.MetadataWait,
		Logger:       log.With("component", "join"),
	})
	if err != nil {
		log.Error("cannot join", "room", *room, "error", err)
		return 1
	}
	log.Info("joined", "url", *url, "room", *room, "recording", *dir != "")
	<-ctx.Done()
	room2.Close()
	log.Info("left", "room", *room)
	return 0
}
