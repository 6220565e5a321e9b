package loadtest

import (
	"os"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	// A command name with spaces and a parenthesis must not shift fields.
	stat := "1234 (go) (x y) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 8 0 100 0 0"
	got, err := ParseStat([]byte(stat))
	if err != nil {
		t.Fatal(err)
	}
	if got.User != 2500*time.Millisecond || got.System != 750*time.Millisecond {
		t.Fatalf("got %+v, want 2.5s user and 750ms system", got)
	}
	for _, bad := range []string{"", "1 (x", "1 (x) S 1 2", "1 (x) S 1 1 1 0 -1 0 0 0 0 0 nope 1"} {
		if _, err := ParseStat([]byte(bad)); err == nil {
			t.Errorf("ParseStat(%q) accepted", bad)
		}
	}
}

func TestParseRSS(t *testing.T) {
	got, err := ParseRSS([]byte("Name:\tx\nVmPeak:\t  10 kB\nVmRSS:\t    2048 kB\nThreads:\t3\n"))
	if err != nil || got != 2048<<10 {
		t.Fatalf("got %d, %v; want %d", got, err, 2048<<10)
	}
	for _, bad := range []string{"", "VmRSS: 12 MB\n", "VmRSS: x kB\n", "VmRSS: -4 kB\n"} {
		if _, err := ParseRSS([]byte(bad)); err == nil {
			t.Errorf("ParseRSS(%q) accepted", bad)
		}
	}
}

// The real /proc of this test process parses, and CPU time only grows.
func TestReadSelf(t *testing.T) {
	a, err := ReadCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	rss, err := ReadRSS(os.Getpid())
	if err != nil || rss <= 0 {
		t.Fatalf("rss %d, %v", rss, err)
	}
	x := 0
	for i := range 50_000_000 {
		x += i
	}
	_ = x
	b, err := ReadCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if b.Total() < a.Total() {
		t.Fatalf("cpu went backwards: %v then %v", a, b)
	}
}

func FuzzParseStat(f *testing.F) {
	f.Add([]byte("1 (a b) R 1 1 1 0 -1 0 0 0 0 0 5 6 0 0 20 0 1 0 1 0 0"))
	f.Add([]byte("1 ()) R"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseStat(b)
		if err == nil && (c.User < 0 || c.System < 0) {
			t.Fatalf("negative cpu %+v", c)
		}
	})
}

func FuzzParseRSS(f *testing.F) {
	f.Add([]byte("VmRSS:\t 100 kB\n"))
	f.Add([]byte("VmRSS:\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := ParseRSS(b)
		if err == nil && n < 0 {
			t.Fatalf("negative rss %d", n)
		}
	})
}
