package testenv

import (
	"net"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// blast sends size-byte UDP packets to addr at kbit per second for d and
// returns how many the receiver got and the rate it got them at.
func blast(t *testing.T, recv *net.UDPConn, kbit int, d time.Duration) (sent, got int, gotKbit float64) {
	t.Helper()
	const size = 1200
	send, err := net.DialUDP("udp4", nil, recv.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer send.Close()
	var n, bytes atomic.Int64
	var first, last atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for {
			_ = recv.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
			k, err := recv.Read(buf)
			if err != nil {
				return
			}
			now := time.Now().UnixNano()
			first.CompareAndSwap(0, now)
			last.Store(now)
			n.Add(1)
			bytes.Add(int64(k))
		}
	}()
	interval := time.Duration(float64(time.Second) * size * 8 / float64(kbit*1000))
	tick := time.NewTicker(interval)
	pkt := make([]byte, size)
	for end := time.Now().Add(d); time.Now().Before(end); sent++ {
		_, _ = send.Write(pkt)
		<-tick.C
	}
	tick.Stop()
	<-done // the reader stops 500 ms after the last packet
	span := time.Duration(last.Load() - first.Load())
	if span > 0 {
		gotKbit = float64(bytes.Load()*8) / span.Seconds() / 1000
	}
	return sent, int(n.Load()), gotKbit
}

// TestShapedLink: the child's downlink carries what its cap allows, loses
// what its loss rule drops, and everything the test made is gone after
// Close.
func TestShapedLink(t *testing.T) {
	s := NewShaped(t, 0)
	recv, err := s.ListenUDP(s.ChildIP + ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer recv.Close()

	if err := s.SetDownlink(700); err != nil {
		t.Fatal(err)
	}
	sent, got, rate := blast(t, recv, 3000, 2*time.Second)
	t.Logf("700 kbit/s cap: sent %d at 3000 kbit/s, got %d at %.0f kbit/s", sent, got, rate)
	if rate < 500 || rate > 850 {
		t.Errorf("through a 700 kbit/s cap: %.0f kbit/s", rate)
	}

	if err := s.SetDownlink(0); err != nil {
		t.Fatal(err)
	}
	if err := s.SetLoss(20); err != nil {
		t.Skipf("no random loss here: %v", err)
	}
	sent, got, _ = blast(t, recv, 1000, 3*time.Second)
	lost := 1 - float64(got)/float64(sent)
	t.Logf("20%% loss: sent %d, got %d (%.1f%% lost)", sent, got, 100*lost)
	if lost < 0.12 || lost > 0.28 {
		t.Errorf("with a 20%% loss rule %.1f%% were lost", 100*lost)
	}

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if ns, link := s.Exists(); ns || link {
		t.Errorf("after Close: namespace %v, link %v still there", ns, link)
	}
	// The caps were qdiscs on the test's end of the link: gone with it.
	if out, err := exec.Command("tc", "qdisc", "show", "dev", s.hostIf).CombinedOutput(); err == nil {
		t.Errorf("after Close the link's qdiscs are still there: %s", out)
	}
	if out, err := exec.Command("ip", "netns", "list").CombinedOutput(); err != nil || strings.Contains(string(out), s.Name) {
		t.Errorf("after Close ip netns list says %q (%v)", out, err)
	}
}
