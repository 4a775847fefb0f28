package placement

import (
	"testing"

	"github.com/ark-sched/ark/scheduler/api"
)

// TestNeverFitsHoldsNothing: a job the idle cluster cannot hold neither
// evicts work nor holds room for itself (neither would ever let it
// start), and still says why it waits; the job behind it gets the hold.
func TestNeverFitsHoldsNothing(t *testing.T) {
	n := h200("a", 8)
	var allocs []*api.Allocation
	run := map[string]RunInfo{}
	for g := 0; g < 8; g++ {
		a := live(string(rune('p'+g)), n.ID, g)
		allocs = append(allocs, a)
		run[a.ID] = RunInfo{Priority: 10, SinceCheckpoint: 60, EndsIn: 600}
	}
	huge := withPrio(job("huge", 1, 16, prio(100)))
	next := job("next", 1, 8)
	res := Place(Input{Nodes: []*api.Node{n}, Allocs: allocs, Pending: []*api.Job{huge, next}, Run: run,
		Preempt: true, Backfill: true, MaxReservations: 2})
	if len(res.Preemptions) != 0 {
		t.Errorf("preemptions %+v for a job that fits no node", res.Preemptions)
	}
	if len(res.Held) != 1 || res.Held[0].JobID != "next" {
		t.Errorf("held %+v, want one hold, for next", res.Held)
	}
	if why := res.Why["huge"]; !why.Never {
		t.Errorf("huge's explanation %+v, want never", why)
	}
}
