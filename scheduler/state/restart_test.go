package state

import (
	"strings"
	"testing"
	"time"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/spec"
)

func status(h *harness, allocID, st string, code int) {
	h.t.Helper()
	h.ok(AllocStatusType, AllocStatusRequest{AllocID: allocID, Update: api.AllocStatusUpdate{Status: st, ExitCode: &code}, Time: t0})
}

// TestRestartPolicy: a failed rank restarts the whole gang while restarts
// remain; the next attempt's allocations are judged on their own; when the
// restarts are used up the job fails.
func TestRestartPolicy(t *testing.T) {
	h := newHarness(t)
	h.addNode("n1", 4)
	j := testJob("g", 2, 1)
	j.Spec.Restart = spec.Restart{MaxRestarts: 1, Backoff: spec.Duration(30 * time.Second)}
	h.ok(RegisterJobType, RegisterJobRequest{Job: j})
	h.run("g", on("n1", 0), on("n1", 1))
	status(h, "g-0", api.AllocRunning, 0)
	status(h, "g-1", api.AllocFailed, 7)

	got := h.job("g")
	if got.Status != api.JobPending || got.RestartCount != 1 || !strings.Contains(got.Reason, "restarting (1 of 1) after rank 1 failed") {
		t.Fatalf("after a failure with a restart left: %s %d %q", got.Status, got.RestartCount, got.Reason)
	}
	if got.RestartAfter == nil || !got.RestartAfter.Equal(t0.Add(30*time.Second)) {
		t.Errorf("restart after %v, want submit time + backoff", got.RestartAfter)
	}
	if a := h.alloc("g-0"); a.DesiredStatus != api.DesiredStop {
		t.Errorf("the surviving rank is not asked to stop: %s", a.DesiredStatus)
	}
	// The old rank 0 still holds GPU 0 until it reports; the new attempt
	// goes on other GPUs.
	p := placementOf("g", on("n1", 2), on("n1", 3))
	for _, a := range p.Allocs {
		a.ID += "-a1"
		a.Attempt = 1
		a.MasterPort++ // the old rank 0 still holds the first attempt's port
	}
	if r := h.place(p); len(r.Placed) != 1 {
		t.Fatalf("second attempt rejected: %v", r.Rejected)
	}
	if got := h.job("g"); got.Status != api.JobRunning {
		t.Fatalf("second attempt not running: %s", got.Status)
	}
	// The old rank reporting its stop does not touch the new attempt.
	status(h, "g-0", api.AllocFailed, 143)
	if got := h.job("g"); got.Status != api.JobRunning {
		t.Fatalf("a late report of attempt 0 changed attempt 1's job: %s %q", got.Status, got.Reason)
	}
	status(h, "g-1-a1", api.AllocFailed, 1)
	if got := h.job("g"); got.Status != api.JobFailed || !strings.Contains(got.Reason, "rank 1 failed") {
		t.Fatalf("restarts used up: %s %q", got.Status, got.Reason)
	}
}

// TestNodeLossRestartsGang: a node going down loses its ranks, and a job
// with restarts left goes back to the queue instead of failing.
func TestNodeLossRestartsGang(t *testing.T) {
	h := newHarness(t)
	h.addNode("n1", 2)
	h.addNode("n2", 2)
	j := testJob("g", 2, 2)
	j.Spec.Restart = spec.Restart{MaxRestarts: 3}
	h.ok(RegisterJobType, RegisterJobRequest{Job: j})
	h.run("g", on("n1", 0, 1), on("n2", 0, 1))
	h.ok(NodeStatusType, NodeStatusRequest{NodeID: "id-n2", Status: api.NodeDown, Info: "no heartbeat", Time: t0})
	got := h.job("g")
	if got.Status != api.JobPending || got.RestartCount != 1 || !strings.Contains(got.Reason, "rank 1 lost on node n2") {
		t.Fatalf("after node loss: %s %d %q", got.Status, got.RestartCount, got.Reason)
	}
	if a := h.alloc("g-1"); a.Status != api.AllocLost {
		t.Errorf("rank on the lost node: %s", a.Status)
	}
	if a := h.alloc("g-0"); a.DesiredStatus != api.DesiredStop {
		t.Errorf("rank on the healthy node not stopped: %s", a.DesiredStatus)
	}
}
