package sfu_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/rtcio-gateway/rtcio-gateway/gateway/turn"
	"github.com/rtcio-gateway/rtcio-gateway/internal/gatewaytest"
	"github.com/rtcio-gateway/rtcio-gateway/internal/testenv"
	"github.com/rtcio-gateway/rtcio-gateway/rtcio"
)

// remotePort returns the port of the gateway's side of a client's selected
// candidate pair, and the pair's transport.
func remotePort(t *testing.T, s *rtcio.Socket, gwPeer string) (int, string) {
	t.Helper()
	report, err := s.Peer(gwPeer).Stats()
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range report {
		pair, ok := st.(webrtc.ICECandidatePairStats)
		if !ok || !pair.Nominated || pair.State != webrtc.StatsICECandidatePairStateSucceeded {
			continue
		}
		if rc, ok := report[pair.RemoteCandidateID].(webrtc.ICECandidateStats); ok {
			return int(rc.Port), rc.Protocol
		}
	}
	return 0, ""
}

// connectedTo waits for peer-connect and returns the peer's id.
func connectedTo(t *testing.T, m *mailbox) string {
	t.Helper()
	return m.next(t, "peer-connect").PeerID
}

// TestUDPMuxFiftyPeers: with media.udp_port set, fifty clients' peer
// connections all run through that one UDP port of the gateway.
func TestUDPMuxFiftyPeers(t *testing.T) {
	const peers = 50
	cfg := gatewaytest.SFUConfig()
	cfg.Media.UDPPort = testenv.FreeUDPPort(t)
	gw := gatewaytest.StartGateway(t, cfg)
	var wg sync.WaitGroup
	type result struct {
		port  int
		proto string
	}
	results := make(chan result, peers)
	clients := make([]*client, peers)
	boxes := make([]*mailbox, peers)
	for i := range clients {
		clients[i] = dialNoJoin(t, gw.URL)
		boxes[i] = collect(clients[i].Socket, rtcio.EventPeerConnect)
		join(t, clients[i].Socket, "mux")
	}
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			gwPeer := connectedTo(t, boxes[i])
			port, proto := remotePort(t, clients[i].Socket, gwPeer)
			results <- result{port, proto}
		}()
	}
	wg.Wait()
	close(results)
	n := 0
	for r := range results {
		n++
		if r.port != cfg.Media.UDPPort || r.proto != "udp" {
			t.Errorf("a peer connection runs through %s port %d, want udp %d", r.proto, r.port, cfg.Media.UDPPort)
		}
	}
	if n != peers {
		t.Fatalf("%d of %d peers connected", n, peers)
	}
}

// TestICETCPFallback: a client that can use only TCP reaches the gateway
// over ICE-TCP on media.tcp_port.
func TestICETCPFallback(t *testing.T) {
	cfg := gatewaytest.SFUConfig()
	cfg.Media.TCPPort = testenv.FreePort(t)
	gw := gatewaytest.StartGateway(t, cfg)
	api, err := rtcio.LoopbackAPI(func(se *webrtc.SettingEngine) {
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeTCP4})
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	s, err := rtcio.Dial(ctx, gw.URL, rtcio.Options{API: api})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	connected := collect(s, rtcio.EventPeerConnect)
	join(t, s, "tcp")
	gwPeer := connectedTo(t, connected)
	port, proto := remotePort(t, s, gwPeer)
	if proto != "tcp" || port != cfg.Media.TCPPort {
		t.Fatalf("connected over %s port %d, want tcp %d", proto, port, cfg.Media.TCPPort)
	}
}

// TestTURNCredentials: the HTTP endpoint and the server event hand out
// credentials in coturn's use-auth-secret scheme: the password is the
// HMAC-SHA1 of the username under the shared secret, and the username's
// expiry lies in the future.
func TestTURNCredentials(t *testing.T) {
	const secret = "coturn-static-auth-secret"
	cfg := gatewaytest.SFUConfig()
	cfg.TURN.Secret = secret
	cfg.TURN.URIs = []string{"turn:127.0.0.1:3478?transport=udp"}
	cfg.TURN.TTL = time.Hour
	gw := gatewaytest.StartGateway(t, cfg)
	issuer, err := turn.New(turn.Config{Secret: secret, URIs: cfg.TURN.URIs})
	if err != nil {
		t.Fatal(err)
	}
	check := func(where, user, cred string) {
		if err := issuer.Check(user, cred, time.Now()); err != nil {
			t.Errorf("%s: credential does not verify: %v", where, err)
		}
		exp, err := strconv.ParseInt(strings.SplitN(user, ":", 2)[0], 10, 64)
		if err != nil || time.Unix(exp, 0).Before(time.Now()) {
			t.Errorf("%s: username %q has no future expiry", where, user)
		}
	}

	resp, err := http.Get(gw.URL + "/turn-credentials")
	if err != nil {
		t.Fatal(err)
	}
	var body struct {
		Username   string `json:"username"`
		Credential string `json:"credential"`
	}
	err = json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if err != nil || body.Username == "" {
		t.Fatalf("endpoint answered %d %+v (%v)", resp.StatusCode, body, err)
	}
	check("http", body.Username, body.Credential)

	c := dialNoJoin(t, gw.URL)
	creds := collect(c.Socket, "turn-credentials")
	// The answer arrives as a server event; route it through Server().On.
	got := make(chan *rtcio.Event, 1)
	c.Server().On("turn-credentials", func(e *rtcio.Event) { got <- e })
	if err := c.Server().Emit("turn-credentials", map[string]any{}); err != nil {
		t.Fatal(err)
	}
	var ev *rtcio.Event
	select {
	case ev = <-got:
	case ev = <-creds.ch:
	case <-time.After(waitFor):
		t.Fatal("no turn-credentials answer")
	}
	var answer struct {
		ICEServers []struct {
			URLs       []string `json:"urls"`
			Username   string   `json:"username"`
			Credential string   `json:"credential"`
		} `json:"iceServers"`
	}
	if err := ev.Decode(0, &answer); err != nil || len(answer.ICEServers) != 1 {
		t.Fatalf("server event answer %v (%v)", ev.Raw, err)
	}
	check("event", answer.ICEServers[0].Username, answer.ICEServers[0].Credential)
}
