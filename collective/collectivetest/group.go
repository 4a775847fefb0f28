package collectivetest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"

	"github.com/ark-sched/ark/collective"
)

// Start builds n Communicators in this process, one goroutine per rank, with
// rank 0 serving the rendezvous on a fresh 127.0.0.1 port. o's Rank,
// WorldSize, MasterAddr and Listener are set per rank.
func Start(ctx context.Context, n int, o collective.Options) ([]*collective.Communicator, error) {
	return StartEach(ctx, n, o, nil)
}

// StartEach is Start with each (if not nil) adjusting every rank's copy of
// o, for groups whose ranks differ (hosts, transports, injected faults).
func StartEach(ctx context.Context, n int, o collective.Options, each func(rank int, o *collective.Options)) ([]*collective.Communicator, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("rendezvous listener: %w", err)
	}
	comms := make([]*collective.Communicator, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for r := range n {
		ro := o
		ro.Rank, ro.WorldSize, ro.MasterAddr = r, n, ln.Addr().String()
		if r == 0 {
			ro.Listener = ln
		}
		if each != nil {
			each(r, &ro)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			comms[r], errs[r] = collective.New(ctx, ro)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		CloseAll(comms)
		return nil, err
	}
	return comms, nil
}

// StartGroup is Start for tests: it fails t on error and closes the group
// when the test ends.
func StartGroup(t testing.TB, n int, o collective.Options) []*collective.Communicator {
	t.Helper()
	comms, err := Start(context.Background(), n, o)
	if err != nil {
		t.Fatalf("start %d ranks: %v", n, err)
	}
	t.Cleanup(func() { CloseAll(comms) })
	return comms
}

// CloseAll closes every non-nil Communicator concurrently (rank 0 waits for
// the others' goodbyes).
func CloseAll(comms []*collective.Communicator) {
	var wg sync.WaitGroup
	for _, c := range comms {
		if c != nil {
			wg.Add(1)
			go func() { defer wg.Done(); c.Close() }()
		}
	}
	wg.Wait()
}

// Each runs f on every rank concurrently and returns the per-rank errors.
func Each(comms []*collective.Communicator, f func(r int, c *collective.Communicator) error) []error {
	errs := make([]error, len(comms))
	var wg sync.WaitGroup
	for r, c := range comms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[r] = f(r, c)
		}()
	}
	wg.Wait()
	return errs
}
