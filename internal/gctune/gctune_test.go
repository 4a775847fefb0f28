package gctune

import (
	"context"
	"runtime"
	"runtime/metrics"
	"testing"
	"time"
)

func TestPercent(t *testing.T) {
	const mib = 1 << 20
	for _, c := range []struct {
		live, headroom uint64
		base, want     int
	}{
		{32 * mib, 256 * mib, 100, 800},  // a small heap gets the headroom
		{256 * mib, 256 * mib, 100, 100}, // where the two meet
		{512 * mib, 256 * mib, 100, 100}, // a large heap keeps GOGC's share
		{512 * mib, 256 * mib, 200, 200}, // an operator's GOGC is the floor
		{100 * mib, 0, 100, 100},         // no headroom: GOGC alone
		{24 * mib, 256 * mib, 100, 1066},
		// Nothing live yet (before the first collection) or next to
		// nothing: at most 17 times the heap, however large it is when
		// the next collection sets its goal with this percent.
		{0, 256 * mib, 100, maxPercent},
		{1, 1 << 40, 100, maxPercent},
		{1 << 40, 1 << 63, 100, maxPercent}, // 1<<63 * 100 would wrap to 0
		{4 * mib, 256 * mib, 100, maxPercent},
		{4 * mib, 1 * mib, 100, 100},
	} {
		if got := Percent(c.live, c.headroom, c.base); got != c.want {
			t.Errorf("Percent(%d MiB live, %d MiB headroom, base %d) = %d, want %d", c.live/mib, c.headroom/mib, c.base, got, c.want)
		}
	}
}

// TestRunSetsAndRestores: Run raises the collector's percent for this
// test binary's small heap and sets it back when it ends; GOGC=off and a
// zero headroom leave it alone.
func TestRunSetsAndRestores(t *testing.T) {
	base, ok := startPercent()
	if !ok {
		t.Skip("GOGC=off in the environment")
	}
	runtime.GC()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); Run(ctx, 1<<30) }()
	deadline := time.Now().Add(5 * time.Second)
	for gogc() <= base {
		if time.Now().After(deadline) {
			t.Fatalf("GOGC still %d after 5 s with 1 GiB of headroom over a small heap", gogc())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	if got := gogc(); got != base {
		t.Errorf("GOGC %d after Run ended, want %d again", got, base)
	}

	t.Setenv("GOGC", "off")
	Run(context.Background(), 1<<30) // returns at once, or the test hangs
	Run(context.Background(), 0)
}

func gogc() int {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	return int(s[0].Value.Uint64())
}

// TestRunKeepsHeapBounded: with Run on, a stream of garbage is still
// collected and the heap goal stays within the headroom's reach. (A
// percent computed from the zero a heap reads before its first
// collection once let a server's heap grow to 8 GiB: no goal was ever
// reached.)
func TestRunKeepsHeapBounded(t *testing.T) {
	if _, ok := startPercent(); !ok {
		t.Skip("GOGC=off in the environment")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); Run(ctx, 64<<20) }()
	defer func() { cancel(); <-done }()
	s := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}, {Name: "/gc/heap/goal:bytes"}}
	metrics.Read(s)
	cycles := s[0].Value.Uint64()
	var peak uint64
	var keep [][]byte
	for i := 0; i < 4096; i++ { // 4 GiB of 1 MiB garbage, 32 MiB kept
		b := make([]byte, 1<<20)
		b[0] = byte(i)
		keep = append(keep, b)
		if len(keep) == 32 {
			keep = keep[:0]
		}
		if i%64 == 0 {
			metrics.Read(s)
			peak = max(peak, s[1].Value.Uint64())
		}
	}
	metrics.Read(s)
	if s[0].Value.Uint64() == cycles {
		t.Fatal("no collection while 4 GiB of garbage was allocated")
	}
	if peak > 1<<30 {
		t.Errorf("heap goal reached %d MiB with 64 MiB of headroom over a 32 MiB live heap", peak>>20)
	}
	t.Logf("%d collections, heap goal peak %d MiB", s[0].Value.Uint64()-cycles, peak>>20)
}
