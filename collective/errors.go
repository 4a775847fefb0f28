package collective

import (
	"errors"
	"fmt"
)

// Sentinel errors. Match them with errors.Is.
var (
	// ErrClosed is returned by operations on a closed Communicator or Conn.
	ErrClosed = errors.New("collective: closed")
	// ErrTimeout is wrapped by errors caused by an operation's deadline.
	ErrTimeout = errors.New("collective: deadline exceeded")
	// ErrPeerLost is wrapped when a peer's connection closed or its process died.
	ErrPeerLost = errors.New("collective: peer lost")
	// ErrStalled is wrapped when a peer did not enter an operation the others were in.
	ErrStalled = errors.New("collective: peer stalled")
	// ErrAborted is wrapped by errors of operations interrupted by an abort.
	ErrAborted = errors.New("collective: aborted")
	// ErrInvalid is wrapped by argument errors (buffer sizes, dtypes, ranks).
	ErrInvalid = errors.New("collective: invalid argument")
	// ErrTransportUnavailable is wrapped by an Endpoint.Connect error when
	// both ends agreed that the transport cannot carry this connection (for
	// rdma: a queue pair or its connect-time probe failed on either side).
	// Both ends return it, so with TransportName "auto" both fall back to
	// tcp for that (peer, channel); a transport asked for by name fails New.
	ErrTransportUnavailable = errors.New("collective: transport unavailable")
)

// PeerError is the error every rank gets when a peer dies, stalls or its
// connection breaks. Rank names the peer held responsible.
type PeerError struct {
	Rank int    // the peer at fault
	Op   string // the operation that failed, e.g. "allreduce#42"
	Err  error  // wraps ErrPeerLost, ErrStalled or ErrTimeout and the cause
}

func (e *PeerError) Error() string {
	if e.Op == "" {
		return fmt.Sprintf("collective: rank %d: %v", e.Rank, e.Err)
	}
	return fmt.Sprintf("collective: %s: rank %d: %v", e.Op, e.Rank, e.Err)
}

func (e *PeerError) Unwrap() error { return e.Err }

// peerErr builds a *PeerError whose Err wraps both kind and cause.
func peerErr(rank int, op string, kind, cause error) *PeerError {
	if cause == nil {
		return &PeerError{Rank: rank, Op: op, Err: kind}
	}
	return &PeerError{Rank: rank, Op: op, Err: fmt.Errorf("%w: %w", kind, cause)}
}
