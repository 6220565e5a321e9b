package config_test

import (
	"errors"
	"flag"
	"fmt"

	"github.com/rtcio-gateway/rtcio-gateway/config"
)

// A main loads its configuration from flags, the environment (pass
// os.Environ()) and an optional file, then logs the warnings.
func ExampleLoader() {
	fs := flag.NewFlagSet("rtcio-gateway", flag.ContinueOnError)
	l := config.NewLoader()
	l.RegisterFlags(fs)
	args := []string{"--listen", "127.0.0.1:4000", "--set", "signaling.max_rooms_per_socket=2"}
	if err := fs.Parse(args); err != nil {
		fmt.Println(err)
		return
	}
	environ := []string{
		"RTCIO_ROOMS_DEFAULT_TOPOLOGY=sfu",
		"RTCIO_LISTEN=:9999", // a flag beats the environment
		"RTCIO_LOG_LEVL=debug",
	}
	cfg, err := l.Load(environ)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(cfg.Listen, cfg.Rooms.DefaultTopology, cfg.Signaling.MaxRoomsPerSocket)
	for _, w := range l.Warnings() {
		fmt.Println("warning:", w)
	}
	// Output:
	// 127.0.0.1:4000 sfu 2
	// warning: ignoring environment variable RTCIO_LOG_LEVL: no such key (did you mean RTCIO_LOG_LEVEL?)
}

// Validate reports every problem, each naming its key and value.
func ExampleConfig_Validate() {
	cfg := config.Default()
	cfg.Signaling.MaxPayloadBytes = 12
	cfg.Rooms.DefaultTopology = "star"
	err := cfg.Validate()
	fmt.Println(err)
	var fe *config.FieldError
	if errors.As(err, &fe) {
		fmt.Println("first key:", fe.Key)
	}
	// Output:
	// signaling.max_payload_bytes: must be between 1 KiB and 16 MiB, got 12
	// rooms.default_topology: must be one of mesh, sfu, got "star"
	// first key: signaling.max_payload_bytes
}

// Keys documents every setting, e.g. for a "config keys" command.
func ExampleKeys() {
	for _, k := range config.Keys()[:4] {
		fmt.Printf("%-28s %-36s %s\n", k.Path, k.Env, k.Syntax)
	}
	// Output:
	// listen                       RTCIO_LISTEN                         string
	// log.level                    RTCIO_LOG_LEVEL                      string
	// log.format                   RTCIO_LOG_FORMAT                     string
	// signaling.path               RTCIO_SIGNALING_PATH                 string
}
