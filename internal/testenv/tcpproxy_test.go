package testenv

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"
)

// nameServer answers every line with its name, until the test ends.
func nameServer(t *testing.T, name string) string {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					if _, err := r.ReadString('\n'); err != nil {
						return
					}
					if _, err := c.Write([]byte(name + "\n")); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func ask(t *testing.T, c net.Conn, r *bufio.Reader) string {
	t.Helper()
	if err := c.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("who\n")); err != nil {
		t.Fatal(err)
	}
	line, err := r.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(line)
}

// TestStickyProxy: every byte of a connection goes to one backend;
// connections go round-robin; a backend that refuses is skipped.
func TestStickyProxy(t *testing.T) {
	dead := FreeAddr(t) // nothing listens there
	p := StartStickyProxy(t, nameServer(t, "one"), dead, nameServer(t, "two"))
	var got []string
	for range 3 {
		c, err := net.Dial("tcp", p.Addr())
		if err != nil {
			t.Fatal(err)
		}
		r := bufio.NewReader(c)
		first := ask(t, c, r)
		if again := ask(t, c, r); again != first {
			t.Errorf("one connection reached %s, then %s", first, again)
		}
		got = append(got, first)
		_ = c.Close()
	}
	// Round-robin from the first backend: one; the dead one, skipped to
	// two; two.
	if strings.Join(got, ",") != "one,two,two" {
		t.Errorf("connections went to %v, want one,two,two", got)
	}
}
