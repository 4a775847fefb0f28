package sched

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/ark-sched/ark/scheduler/api"
)

// TestPreemptionEnds is the loop issue 17 reported: with no minimum
// runtime, an 8-GPU job evicted the same 1-GPU job dozens of times and was
// never placed, because the victim restarted on the GPUs its eviction had
// freed (here: the 7 idle GPUs of node a, the only room it has). The freed
// node is held for the preemptor, so one eviction places it, and the
// victim waits.
func TestPreemptionEnds(t *testing.T) {
	c := newCluster(t, Config{PreemptMinRuntime: 0})
	c.node("a", 8)
	c.submit("small", 1, 1, 10)
	c.settle(10)
	c.node("b", 8)
	c.submit("big-other", 1, 8, 2000) // b is full and outranks the preemptor
	c.settle(10)
	if c.job("small").Status != api.JobRunning || c.job("big-other").Status != api.JobRunning {
		t.Fatalf("setup: small %s, big-other %s", c.job("small").Status, c.job("big-other").Status)
	}
	c.submit("p", 1, 8, 1000)
	c.settle(50)
	if j := c.job("p"); j.Status != api.JobRunning {
		t.Fatalf("preemptor %s after 50 rounds: %s (evictions %v)", j.Status, j.Reason, c.preempted)
	}
	if c.ended != 1 || len(c.preempted) != 0 {
		t.Fatalf("%d preemptions ended in a placement, still open: %v", c.ended, c.preempted)
	}
	if n := c.job("small").Preemptions; n != 1 {
		t.Fatalf("small evicted %d times, want once", n)
	}
	if j := c.job("p"); len(j.HeldNodes) != 0 || j.HoldUntil != nil || len(j.Preempting) != 0 {
		t.Fatalf("placed preemptor still holds: %+v", j)
	}
	if s := c.job("small"); s.Status != api.JobPending || s.Preemptions != 1 {
		t.Fatalf("victim: %s, %d preemptions", s.Status, s.Preemptions)
	}
}

// TestPreemptionProperty: on random clusters and workloads, no job is ever
// evicted twice for the same preemptor, and every preemptor whose
// preemption committed is placed once its victims stop.
func TestPreemptionProperty(t *testing.T) {
	seeds := 40
	if testing.Short() {
		seeds = 10
	}
	total := 0
	defer func() { t.Logf("%d preemptions, each ended in its preemptor's placement", total) }()
	for seed := range uint64(seeds) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 17))
			c := newCluster(t, Config{PreemptMinRuntime: 0})
			nodes := 2 + rng.IntN(3)
			for i := range nodes {
				c.node(fmt.Sprintf("n%d", i), []int{4, 8}[rng.IntN(2)])
			}
			// Fill the cluster with low-priority work of mixed shapes.
			for i := range 4 * nodes {
				c.submit(fmt.Sprintf("low%d", i), 1+rng.IntN(2), 1+rng.IntN(3), 10+rng.IntN(40))
			}
			c.settle(40)
			// Then preemptors, some bigger than any gap.
			for i := range 1 + rng.IntN(3) {
				c.submit(fmt.Sprintf("hi%d", i), 1, []int{2, 4, 8}[rng.IntN(3)], 500+rng.IntN(500))
			}
			c.settle(200)
			total += c.ended
			// Every preemption still open is an eviction that did not
			// (yet) place its preemptor: with every victim stopped, none
			// may be left.
			for p, victims := range c.preempted {
				for v, n := range victims {
					if n > 1 {
						t.Errorf("%s evicted %s %d times", p, v, n)
					}
				}
				if j := c.job(p); j.Status != api.JobRunning {
					t.Errorf("%s preempted %v but is %s: %s (held %v until %v, now %v)", p, victims, j.Status, j.Reason, j.HeldNodes, j.HoldUntil, c.now)
					for _, a := range c.snap().Allocs(nil) {
						if !a.Terminal() {
							t.Logf("live %s on %s gpus %v prio %d", a.ID, a.Node, a.GPUs, c.job(a.JobID).Priority)
						}
					}
				}
			}
		})
	}
}

// TestProtectionEndWakes: a job that outranks only protected work gets no
// preemption, and the pass asks to be woken when the protection ends (no
// write says so), rounded up to the second; then the pass preempts.
func TestProtectionEndWakes(t *testing.T) {
	c := newCluster(t, Config{PreemptMinRuntime: 10 * time.Minute})
	c.node("a", 8)
	c.now = c.now.Add(300 * time.Millisecond)
	c.submit("low", 1, 8, 10)
	c.settle(5) // placed at t0+0.3s, then reported running
	c.now = c.now.Add(time.Minute)
	c.submit("high", 1, 8, 1000)
	out := Pass(FromSnapshot(c.snap()), c.cfg, Input{Now: c.now, Rand: c.rng})
	if len(out.Plan.Preemptions) != 0 {
		t.Fatalf("protected work preempted: %+v", out.Plan.Preemptions)
	}
	start := *c.job("low").StartTime
	want := start.Add(10 * time.Minute).Truncate(time.Second).Add(time.Second)
	if !out.Wake.Equal(want) {
		t.Fatalf("wake %s, want %s (low started %s)", out.Wake, want, start)
	}
	c.now = out.Wake
	out = Pass(FromSnapshot(c.snap()), c.cfg, Input{Now: c.now, Rand: c.rng})
	if len(out.Plan.Preemptions) != 1 || out.Plan.Preemptions[0].JobID != "high" {
		t.Fatalf("at the wake: preemptions %+v", out.Plan.Preemptions)
	}
}
