package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// Shaped is a child network namespace joined to the test's own by a veth
// pair: a participant on a network link whose bandwidth and loss the test
// controls. The downlink (towards the child) and the uplink are shaped
// with tc tbf on each end of the pair; random loss is an nftables rule in
// the child (numgen). The kernels here have no netem, so fixed delay is
// not available.
//
// The pair is addressed in 198.18.0.0/15, the range set aside for network
// benchmarks, inside namespaces the test made: with scripts/test.sh the
// test's own namespace has only loopback besides, so nothing can leave the
// machine.
type Shaped struct {
	// Name is the child namespace (for ip netns exec).
	Name string
	// HostIP is the test namespace's end of the pair, ChildIP the child's.
	HostIP, ChildIP string

	hostIf, childIf string
	logf            Logf
	mu              sync.Mutex
	closed          bool
}

// netshapeProblem says why NewShaped cannot run here, or "".
func netshapeProblem() string {
	if os.Geteuid() != 0 {
		return "network namespaces need root"
	}
	for _, bin := range []string{"ip", "tc"} {
		if _, err := exec.LookPath(bin); err != nil {
			return bin + " is not installed (apt-get install iproute2)"
		}
	}
	return ""
}

// NewShaped makes a child namespace and its link for t, removed at cleanup
// (the namespace takes its end of the pair, its qdiscs and its nftables
// rules with it; the test's end goes with the pair). n picks the /30 of
// 198.18.0.0/15 it uses, so one test can have several. It skips (fails
// under CI) where namespaces cannot be made, and skips with the reason
// where the kernel lacks tbf.
func NewShaped(t testing.TB, n int) *Shaped {
	t.Helper()
	skipOrFail(t, netshapeProblem())
	var b [3]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	s := &Shaped{
		Name:    "rtcio-" + id,
		HostIP:  fmt.Sprintf("198.18.%d.%d", n/64, (n%64)*4+1),
		ChildIP: fmt.Sprintf("198.18.%d.%d", n/64, (n%64)*4+2),
		hostIf:  "rh" + id,
		childIf: "rc" + id,
		logf:    t.Logf,
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("remove namespace %s: %v", s.Name, err)
		}
	})
	steps := [][]string{
		{"ip", "netns", "add", s.Name},
		{"ip", "link", "add", s.hostIf, "type", "veth", "peer", "name", s.childIf},
		{"ip", "link", "set", s.childIf, "netns", s.Name},
		{"ip", "addr", "add", s.HostIP + "/30", "dev", s.hostIf},
		{"ip", "link", "set", s.hostIf, "up"},
		{"ip", "netns", "exec", s.Name, "ip", "addr", "add", s.ChildIP + "/30", "dev", s.childIf},
		{"ip", "netns", "exec", s.Name, "ip", "link", "set", s.childIf, "up"},
		{"ip", "netns", "exec", s.Name, "ip", "link", "set", "lo", "up"},
	}
	for _, st := range steps {
		if err := run(st...); err != nil {
			t.Fatalf("make namespace: %v", err)
		}
	}
	// Probe tbf once: without it there is nothing to shape with.
	if err := s.SetDownlink(0); err != nil {
		t.Fatal(err)
	}
	if err := run("tc", "qdisc", "replace", "dev", s.hostIf, "root", "tbf", "rate", "1mbit", "burst", "16kb", "latency", "100ms"); err != nil {
		t.Skipf("this kernel cannot shape links (tc tbf): %v", err)
	}
	if err := s.SetDownlink(0); err != nil {
		t.Fatal(err)
	}
	return s
}

func run(args ...string) error {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// tbf caps an interface at kbit (0 removes the cap). The bucket holds
// about 20 ms of traffic (at least 16 KiB, so one video frame passes), and
// the queue 200 ms before tbf drops, like a home router's buffer.
func tbf(ns []string, dev string, kbit int) error {
	if kbit <= 0 {
		err := run(append(ns, "tc", "qdisc", "del", "dev", dev, "root")...)
		if err != nil && !strings.Contains(err.Error(), "No such file") && !strings.Contains(err.Error(), "Cannot delete qdisc with handle of zero") {
			return err
		}
		return nil
	}
	burst := max(16<<10, kbit*1000/8/50)
	return run(append(ns, "tc", "qdisc", "replace", "dev", dev, "root", "tbf",
		"rate", fmt.Sprintf("%dkbit", kbit), "burst", fmt.Sprint(burst), "latency", "200ms")...)
}

// SetDownlink caps what reaches the child at kbit per second (0: no cap).
func (s *Shaped) SetDownlink(kbit int) error { return tbf(nil, s.hostIf, kbit) }

// DownlinkBytes is what the downlink's qdisc has sent towards the child
// since it was last set (tc -s).
func (s *Shaped) DownlinkBytes() (int64, error) {
	out, err := exec.Command("tc", "-s", "qdisc", "show", "dev", s.hostIf).Output()
	if err != nil {
		return 0, fmt.Errorf("tc -s qdisc: %w", err)
	}
	// " Sent 123456 bytes 789 pkt (dropped ...": the root qdisc comes first.
	_, rest, ok := strings.Cut(string(out), " Sent ")
	if !ok {
		return 0, fmt.Errorf("tc -s qdisc: no Sent line in %q", out)
	}
	var n int64
	if _, err := fmt.Sscanf(rest, "%d bytes", &n); err != nil {
		return 0, fmt.Errorf("tc -s qdisc: %q: %w", rest, err)
	}
	return n, nil
}

// SetUplink caps what the child sends at kbit per second (0: no cap).
func (s *Shaped) SetUplink(kbit int) error {
	return tbf([]string{"ip", "netns", "exec", s.Name}, s.childIf, kbit)
}

// SetLoss drops percent of the packets reaching the child, at random (0:
// none). It needs nftables (Debian package nftables).
func (s *Shaped) SetLoss(percent int) error {
	if _, err := exec.LookPath("nft"); err != nil {
		return fmt.Errorf("random loss needs nft (apt-get install nftables): %w", err)
	}
	ns := []string{"ip", "netns", "exec", s.Name, "nft"}
	_ = run(append(ns, "delete", "table", "inet", "rtcio_loss")...)
	if percent <= 0 {
		return nil
	}
	rules := fmt.Sprintf(`table inet rtcio_loss {
	chain in {
		type filter hook input priority 0; policy accept;
		numgen random mod 100 < %d drop
	}
}`, percent)
	cmd := exec.Command("ip", "netns", "exec", s.Name, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("nft: %w: %s", err, out)
	}
	return nil
}

// Command runs a program inside the child namespace.
func (s *Shaped) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", s.Name, name}, args...)...)
}

// Do runs f on an OS thread that is inside the child namespace: sockets
// that f opens live there (and stay there after f returns).
func (s *Shaped) Do(f func() error) error {
	errc := make(chan error, 1)
	go func() {
		// The thread is left locked, so Go retires it when this goroutine
		// ends instead of reusing a thread in the wrong namespace.
		runtime.LockOSThread()
		ns, err := os.Open("/run/netns/" + s.Name)
		if err != nil {
			errc <- fmt.Errorf("open namespace: %w", err)
			return
		}
		defer ns.Close()
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns: %w", err)
			return
		}
		errc <- f()
	}()
	return <-errc
}

// ListenUDP opens a UDP socket inside the child namespace.
func (s *Shaped) ListenUDP(addr string) (*net.UDPConn, error) {
	var conn *net.UDPConn
	err := s.Do(func() error {
		a, err := net.ResolveUDPAddr("udp4", addr)
		if err != nil {
			return err
		}
		conn, err = net.ListenUDP("udp4", a)
		return err
	})
	return conn, err
}

// Close removes the namespace, which takes the link, its qdiscs and rules
// with it.
func (s *Shaped) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	// Deleting our end removes the pair at once; the namespace's own
	// teardown would remove it too, but later, in the kernel's own time.
	var errs []string
	if _, err := net.InterfaceByName(s.hostIf); err == nil {
		if err := run("ip", "link", "del", s.hostIf); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if err := run("ip", "netns", "del", s.Name); err != nil {
		errs = append(errs, err.Error())
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

// Exists reports whether the namespace and the test's end of its link are
// still there (for tests of the cleanup).
func (s *Shaped) Exists() (netns, link bool) {
	_, err := os.Stat("/run/netns/" + s.Name)
	netns = err == nil
	_, err = net.InterfaceByName(s.hostIf)
	return netns, err == nil
}
