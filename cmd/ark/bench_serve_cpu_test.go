package main

import (
	"math"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/ark-sched/ark/worker/serve"
)

// procThreadsCPU of this process grows by at least the CPU a loop burns,
// and says false for a process that does not exist.
func TestProcThreadsCPU(t *testing.T) {
	t.Parallel()
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	before, ok := procThreadsCPU(os.Getpid())
	if !ok || before <= 0 {
		t.Fatalf("procThreadsCPU(self) = %v, %v", before, ok)
	}
	var x uint64
	for start := time.Now(); time.Since(start) < 50*time.Millisecond; {
		x = x*6364136223846793005 + 1
	}
	after, ok := procThreadsCPU(os.Getpid())
	// The loop ran 50 ms of wall time, at least part of it on a CPU; a
	// shared machine may have taken the rest.
	if !ok || after-before < time.Millisecond {
		t.Fatalf("CPU %v -> %v across a 50 ms loop (%d)", before, after, x)
	}
	if _, ok := procThreadsCPU(1 << 30); ok {
		t.Fatal("a process that does not exist has CPU time")
	}
}

// phasesOf turns two reads of the server's cumulative phases into a row's
// shares and per-request means, and refuses a row without requests.
func TestPhasesOf(t *testing.T) {
	t.Parallel()
	a := serve.Phases{IdleMs: 10, PrefillMs: 5, StepMs: 20, Prefills: 4, PrefillCalls: 2, Requests: 4, Streams: 4, QueueMs: 1, DecodeMs: 40}
	b := serve.Phases{IdleMs: 20, PrefillMs: 25, StepMs: 90, Prefills: 12, PrefillCalls: 4, Requests: 8, Streams: 6,
		HandlerMs: 0.2, QueueMs: 3, ReqPrefillMs: 8, DecodeMs: 120, EndMs: 1, WriteMs: 0.4}
	for _, c := range []struct {
		name string
		a, b serve.Phases
		want rowPhases
		ok   bool
	}{
		{"row", a, b, rowPhases{LoopIdlePct: 10, LoopPrefillPct: 20, LoopStepPct: 70, PromptsPerCall: 4,
			HandlerMs: 0.1, QueueMs: 0.5, PrefillMs: 2, DecodeMs: 20, EndMs: 0.5, WriteMs: 0.2}, true},
		{"no requests", a, a, rowPhases{}, false},
	} {
		got, ok := phasesOf(c.a, c.b)
		if ok != c.ok {
			t.Errorf("%s: ok %v, want %v", c.name, ok, c.ok)
			continue
		}
		for _, f := range []struct {
			field     string
			got, want float64
		}{
			{"idle", got.LoopIdlePct, c.want.LoopIdlePct}, {"prefill", got.LoopPrefillPct, c.want.LoopPrefillPct},
			{"step", got.LoopStepPct, c.want.LoopStepPct}, {"prompts", got.PromptsPerCall, c.want.PromptsPerCall},
			{"handler", got.HandlerMs, c.want.HandlerMs}, {"queue", got.QueueMs, c.want.QueueMs},
			{"request prefill", got.PrefillMs, c.want.PrefillMs}, {"decode", got.DecodeMs, c.want.DecodeMs},
			{"end", got.EndMs, c.want.EndMs}, {"write", got.WriteMs, c.want.WriteMs},
		} {
			if math.Abs(f.got-f.want) > 1e-9 {
				t.Errorf("%s: %s %v, want %v", c.name, f.field, f.got, f.want)
			}
		}
	}
	if m := medianPhases([]rowPhases{{QueueMs: 3}, {QueueMs: 1}, {QueueMs: 2}}); m == nil || m.QueueMs != 2 {
		t.Errorf("median of queues 3, 1, 2: %+v", m)
	}
	if medianPhases(nil) != nil {
		t.Error("median of no rounds is not nil")
	}
}
