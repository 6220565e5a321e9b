package signaling_test

import (
	"context"
	"testing"
	"time"

	"github.com/rtcio-gateway/rtcio-gateway/internal/gatewaytest"
	"github.com/rtcio-gateway/rtcio-gateway/internal/testenv"
)

// nodeClient is the JavaScript socket.io-client 4.8 (under Node) as a
// sigClient. It starts with HTTP long-polling and upgrades to WebSocket,
// exactly like a browser.
type nodeClient struct {
	t     testing.TB
	nodes *testenv.NodeClients
	name  string
	id    string
}

func dialNode(t testing.TB, nodes *testenv.NodeClients, url, name string) *nodeClient {
	t.Helper()
	id, err := nodes.Connect(name, url, nil)
	if err != nil {
		t.Fatalf("%s: connect: %v", name, err)
	}
	return &nodeClient{t: t, nodes: nodes, name: name, id: id}
}

func (c *nodeClient) ID() string { return c.id }

func (c *nodeClient) Emit(event string, args ...any) {
	if err := c.nodes.Emit(c.name, event, args...); err != nil {
		c.t.Errorf("%s: emit %s: %v", c.name, event, err)
	}
}

func (c *nodeClient) Disconnect() {
	if err := c.nodes.Disconnect(c.name); err != nil {
		c.t.Errorf("%s: disconnect: %v", c.name, err)
	}
}

func (c *nodeClient) Drop() {
	if err := c.nodes.Drop(c.name); err != nil {
		c.t.Errorf("%s: drop: %v", c.name, err)
	}
}

func (c *nodeClient) Wait(event string, match func(map[string]any) bool) received {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	args, err := c.nodes.WaitEvent(ctx, c.name, event, func(args []any) bool {
		return match == nil || match(received{Args: args}.obj())
	})
	if err != nil {
		c.t.Fatalf("%s: waiting for %q: %v; received %v", c.name, event, err, c.nodes.EventNames(c.name))
	}
	return received{Event: event, Args: args}
}

func (c *nodeClient) Events() []received {
	var out []received
	for _, ev := range c.nodes.Events(c.name) {
		if !ev.IsLifecycle() {
			out = append(out, received{Event: ev.Name, Args: ev.Args})
		}
	}
	return out
}

func TestRoomScenarioNodeClient(t *testing.T) {
	gw := gatewaytest.StartGateway(t, gatewaytest.TestConfig())
	nodes := testenv.StartNodeClients(t)
	runRoomScenario(t, func(name string) sigClient {
		return dialNode(t, nodes, gw.URL, name)
	})
}

// TestRoomScenarioReferenceServer runs the same scenario against the Node
// reference server, proving the scenario encodes rtc.io-server's behaviour
// and not merely ours.
func TestRoomScenarioReferenceServer(t *testing.T) {
	ref := testenv.StartRefServer(t)
	nodes := testenv.StartNodeClients(t)
	runRoomScenario(t, func(name string) sigClient {
		return dialNode(t, nodes, ref, name)
	})
}
