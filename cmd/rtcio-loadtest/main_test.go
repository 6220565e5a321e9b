package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// Bad flags fail fast with a clear message, before anything is built or
// started.
func TestRejectsBadFlags(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--scenario", "party"}, "unknown scenario"},
		{[]string{"--sweep", "10,x"}, "not a subscriber count"},
		{[]string{"--publishers", "0"}, "publishers 0"},
		{[]string{"--url", "http://127.0.0.1:1"}, "--url and --pid go together"},
		{[]string{"--url", "http://127.0.0.1:1,,http://127.0.0.1:2"}, "empty URL"},
		{[]string{"--video=false"}, "fanout needs video"},
		{[]string{"--max", "--max-start", "0"}, "a search needs 1 <= start"},
		{[]string{"--max", "--max-start", "50", "--max-limit", "10"}, "a search needs 1 <= start"},
		{[]string{"--max", "--sweep", "10"}, "--max and --sweep do not go together"},
	}
	for _, c := range cases {
		var out, errs bytes.Buffer
		if code := run(context.Background(), c.args, &out, &errs); code != 2 {
			t.Errorf("%v: exit %d, want 2 (stderr %q)", c.args, code, errs.String())
		}
		if !strings.Contains(errs.String(), c.want) {
			t.Errorf("%v: stderr %q does not say %q", c.args, errs.String(), c.want)
		}
	}
}

func TestParseCounts(t *testing.T) {
	got, err := parseCounts("10, 25,100")
	if err != nil || len(got) != 3 || got[0] != 10 || got[1] != 25 || got[2] != 100 {
		t.Fatalf("got %v, %v", got, err)
	}
	for _, bad := range []string{"0", "-1", "5000", "1,,2"} {
		if _, err := parseCounts(bad); err == nil {
			t.Errorf("parseCounts(%q) accepted", bad)
		}
	}
}

// --url is repeatable and takes comma lists: one list of gateways, in order.
func TestURLList(t *testing.T) {
	var u urlList
	for _, v := range []string{"http://127.0.0.1:1/, http://127.0.0.1:2", "http://127.0.0.1:3"} {
		if err := u.Set(v); err != nil {
			t.Fatal(err)
		}
	}
	if got := u.String(); got != "http://127.0.0.1:1,http://127.0.0.1:2,http://127.0.0.1:3" {
		t.Errorf("urls %q", got)
	}
}
