package gateway

import (
	"net"
	"time"

	"github.com/pion/transport/v5"
	"github.com/pion/transport/v5/udp"
)

// batchNet is the network the shared UDP port is opened on when
// media.udp_batch_size is set: its UDP sockets queue what the ICE mux writes
// and send it with sendmmsg, one system call per batch (pion/transport's
// BatchConn). Reads and everything else go to the socket as before.
type batchNet struct {
	transport.Net
	size     int
	interval time.Duration
}

// ListenUDP implements transport.Net.
func (n batchNet) ListenUDP(network string, laddr *net.UDPAddr) (transport.UDPConn, error) {
	c, err := n.Net.ListenUDP(network, laddr)
	if err != nil {
		return nil, err
	}
	return &batchUDPConn{UDPConn: c, batch: udp.NewBatchConn(c, n.size, n.interval)}, nil
}

// batchUDPConn writes through its batch and closes it (which stops the
// batch's flusher and closes the socket).
type batchUDPConn struct {
	transport.UDPConn
	batch *udp.BatchConn
}

// WriteTo queues b for addr; the batch copies it.
func (c *batchUDPConn) WriteTo(b []byte, addr net.Addr) (int, error) { return c.batch.WriteTo(b, addr) }

// Close flushes nothing further, stops the batch and closes the socket.
func (c *batchUDPConn) Close() error { return c.batch.Close() }
