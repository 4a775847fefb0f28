package state

import (
	"testing"

	"github.com/ark-sched/ark/scheduler/api"
)

// TestCapacityIndexMoves: CapacityIndex moves on the writes that may free
// or change capacity, and only on those, each step applied in turn to one
// FSM.
func TestCapacityIndexMoves(t *testing.T) {
	h := newHarness(t)
	steps := []struct {
		name  string
		do    func()
		moves bool
	}{
		{"a node registers", func() { h.addNode("n1", 8) }, true},
		{"jobs are submitted", func() { h.addJob("a", 1, 1); h.addJob("b", 1, 1); h.addJob("p", 1, 8) }, false},
		{"a plan places them", func() { h.run("a", on("n1", 0)); h.run("b", on("n1", 1)) }, false},
		{"a plan only records a pending reason", func() {
			h.ok(ApplyPlanType, ApplyPlanRequest{Plan: Plan{Pending: []PendingReason{{JobID: "p", Reason: "waiting"}}}, Time: t0})
		}, false},
		{"an allocation reports running", func() {
			h.ok(AllocStatusType, AllocStatusRequest{AllocID: "a-0", Update: api.AllocStatusUpdate{Status: api.AllocRunning}, Time: t0})
		}, false},
		{"an allocation succeeds", func() {
			if err, isErr := report(h, "a-0", api.AllocSucceeded, 0, "").(error); isErr {
				t.Fatal(err)
			}
		}, true},
		{"a running job is cancelled (told to stop)", func() { h.ok(CancelJobType, CancelJobRequest{JobID: "b", Time: t0}) }, true},
		{"a node goes down", func() {
			h.ok(NodeStatusType, NodeStatusRequest{NodeID: "id-n1", Status: api.NodeDown, Info: "gone", Time: t0})
		}, true},
	}
	for _, st := range steps {
		before := h.snap().Index(CapacityIndex)
		st.do()
		after := h.snap().Index(CapacityIndex)
		if moved := after != before; moved != st.moves {
			t.Errorf("%s: capacity index %d -> %d, want moved=%v", st.name, before, after, st.moves)
		}
		if st.moves && after != h.index {
			t.Errorf("%s: capacity index %d, want the last entry's %d", st.name, after, h.index)
		}
	}
}
