package loadtest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// userHZ is the unit of the CPU times in /proc/PID/stat. Linux exposes them
// in USER_HZ, which is 100 on every architecture Go supports, whatever the
// kernel's internal tick.
const userHZ = 100

// CPUTime is a process's user and system CPU time so far.
type CPUTime struct {
	User, System time.Duration
}

// Total is user plus system time.
func (c CPUTime) Total() time.Duration { return c.User + c.System }

// ReadCPU reads a process's CPU accounting from /proc/PID/stat (all its
// threads, not its exited children).
func ReadCPU(pid int) (CPUTime, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return CPUTime{}, fmt.Errorf("loadtest: cpu of pid %d: %w", pid, err)
	}
	return ParseStat(b)
}

// ParseStat extracts utime and stime from the contents of /proc/PID/stat.
// The command name (field 2) may hold spaces and parentheses, so fields are
// counted from the last ')'.
func ParseStat(b []byte) (CPUTime, error) {
	end := bytes.LastIndexByte(b, ')')
	if end < 0 {
		return CPUTime{}, errors.New("loadtest: /proc stat: no command name")
	}
	// After ')' come field 3 (state) onwards; utime and stime are fields
	// 14 and 15.
	fields := strings.Fields(string(b[end+1:]))
	if len(fields) < 13 {
		return CPUTime{}, fmt.Errorf("loadtest: /proc stat: %d fields after the name, want at least 13", len(fields))
	}
	utime, err := strconv.ParseUint(fields[11], 10, 63)
	if err != nil {
		return CPUTime{}, fmt.Errorf("loadtest: /proc stat utime: %w", err)
	}
	stime, err := strconv.ParseUint(fields[12], 10, 63)
	if err != nil {
		return CPUTime{}, fmt.Errorf("loadtest: /proc stat stime: %w", err)
	}
	const tick = time.Second / userHZ
	if utime > uint64(1<<62)/uint64(tick) || stime > uint64(1<<62)/uint64(tick) {
		return CPUTime{}, errors.New("loadtest: /proc stat: cpu time out of range")
	}
	return CPUTime{User: time.Duration(utime) * tick, System: time.Duration(stime) * tick}, nil
}

// ReadRSS reads a process's resident set size in bytes from
// /proc/PID/status.
func ReadRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("loadtest: rss of pid %d: %w", pid, err)
	}
	return ParseRSS(b)
}

// ParseRSS extracts VmRSS (in bytes) from the contents of /proc/PID/status.
func ParseRSS(b []byte) (int64, error) {
	for line := range strings.SplitSeq(string(b), "\n") {
		rest, ok := strings.CutPrefix(line, "VmRSS:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("loadtest: /proc status: bad VmRSS line %q", line)
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || kb < 0 || kb > 1<<40 {
			return 0, fmt.Errorf("loadtest: /proc status: bad VmRSS value %q", f[0])
		}
		return kb << 10, nil
	}
	return 0, errors.New("loadtest: /proc status: no VmRSS line")
}
