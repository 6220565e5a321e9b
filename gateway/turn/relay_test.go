package turn_test

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/pion/logging"
	pionturn "github.com/pion/turn/v5"
)

// startTURN runs a real TURN server (pion/turn) on loopback that checks
// time-limited credentials against secret, as coturn's use-auth-secret does.
func startTURN(t *testing.T, secret string) string {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	quiet := &logging.DefaultLoggerFactory{Writer: io.Discard, DefaultLogLevel: logging.LogLevelDisabled}
	srv, err := pionturn.NewServer(pionturn.ServerConfig{
		Realm:         "rtcio.test",
		AuthHandler:   pionturn.LongTermTURNRESTAuthHandler(secret, quiet.NewLogger("turn")),
		LoggerFactory: quiet,
		PacketConnConfigs: []pionturn.PacketConnConfig{{
			PacketConn: pc,
			RelayAddressGenerator: &pionturn.RelayAddressGeneratorStatic{
				RelayAddress: net.ParseIP("127.0.0.1"),
				Address:      "127.0.0.1",
			},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return pc.LocalAddr().String()
}

// allocate logs in to the TURN server at addr and asks for a relay.
func allocate(t *testing.T, addr, username, password string) error {
	t.Helper()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	quiet := &logging.DefaultLoggerFactory{Writer: io.Discard, DefaultLogLevel: logging.LogLevelDisabled}
	c, err := pionturn.NewClient(&pionturn.ClientConfig{
		TURNServerAddr: addr,
		Conn:           conn,
		Username:       username,
		Password:       password,
		LoggerFactory:  quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	relay, err := c.AllocateWithContext(ctx)
	if err != nil {
		return err
	}
	return relay.Close()
}

func TestTURNServerAcceptsIssuedCredentials(t *testing.T) {
	addr := startTURN(t, secret)
	c := newIssuer(t, time.Minute).Issue("sock-1", time.Now())
	if err := allocate(t, addr, c.Username, c.Credential); err != nil {
		t.Fatalf("allocation with issued credentials: %v", err)
	}
	// The same TURN server refuses credentials made with another secret
	// and credentials that already expired.
	other := independent("wrong-secret", c.Username)
	if err := allocate(t, addr, c.Username, other); err == nil {
		t.Error("allocation with a wrong-secret credential succeeded")
	}
	old := newIssuer(t, time.Minute).Issue("sock-1", time.Now().Add(-time.Hour))
	if err := allocate(t, addr, old.Username, old.Credential); err == nil {
		t.Error("allocation with an expired credential succeeded")
	}
}
