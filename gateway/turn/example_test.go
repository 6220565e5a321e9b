package turn_test

import (
	"fmt"
	"strings"
	"time"

	"github.com/rtcio-gateway/rtcio-gateway/gateway/turn"
)

// The gateway issues a browser credentials that coturn, configured with
// use-auth-secret and the same static-auth-secret, will accept for an hour.
func Example() {
	issuer, err := turn.New(turn.Config{
		Secret: "coturn-static-auth-secret",
		TTL:    time.Hour,
		URIs:   []string{"turn:turn.example.com:3478?transport=udp"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	now := time.Unix(1_700_000_000, 0)
	c := issuer.Issue("alice", now)
	fmt.Println(c.Username, c.TTL)
	fmt.Println(strings.Join(c.ICEServer().URLs, " "))
	fmt.Println(issuer.Check(c.Username, c.Credential, now.Add(30*time.Minute)))
	// Output:
	// 1700003600:alice 3600
	// turn:turn.example.com:3478?transport=udp
	// <nil>
}
