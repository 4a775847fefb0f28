package state

import (
	"strings"
	"testing"
	"time"

	"github.com/ark-sched/ark/scheduler/api"
)

// TestReregisterKeepsOperatorSettings: an agent that registers again under
// its ID (it restarted) does not undo what the operator set on the node: a
// drain goes on and a closed node stays closed (found by TestFSMModel; the
// agent's registration carries neither field, so the FSM used to clear
// both). A new incarnation under another ID starts open.
func TestReregisterKeepsOperatorSettings(t *testing.T) {
	h := newHarness(t)
	h.addNode("n1", 2)
	h.addNode("n2", 2)
	drain := &api.DrainStrategy{Deadline: t0.Add(time.Hour)}
	h.ok(NodeDrainType, NodeDrainRequest{NodeID: "id-n1", Drain: drain})
	h.ok(NodeEligibilityType, NodeEligibilityRequest{NodeID: "id-n2", Eligible: false})

	h.addNode("n1", 2) // the agents restart and register again
	h.addNode("n2", 2)
	if n := h.snap().Node(nil, "id-n1"); !n.Ineligible || n.Drain == nil || !n.Drain.Deadline.Equal(drain.Deadline) {
		t.Fatalf("n1 after re-registering: ineligible %v drain %+v, want the drain kept", n.Ineligible, n.Drain)
	}
	if n := h.snap().Node(nil, "id-n2"); !n.Ineligible {
		t.Fatal("n2 opened by re-registering")
	}
	h.addJob("a", 1, 1)
	if r := h.place(placementOf("a", on("n2", 0))); !strings.Contains(r.Rejected["a"], "not eligible") {
		t.Fatalf("placed on a closed node: %+v", r)
	}

	// A new incarnation (new ID, the old one down) is a new node.
	h.ok(NodeStatusType, NodeStatusRequest{NodeID: "id-n2", Status: api.NodeDown, Time: t0})
	nd := testNode("n2", 2)
	nd.ID = "id-n2-new"
	h.ok(UpsertNodeType, UpsertNodeRequest{Node: nd})
	if n := h.snap().Node(nil, "id-n2-new"); n == nil || n.Ineligible || n.Drain != nil {
		t.Fatalf("new incarnation: %+v", n)
	}
}
