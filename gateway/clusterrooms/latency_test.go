package clusterrooms_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	sioclient "github.com/zishang520/socket.io/clients/socket/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"

	"github.com/rtcio-gateway/rtcio-gateway/internal/gatewaytest"
	"github.com/rtcio-gateway/rtcio-gateway/internal/testenv"
)

// pinger is a Go socket.io client that answers every "ping" message with
// a "pong" to its source, and hands the pongs it gets to a channel.
type pinger struct {
	sock  *sioclient.Socket
	id    string
	pongs chan float64
}

func dialPinger(b *testing.B, url string) *pinger {
	b.Helper()
	opts := sioclient.DefaultOptions()
	opts.SetForceNew(true)
	opts.SetReconnection(true)
	opts.SetReconnectionDelay(50)
	opts.SetTimeout(15 * time.Second)
	opts.SetAutoConnect(false)
	opts.SetTransports(types.NewSet(sioclient.WebSocket))
	sock, err := sioclient.Connect(url, opts)
	if err != nil {
		b.Fatal(err)
	}
	p := &pinger{sock: sock, pongs: make(chan float64, 16)}
	connected := make(chan string, 1)
	sock.On("connect", func(...any) {
		select {
		case connected <- sock.Id():
		default:
		}
	})
	sock.On("#rtcio:message", func(args ...any) {
		if len(args) == 0 {
			return
		}
		m, _ := args[0].(map[string]any)
		data, _ := m["data"].(map[string]any)
		switch m["type"] {
		case "ping":
			_ = sock.Emit("#rtcio:message", map[string]any{"target": m["source"], "type": "pong", "data": data})
		case "pong":
			n, _ := data["n"].(float64)
			p.pongs <- n
		}
	})
	b.Cleanup(func() { sock.Disconnect() })
	sock.Connect()
	select {
	case p.id = <-connected:
		sock.Io().SetReconnection(false)
	case <-time.After(40 * time.Second):
		b.Fatal("not connected")
	}
	return p
}

func (p *pinger) join(b *testing.B, room string) {
	b.Helper()
	ok := make(chan struct{}, 1)
	p.sock.Once("join-ok", func(...any) { ok <- struct{}{} })
	if err := p.sock.Emit("join-room", map[string]any{"roomId": room, "name": p.id}); err != nil {
		b.Fatal(err)
	}
	select {
	case <-ok:
	case <-time.After(10 * time.Second):
		b.Fatal("no join-ok")
	}
}

// pingPong sends one ping to target and returns the round trip.
func (p *pinger) pingPong(b *testing.B, target string, n int) time.Duration {
	start := time.Now()
	if err := p.sock.Emit("#rtcio:message", map[string]any{"target": target, "type": "ping", "data": map[string]any{"n": n}}); err != nil {
		b.Fatal(err)
	}
	for {
		select {
		case got := <-p.pongs:
			if int(got) == n {
				return time.Since(start)
			}
		case <-time.After(10 * time.Second):
			b.Fatalf("no pong %d", n)
		}
	}
}

func percentile(d []time.Duration, p float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[int(float64(len(s)-1)*p)]
}

// BenchmarkCrossNodeMessage is acceptance 1: the round trip of a
// #rtcio:message ping-pong between two sockets on one node (the baseline)
// and on two nodes of a cluster, measured alternately in the same run. The
// extra one-way latency is half the difference of the round trips:
//
//	go test -run '^$' -bench CrossNodeMessage -benchtime 1000x ./gateway/clusterrooms/
func BenchmarkCrossNodeMessage(b *testing.B) {
	addr := testenv.StartRedis(b)
	var urls []string
	for i := range 2 {
		cfg := clusterConfig(addr, fmt.Sprintf("node%d", i+1))
		cfg.Signaling.MessagesPerSecond = 0
		g := gatewaytest.StartGateway(b, cfg)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		if err := testenv.WaitReady(ctx, g.URL, nil); err != nil {
			b.Fatal(err)
		}
		cancel()
		urls = append(urls, g.URL)
	}
	a := dialPinger(b, urls[0])
	same := dialPinger(b, urls[0])
	other := dialPinger(b, urls[1])
	for _, p := range []*pinger{a, same, other} {
		p.join(b, "latency")
	}
	// Warm up both paths (connections, Lua script caches).
	for i := range 20 {
		a.pingPong(b, same.id, -1-2*i)
		a.pingPong(b, other.id, -2-2*i)
	}
	local := make([]time.Duration, 0, b.N)
	cross := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		local = append(local, a.pingPong(b, same.id, 2*i))
		cross = append(cross, a.pingPong(b, other.id, 2*i+1))
	}
	b.StopTimer()
	for _, q := range []struct {
		name string
		p    float64
	}{{"p50", 0.5}, {"p99", 0.99}} {
		l, c := percentile(local, q.p), percentile(cross, q.p)
		b.ReportMetric(float64(l.Microseconds()), "rtt-1node-"+q.name+"-us")
		b.ReportMetric(float64(c.Microseconds()), "rtt-2nodes-"+q.name+"-us")
		b.ReportMetric(float64((c-l).Microseconds())/2, "extra-oneway-"+q.name+"-us")
	}
}
