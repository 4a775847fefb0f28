package rdma

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"time"
)

// The connect-time check. This transport has never run on RDMA hardware,
// so before a Communicator relies on a queue pair, Connect moves a known
// pattern over it both ways (the probe) and both sides agree, over the TCP
// side channel, whether it worked (the verdict). A failure anywhere on
// either side (queue pair creation, the handshake's checks, RTR/RTS, the
// probe) gives both sides the same answer, so both can fall back.

// probeExtra is how far the probe runs past one slot: the pattern fills
// slot 0 and part of slot 1, so it exercises a chunk boundary, the wrap
// to a second receive, and a credit write back to the sender.
const probeExtra = 4096

// probeBytes is the probe's length for ring geometry lay.
func probeBytes(lay layout) int { return lay.slotBytes + probeExtra }

// probePattern fills n bytes from seed with xorshift64, so a byte from
// another connection, slot or offset does not pass for the right one.
func probePattern(n int, seed uint64) []byte {
	b := make([]byte, n)
	x := seed | 1
	for i := range b {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		b[i] = byte(x >> 24)
	}
	return b
}

// probeSeed is the same on both sides of (session, pair, channel).
func probeSeed(session uint64, a, b, ch int) uint64 {
	lo, hi := min(a, b), max(a, b)
	return session ^ uint64(lo)<<40 ^ uint64(hi)<<20 ^ uint64(ch)
}

// probe sends the pattern from the lower rank to the higher, which checks
// it and echoes it back; the lower rank checks the echo. The caller has
// set c's deadline.
func probe(c *conn, lower bool, seed uint64) error {
	n := probeBytes(c.lay)
	want := probePattern(n, seed)
	got := make([]byte, n)
	if lower {
		if err := c.Send(want); err != nil {
			return fmt.Errorf("probe: send %d bytes: %w", n, err)
		}
		if err := c.Recv(got); err != nil {
			return fmt.Errorf("probe: receive the echo: %w", err)
		}
		if i := firstDiff(got, want); i >= 0 {
			return fmt.Errorf("probe: echo differs at byte %d of %d", i, n)
		}
		return nil
	}
	if err := c.Recv(got); err != nil {
		return fmt.Errorf("probe: receive %d bytes: %w", n, err)
	}
	if i := firstDiff(got, want); i >= 0 {
		return fmt.Errorf("probe: received bytes differ at byte %d of %d", i, n)
	}
	if err := c.Send(got); err != nil {
		return fmt.Errorf("probe: echo: %w", err)
	}
	return nil
}

func firstDiff(a, b []byte) int {
	for i := range a {
		if a[i] != b[i] {
			return i
		}
	}
	return -1
}

// errPeerGaveUp is this side's reason when the peer's failed status
// stopped our probe.
var errPeerGaveUp = errors.New("probe stopped: the peer reported a failure")

// settle runs the probe over c when both queue pairs are ready (c is nil
// otherwise), then sends this side's status over the side channel and
// reads the peer's. The peer's status is read concurrently with the
// probe: a peer that failed stops our probe at once instead of leaving it
// to run into ProbeTimeout. It returns this side's failure (fault, or the
// probe's), the peer's, and a side-channel error, after which no verdict
// is shared.
func (e *endpoint) settle(ctx context.Context, c *conn, side net.Conn, peer, ch int, fault error) (mine, theirs, err error) {
	setupDeadline(ctx, side)
	if c != nil {
		dl := time.Now().Add(e.cfg.ProbeTimeout)
		if d, ok := ctx.Deadline(); ok && d.Before(dl) {
			dl = d
		}
		_ = c.SetDeadline(dl)
	}
	type status struct{ fault, err error }
	got := make(chan status, 1)
	var stopped atomic.Bool
	go func() {
		f, err := readStatus(side)
		if (f != nil || err != nil) && c != nil {
			stopped.Store(true)
			_ = c.SetDeadline(time.Unix(1, 0))
		}
		got <- status{f, err}
	}()
	mine = fault
	if c != nil {
		mine = probe(c, e.self.Rank < peer, probeSeed(sessionHash(e.self.Session), e.self.Rank, peer, ch))
		if mine != nil && stopped.Load() {
			mine = fmt.Errorf("%w (%v)", errPeerGaveUp, mine)
		}
	}
	werr := writeStatus(side, mine)
	if werr != nil {
		_ = side.SetReadDeadline(time.Unix(1, 0)) // the reader cannot get an answer either
	}
	r := <-got
	if err := errors.Join(werr, r.err); err != nil {
		return mine, nil, err
	}
	theirs = r.fault
	if theirs == nil && c == nil && mine == nil {
		// We were ready, the peer was not, yet it reports no failure.
		theirs = fmt.Errorf("queue pair not ready, no reason given: %w", errHandshake)
	}
	if c != nil {
		_ = c.SetDeadline(time.Time{})
	}
	return mine, theirs, side.SetDeadline(time.Time{})
}

// writeStatus sends 1 (ok) or 0 (failed), the reason's length (one byte)
// and the reason.
func writeStatus(c net.Conn, fault error) error {
	b := []byte{1, 0}
	if fault != nil {
		msg := fault.Error()
		if len(msg) > 255 {
			msg = msg[:255]
		}
		b = append([]byte{0, byte(len(msg))}, msg...)
	}
	if _, err := c.Write(b); err != nil {
		return fmt.Errorf("send status: %w", err)
	}
	return nil
}

// readStatus reads the peer's status: nil if ok, its reason if not.
func readStatus(c net.Conn) (fault, err error) {
	var h [2]byte
	if _, err := io.ReadFull(c, h[:]); err != nil {
		return nil, fmt.Errorf("read status: %w", err)
	}
	msg := make([]byte, h[1])
	if _, err := io.ReadFull(c, msg); err != nil {
		return nil, fmt.Errorf("read status: %w", err)
	}
	switch h[0] {
	case 1:
		return nil, nil
	case 0:
		if len(msg) == 0 {
			msg = []byte("no reason given")
		}
		return errors.New(string(msg)), nil
	}
	return nil, fmt.Errorf("status byte %d: %w", h[0], errHandshake)
}

// reason is why a connection is unavailable, from both sides' failures.
func reason(peer int, mine, theirs error) error {
	switch {
	case mine != nil && theirs != nil:
		return fmt.Errorf("%w (rank %d: %v)", mine, peer, theirs)
	case mine != nil:
		return mine
	}
	return fmt.Errorf("rank %d: %w", peer, theirs)
}
