package testenv

import (
	"bufio"
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
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

// TestRedisKillRestart: a killed server refuses connections; restarted, it
// serves on the same address, empty.
func TestRedisKillRestart(t *testing.T) {
	r := StartRedisServer(t)
	rdb := redis.NewClient(&redis.Options{Addr: r.Addr(), MaxRetries: -1})
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := rdb.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	r.Kill()
	if err := rdb.Ping(ctx).Err(); err == nil {
		t.Fatal("a killed redis answered")
	}
	if err := r.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if err := rdb.Ping(ctx).Err(); err != nil {
		// The pool's connection died with the old server; one retry
		// dials the new one.
		if err := rdb.Ping(ctx).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if n := rdb.Exists(ctx, "k").Val(); n != 0 {
		t.Error("the restarted redis kept a key")
	}
	if n := KillRedisClients(t, r.Addr(), "nobody"); n != 0 {
		t.Errorf("killed %d connections named nobody", n)
	}
}
