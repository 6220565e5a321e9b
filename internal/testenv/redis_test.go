package testenv

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"
)

func TestRedis(t *testing.T) {
	addr := StartRedis(t)
	if !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Fatalf("redis at %s, want loopback", addr)
	}
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write([]byte("SET k v\r\nGET k\r\n")); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(conn)
	var got []string
	for range 3 {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("reading redis replies %q: %v", got, err)
		}
		got = append(got, strings.TrimSpace(line))
	}
	if strings.Join(got, " ") != "+OK $1 v" {
		t.Fatalf("redis replied %q", got)
	}
}
