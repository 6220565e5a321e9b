package clusterrooms_test

import (
	"context"
	"log"

	"github.com/rtcio-gateway/rtcio-gateway/gateway/cluster"
	"github.com/rtcio-gateway/rtcio-gateway/gateway/clusterrooms"
	"github.com/rtcio-gateway/rtcio-gateway/gateway/signaling"
)

// A node of a cluster: its signaling server keeps rooms in Redis and
// reaches sockets on other nodes through their inboxes. (The gateway does
// this when redis.url is set; it needs a Redis to run, so it is not run
// here.)
func Example() {
	c, err := cluster.Open(cluster.Config{URL: "redis://127.0.0.1:6379/0", NodeID: "gw-a"})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	rooms := clusterrooms.New(c, nil)
	sig, err := signaling.New(signaling.Options{
		EnforceSource:     true,
		RequireSharedRoom: true,
		Directory:         rooms.Bind,
	})
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	rooms.Start(ctx, sig) // heartbeat, reaper, inbox; Ready once Redis answers
	// ... serve sig.Handler() under /socket.io/ ...
	sig.Close()
	stop()
	rooms.Wait()
}
