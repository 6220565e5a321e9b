package main

import (
	"strings"
	"testing"
)

// TestComposeCommandErrors: the compose command says what is wrong with
// its arguments, a path without a meeting, and a missing ffmpeg.
func TestComposeCommandErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		code int
		says string
	}{
		{[]string{"compose"}, 2, "usage: rtcio-gateway compose"},
		{[]string{"compose", "a", "b"}, 2, "usage: rtcio-gateway compose"},
		{[]string{"compose", "--size", "big", "dir"}, 2, "--size"},
		{[]string{"compose", "/nonexistent/room"}, 1, "no such file"},
		{[]string{"compose", t.TempDir()}, 1, "no room manifest"},
	} {
		code, _, stderr := runCmd(t, nil, c.args...)
		if code != c.code || !strings.Contains(stderr, c.says) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", c.args, code, stderr, c.code, c.says)
		}
	}
}
