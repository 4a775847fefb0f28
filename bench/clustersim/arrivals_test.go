package clustersim

import (
	"context"
	"math"
	"sync/atomic"
	"testing"
	"time"
)

// TestArrivalsMeanGap checks the pacer's gaps average 1/rate: the stream
// offers the rate it was given.
func TestArrivalsMeanGap(t *testing.T) {
	for _, rate := range []float64{0.5, 40, 5000} {
		a := newArrivals(rate, 3)
		const n = 20000
		var sum time.Duration
		for range n {
			g := a.gap()
			if g < 0 {
				t.Fatalf("rate %v: negative gap %v", rate, g)
			}
			sum += g
		}
		mean, want := sum.Seconds()/n, 1/rate
		if math.Abs(mean-want)/want > 0.03 {
			t.Errorf("rate %v: mean gap %.6f s, want %.6f s within 3%%", rate, mean, want)
		}
	}
}

// TestArrivalsRunStops checks run sends increasing times from start and
// closes its channel once stop says so.
func TestArrivalsRunStops(t *testing.T) {
	out := make(chan time.Time, 1000)
	var sent atomic.Int64
	stop := func() bool { return sent.Load() >= 50 }
	start := time.Now()
	done := make(chan struct{})
	go func() { newArrivals(10000, 1).run(context.Background(), start, stop, out); close(done) }()
	last := start
	for at := range out {
		if at.Before(last) {
			t.Fatalf("arrival %v before the one before it %v", at, last)
		}
		last = at
		sent.Add(1)
	}
	<-done
	if n := sent.Load(); n < 50 {
		t.Errorf("got %d arrivals before the close, want at least 50", n)
	}
}

// TestArrivalsRunCancel checks a pacer blocked on a full queue ends with
// its context.
func TestArrivalsRunCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan time.Time) // nobody reads
	done := make(chan struct{})
	go func() { newArrivals(1e6, 1).run(ctx, time.Now(), func() bool { return false }, out); close(done) }()
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the pacer did not end with its context")
	}
}

func TestValidRate(t *testing.T) {
	for _, c := range []struct {
		r  float64
		ok bool
	}{{0, true}, {0.1, true}, {500, true}, {-1, false}, {math.NaN(), false}, {math.Inf(1), false}} {
		if got := ValidRate(c.r); got != c.ok {
			t.Errorf("ValidRate(%v) = %v, want %v", c.r, got, c.ok)
		}
	}
}
