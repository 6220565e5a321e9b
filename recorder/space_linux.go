//go:build linux

package recorder

import "syscall"

// freeBytes returns the space available to us on dir's filesystem.
func freeBytes(dir string) (int64, bool) {
	var s syscall.Statfs_t
	if err := syscall.Statfs(dir, &s); err != nil {
		return 0, false
	}
	return int64(s.Bavail) * s.Bsize, true
}
