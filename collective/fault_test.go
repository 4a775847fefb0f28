package collective_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ark-sched/ark/collective"
	"github.com/ark-sched/ark/collective/collectivetest"
)

func faultOptions(transport string, timeout time.Duration) collective.Options {
	o := testOptions(transport)
	o.Timeout = timeout
	o.Heartbeat = 50 * time.Millisecond
	o.PeerTimeout = 10 * time.Second // liveness by heartbeat is not what these tests exercise
	return o
}

// wantPeer checks that err is a *PeerError naming rank.
func wantPeer(t *testing.T, who int, err error, rank int, kind error) {
	t.Helper()
	var pe *collective.PeerError
	if !errors.As(err, &pe) {
		t.Fatalf("rank %d: got %v, want a *PeerError naming rank %d", who, err, rank)
	}
	if pe.Rank != rank || !errors.Is(err, kind) {
		t.Fatalf("rank %d: got %v, want rank %d and %v", who, err, rank, kind)
	}
}

// TestKilledRank kills one rank (all its connections close, no goodbye)
// while the others are inside an all-reduce: every survivor must fail,
// naming the dead rank, well within the deadline.
func TestKilledRank(t *testing.T) {
	for _, tc := range []struct {
		transport string
		victim    int
	}{{"tcp", 2}, {"shm", 2}, {"tcp", 0}, {"shm", 0}} {
		t.Run(fmt.Sprintf("%s/rank%d", tc.transport, tc.victim), func(t *testing.T) {
			const n, timeout = 4, 20 * time.Second
			comms := collectivetest.StartGroup(t, n, faultOptions(tc.transport, timeout))
			errc := make(chan error, n)
			for r, c := range comms {
				if r == tc.victim {
					continue
				}
				go func() {
					buf := make([]float32, 50_000)
					for {
						if err := c.AllReduce(context.Background(), collective.Float32s(buf), collective.Sum); err != nil {
							errc <- err
							return
						}
					}
				}()
			}
			time.Sleep(50 * time.Millisecond)
			start := time.Now()
			collective.Crash(comms[tc.victim])
			for r := range n {
				if r == tc.victim {
					continue
				}
				select {
				case err := <-errc:
					wantPeer(t, r, err, tc.victim, collective.ErrPeerLost)
				case <-time.After(timeout):
					t.Fatalf("a survivor did not fail within the %v deadline", timeout)
				}
			}
			if d := time.Since(start); d > timeout/4 {
				t.Errorf("survivors took %v to fail; a dead peer should be noticed at once", d)
			}
		})
	}
}

// TestStalledRank: one rank never enters the operation. The others fail at
// the deadline naming it, and it fails too when it finally calls.
func TestStalledRank(t *testing.T) {
	for _, transport := range []string{"tcp", "shm"} {
		t.Run(transport, func(t *testing.T) {
			const n, timeout, stalled = 3, 1500 * time.Millisecond, 1
			comms := collectivetest.StartGroup(t, n, faultOptions(transport, timeout))
			start := time.Now()
			errs := collectivetest.Each(comms, func(r int, c *collective.Communicator) error {
				if r == stalled {
					return nil
				}
				return c.AllReduce(context.Background(), collective.Float32s(make([]float32, 10)), collective.Sum)
			})
			elapsed := time.Since(start)
			for r, err := range errs {
				if r != stalled {
					wantPeer(t, r, err, stalled, collective.ErrStalled)
				}
			}
			if elapsed > timeout+2*time.Second { // slack for a loaded CI machine
				t.Errorf("took %v, deadline %v", elapsed, timeout)
			}
			// The verdict was relayed to the stalled rank too.
			time.Sleep(100 * time.Millisecond)
			err := comms[stalled].AllReduce(context.Background(), collective.Float32s(make([]float32, 10)), collective.Sum)
			wantPeer(t, stalled, err, stalled, collective.ErrStalled)
		})
	}
}

// TestRebuild: after a failure the group is closed and a new one works.
func TestRebuild(t *testing.T) {
	o := faultOptions("auto", 5*time.Second)
	comms, err := collectivetest.Start(context.Background(), 3, o)
	if err != nil {
		t.Fatal(err)
	}
	collective.Crash(comms[1])
	err = comms[0].AllReduce(context.Background(), collective.Float32s(make([]float32, 4)), collective.Sum)
	if err == nil {
		t.Fatal("all-reduce with a dead rank succeeded")
	}
	if !errors.Is(comms[2].Err(), collective.ErrPeerLost) && comms[2].Err() != nil {
		t.Logf("rank 2 state: %v", comms[2].Err())
	}
	collectivetest.CloseAll([]*collective.Communicator{comms[0], comms[2]})
	if err := comms[0].Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := comms[0].AllReduce(context.Background(), collective.Float32s(make([]float32, 4)), collective.Sum); !errors.Is(err, collective.ErrClosed) && err == nil {
		t.Fatalf("all-reduce after Close: %v", err)
	}
	comms = collectivetest.StartGroup(t, 3, o)
	if err := collectivetest.CheckAllReduce(comms, collective.Float32, collective.Sum, 1000, 1); err != nil {
		t.Fatal(err)
	}
}

// TestCancel: a rank whose context is cancelled mid-operation aborts, and the
// others are told it gave up instead of waiting for the deadline.
func TestCancel(t *testing.T) {
	comms := collectivetest.StartGroup(t, 2, faultOptions("tcp", 20*time.Second))
	ctx, cancel := context.WithCancel(context.Background())
	h := comms[0].AllReduceAsync(ctx, collective.Float32s(make([]float32, 10)), collective.Sum)
	time.Sleep(50 * time.Millisecond)
	if done, _ := h.Test(); done {
		t.Fatal("all-reduce completed without its peer")
	}
	start := time.Now()
	cancel()
	if err := h.Wait(); !errors.Is(err, collective.ErrAborted) || !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled rank: %v", err)
	}
	// Rank 0's data was already sent, so rank 1's matching all-reduce may
	// still complete; the one after must fail, naming rank 0.
	_ = comms[1].AllReduce(context.Background(), collective.Float32s(make([]float32, 10)), collective.Sum)
	time.Sleep(100 * time.Millisecond)
	err := comms[1].AllReduce(context.Background(), collective.Float32s(make([]float32, 10)), collective.Sum)
	wantPeer(t, 1, err, 0, collective.ErrAborted)
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("peer learnt of the cancel after %v", d)
	}
}
