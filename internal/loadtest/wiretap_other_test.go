//go:build !linux

package loadtest

import (
	"errors"
	"net"
)

// enableRxTimestamps is Linux only here: the tap falls back to the clock
// as each read returns.
func enableRxTimestamps(*net.UDPConn) error {
	return errors.New("loadtest: kernel receive timestamps are read on Linux only")
}

func rxTimestamp([]byte) (int64, bool) { return 0, false }
