package collective

import (
	"context"
	"time"
)

// Transport moves bytes between two ranks. Implementations: TCPTransport,
// ShmTransport (same node), and rdma.Transport in its own package. Every
// implementation passes collectivetest.RunTransport.
type Transport interface {
	// Name is a short name ("tcp", "shm") used in errors and benchmark output.
	Name() string
	// Listen opens this rank's endpoint. Its Addr is published to the other
	// ranks at rendezvous.
	Listen(ctx context.Context, self Self) (Endpoint, error)
}

// Self describes the local rank to a Transport.
type Self struct {
	Rank    int
	Session string // unique per communicator; hellos and files from other sessions are rejected
	IP      string // the address other ranks reach this host at (learnt at rendezvous)
}

// Endpoint is one rank's end of a Transport.
type Endpoint interface {
	// Addr is what peers pass to Connect.
	Addr() string
	// Connect returns a full-duplex connection to peer for channel ch. Both
	// ranks of a pair call Connect with each other's rank and the same ch,
	// possibly concurrently with other Connect calls; the endpoint decides
	// which side dials.
	Connect(ctx context.Context, peer int, peerAddr string, ch int) (Conn, error)
	// Close stops accepting and releases the endpoint; Conns stay open.
	Close() error
}

// Conn is a reliable, ordered, full-duplex byte stream to one peer. One
// goroutine may Send while another Receives. Messages are not framed: both
// sides know from the collective's schedule how many bytes flow.
type Conn interface {
	// Send writes all of p.
	Send(p []byte) error
	// Recv fills all of p.
	Recv(p []byte) error
	// SetDeadline bounds pending and future Send and Recv calls; past it they
	// fail with an error matching os.ErrDeadlineExceeded. A deadline in the
	// past interrupts blocked calls.
	SetDeadline(t time.Time) error
	// Close releases the connection; the peer's calls then fail. Idempotent.
	Close() error
}

// inPlaceReceiver is an optional Conn capability (found by type assertion)
// for transports whose received bytes sit in memory the receiver can read in
// place (shared memory): s.sink is called on consecutive segments totalling n
// bytes, each a multiple of align bytes, which saves a copy when reducing.
type inPlaceReceiver interface {
	RecvInPlace(n, align int, s segSink) error
}

type segSink interface {
	sink(off int, seg []byte)
}
