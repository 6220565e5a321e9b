//go:build linux

package loadtest

import (
	"encoding/binary"
	"net"
	"syscall"
)

// enableRxTimestamps asks the kernel to stamp each datagram c receives
// with its arrival time (nanoseconds, the realtime clock).
func enableRxTimestamps(c *net.UDPConn) error {
	raw, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_TIMESTAMPNS, 1)
	}); err != nil {
		return err
	}
	return serr
}

// rxTimestamp reads the arrival time (Unix ns) from a datagram's control
// messages: a struct timespec, two native words.
func rxTimestamp(oob []byte) (int64, bool) {
	msgs, err := syscall.ParseSocketControlMessage(oob)
	if err != nil {
		return 0, false
	}
	for _, m := range msgs {
		if m.Header.Level != syscall.SOL_SOCKET || m.Header.Type != syscall.SCM_TIMESTAMPNS {
			continue
		}
		switch len(m.Data) {
		case 16:
			return int64(binary.NativeEndian.Uint64(m.Data[0:]))*1e9 + int64(binary.NativeEndian.Uint64(m.Data[8:])), true
		case 8:
			return int64(int32(binary.NativeEndian.Uint32(m.Data[0:])))*1e9 + int64(int32(binary.NativeEndian.Uint32(m.Data[4:]))), true
		}
	}
	return 0, false
}
