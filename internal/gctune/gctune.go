// Package gctune gives the Go garbage collector a floor of headroom: a
// collection starts once the heap has grown past the live heap by
// GOGC's share of it (100% by default) or by a fixed number of bytes,
// whichever is more, as Java's -Xms or Uber's GOGC tuner do.
//
// Why: a server whose live state is small (a fresh cluster, a few
// thousand jobs) collected every few megabytes it allocated, and under a
// burst of submissions the collector was 20-33% of every server's CPU
// (bench/README.md, "Raft"). With a floor the same servers collect a few
// times a second instead of hundreds, while a large state (10,000 nodes,
// hundreds of megabytes live) is collected exactly as before, so its
// memory does not grow.
package gctune

import (
	"context"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"time"
)

// interval is how often the live heap is read when no collection says
// so first.
const interval = time.Second

// minLive and maxPercent bound the percent whatever the live heap reads:
// the goal a collection sets is its live heap times (1 + percent/100),
// with the percent of the collection before. So a percent computed from a
// near-empty heap (none at all before the first collection) must not meet
// a large one: at most 17 times the live heap, for the moment until the
// next reading.
const (
	minLive    = 16 << 20
	maxPercent = 1600
)

// Percent is the GOGC that gives a heap of live bytes at least headroom
// bytes to grow into before the next collection, never less than base
// percent of it, and never more than maxPercent.
func Percent(live, headroom uint64, base int) int {
	live = max(live, minLive)
	headroom = min(headroom, 1<<50) // no overflow below; the cap rules anyway
	p := min(headroom*100/live, maxPercent)
	return max(base, int(p))
}

// Run keeps the collector's percent at Percent(live heap, headroom, base)
// until ctx ends, where base is the GOGC the process started with (100
// unless the GOGC variable says otherwise), and sets it back to base at
// the end. It reads the live heap after every collection (a finalizer on
// an object dropped each cycle, as Uber's GOGC tuner does) and every
// interval. It does nothing when headroom is 0 or GOGC is "off": an
// operator's explicit choice stands.
func Run(ctx context.Context, headroom uint64) {
	base, ok := startPercent()
	if headroom == 0 || !ok {
		return
	}
	defer debug.SetGCPercent(base)
	collected := make(chan struct{}, 1)
	armSentinel(ctx, collected)
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	current := base
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		metrics.Read(sample)
		if sample[0].Value.Kind() == metrics.KindUint64 {
			p := Percent(sample[0].Value.Uint64(), headroom, base)
			// Only a change of a tenth or more: each setting recomputes
			// the collector's pacing.
			if d := p - current; d*10 > current || -d*10 > current {
				debug.SetGCPercent(p)
				current = p
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-collected:
		case <-t.C:
		}
	}
}

// sentinel is an object nothing keeps: its finalizer runs after the
// collection that finds it. It holds a pointer so that it is not one of
// the tiny allocations whose finalizers may never run.
type sentinel struct {
	_ *int
	_ [16]byte
}

// armSentinel drops a sentinel whose finalizer says a collection ran, and
// drops the next one, until ctx ends.
func armSentinel(ctx context.Context, collected chan<- struct{}) {
	runtime.SetFinalizer(&sentinel{}, func(*sentinel) {
		if ctx.Err() != nil {
			return
		}
		select {
		case collected <- struct{}{}:
		default:
		}
		armSentinel(ctx, collected)
	})
}

// startPercent is the GOGC the process started with, and false when
// collection is off.
func startPercent() (int, bool) {
	v := os.Getenv("GOGC")
	switch {
	case v == "":
		return 100, true
	case v == "off":
		return 0, false
	}
	p, err := strconv.Atoi(v)
	if err != nil || p < 0 {
		return 100, true // the runtime's reading of a bad value
	}
	return p, true
}
